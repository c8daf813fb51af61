//! Well-formed sample messages shared by the tests.

use crate::identity::Keypair;
use crate::signing::Signed;
use crate::v1;

/// The network id used by samples.
pub(super) const NET: [u8; 32] = [0x11; 32];

/// A keypair from a fixed seed.
pub(super) fn key(seed: u8) -> Keypair {
    Keypair::from_secret(&[seed; 32])
}

/// A signed prevote for `value` by the key of `seed`.
pub(super) fn vote(seed: u8, round: u32, value: Option<[u8; 32]>) -> v1::Vote {
    v1::Vote {
        network_id: NET.to_vec(),
        epoch: 7,
        round,
        vote_type: v1::VoteType::Prevote as i32,
        value_id: value.map(|v| v.to_vec()).unwrap_or_default(),
        valset_hash: vec![0x22; 32],
        ..Default::default()
    }
    .signed(&key(seed))
}

/// A signed capability ad valid from 1,000 ms to 61,000 ms.
pub(super) fn ad(seed: u8) -> v1::CapabilityAd {
    v1::CapabilityAd {
        network_id: NET.to_vec(),
        subnet: 1,
        task: "arith".into(),
        model_id: "ref/arith".into(),
        version: "1.0.0".into(),
        max_concurrency: 8,
        addrs: vec!["/ip4/127.0.0.1/udp/9000/quic-v1".into()],
        query_addr: "127.0.0.1:9001".into(),
        issued_at_ms: 1_000,
        expires_at_ms: 61_000,
        ..Default::default()
    }
    .signed(&key(seed))
}

/// A signed weight reveal over three miners.
pub(super) fn reveal(seed: u8) -> v1::WeightReveal {
    v1::WeightReveal {
        network_id: NET.to_vec(),
        subnet: 1,
        epoch: 3,
        uids: vec![0, 2, 5],
        weights: vec![65535, 1000, 0],
        salt: vec![0x33; 32],
        ..Default::default()
    }
    .signed(&key(seed))
}

/// A signed transfer.
pub(super) fn transfer(seed: u8, nonce: u64) -> v1::Transaction {
    v1::Transaction {
        network_id: NET.to_vec(),
        nonce,
        kind: Some(v1::transaction::Kind::Transfer(v1::Transfer {
            to: key(seed.wrapping_add(1)).public().to_bytes().to_vec(),
            amount: 500,
        })),
        ..Default::default()
    }
    .signed(&key(seed))
}

/// A certificate of `n` validators' precommits for one value, sorted by validator key.
pub(super) fn certificate(n: u8) -> v1::Certificate {
    let value = [0x44; 32];
    let mut signatures: Vec<v1::CommitSignature> = (1..=n)
        .map(|seed| {
            let mut vote = vote(seed, 0, Some(value));
            vote.vote_type = v1::VoteType::Precommit as i32;
            let vote = vote.signed(&key(seed));
            v1::CommitSignature {
                validator: vote.validator,
                signature: vote.signature,
            }
        })
        .collect();
    signatures.sort_by(|a, b| a.validator.cmp(&b.validator));
    v1::Certificate {
        network_id: NET.to_vec(),
        epoch: 7,
        round: 0,
        value_id: value.to_vec(),
        valset_hash: vec![0x22; 32],
        signatures,
    }
}

/// A small valid genesis.
pub(super) fn genesis() -> v1::Genesis {
    v1::Genesis {
        network_name: "localnet".into(),
        genesis_time_ms: 1_700_000_000_000,
        epoch_ms: 2_000,
        subnets: vec![v1::SubnetSpec {
            id: 1,
            name: "reference".into(),
            tasks: vec!["arith".into(), "sort".into()],
            owner: key(9).public().to_bytes().to_vec(),
        }],
        validators: vec![v1::GenesisValidator {
            hotkey: key(1).public().to_bytes().to_vec(),
            coldkey: key(2).public().to_bytes().to_vec(),
            stake: 1_000,
        }],
        balances: vec![v1::GenesisBalance {
            coldkey: key(2).public().to_bytes().to_vec(),
            amount: 10_000,
        }],
        emission_per_epoch: 1_000_000,
        neurons: Vec::new(),
        economy: None,
    }
}

/// A small economy state with every kind of entry, in its canonical encoding (the node's state
/// module builds the same one from its own types).
pub(super) fn economy_state() -> v1::EconomyState {
    let k = |b: u8| vec![b; 32];
    v1::EconomyState {
        network_id: k(9),
        params: Some(v1::StateParams {
            burn_decay_per_mille: 50,
            subnet_lock: 1_000_000,
            max_subnets: 64,
            owner_cut_per_mille: 180,
            validator_take_per_mille: 180,
            tx_fee: 100,
            max_finalizers: 64,
            unbonding_epochs: 64,
            jail_epochs: 64,
            slash_per_mille: 100,
            subnet_defaults: Some(subnet_params(32_767, 1)),
            bounds: [
                ("max_uids", 1, 65_536),
                ("max_validators", 1, 1_024),
                ("immunity_epochs", 0, 100_000),
                ("min_burn", 1, 1_000_000_000_000_000),
                ("max_burn", 1, 1_000_000_000_000_000),
                ("kappa", 0, 65_535),
                ("bonds_moving_average", 0, 999_999),
                ("activity_cutoff", 1, 100_000),
                ("yuma3", 0, 1),
                ("liquid_alpha", 0, 1),
                ("alpha_low", 1, 65_534),
                ("alpha_high", 1, 65_534),
                ("commit_reveal", 0, 1),
                ("weights_rate_limit", 0, 100_000),
                ("min_allowed_weights", 0, 65_536),
                ("max_weight_limit", 1, 65_535),
                ("tempo", 1, 1_000),
            ]
            .into_iter()
            .map(|(name, min, max)| v1::ParamBound {
                name: name.into(),
                min,
                max,
            })
            .collect(),
            owner_rate_limit: 100,
            take_rate_limit: 100,
            subnet_immunity_epochs: 64,
            emission_mode: 0,
            emission_smoothing_epochs: 64,
        }),
        epoch: 7,
        accounts: vec![
            v1::AccountState {
                coldkey: k(1),
                balance: 100,
                nonce: 0,
            },
            v1::AccountState {
                coldkey: k(2),
                balance: 900,
                nonce: 3,
            },
        ],
        stakes: vec![v1::SubnetStakes {
            subnet: 1,
            hotkeys: vec![v1::HotkeyStakes {
                hotkey: k(5),
                coldkeys: vec![
                    v1::ColdkeyStake {
                        coldkey: k(1),
                        amount: 40,
                    },
                    v1::ColdkeyStake {
                        coldkey: k(2),
                        amount: 60,
                    },
                ],
            }],
        }],
        subnets: vec![v1::SubnetState {
            id: 1,
            name: "reference".into(),
            tasks: vec!["sort".into(), "arith".into()],
            owner: k(1),
            locked: 10,
            burn: 1_000,
            neurons: vec![v1::NeuronState {
                hotkey: k(5),
                owner: k(2),
                registered_at: 1,
                last_update: 6,
                weight_uids: vec![0, 3],
                weight_values: vec![65_535, 7],
                bond_uids: vec![0],
                bond_values: vec![12],
                last_emission: 44,
                consensus: 1,
                incentive: 2,
                dividends: 3,
                trust: 4,
                permit_since: Some(5),
                last_dividends: 30,
            }],
            params: Some(subnet_params(32_767, 1)),
            pending: Some(subnet_params(40_000, 3)),
            params_changed_at: Some(6),
            changes: vec![
                v1::ParamChange {
                    name: "kappa".into(),
                    epoch: 6,
                },
                v1::ParamChange {
                    name: "tempo".into(),
                    epoch: 6,
                },
            ],
            created_at: 0,
            stake_ema: 90,
            flow_ema: -4,
            flow: 7,
            pending_emission: 12,
            prior: Some(subnet_params(30_000, 1)),
            prior_until: 9,
        }],
        supply: Some(v1::SupplyState {
            genesis: 1_000_000,
            emitted: 5_000,
            burned: 1_000,
        }),
        finalizers: vec![v1::FinalizerState {
            hotkey: k(5),
            coldkey: k(2),
            declared: true,
            left_at: 0,
            jailed_until: 3,
            in_set_since: Some(2),
        }],
        unbonding: vec![v1::UnbondingState {
            release_epoch: 9,
            coldkey: k(2),
            hotkey: k(5),
            amount: 25,
        }],
        delegates: vec![v1::DelegateState {
            hotkey: k(5),
            owner: k(2),
            take_per_mille: 90,
            changed_at: 6,
        }],
        next_subnet: 2,
        swaps: vec![v1::HotkeySwapState {
            old_hotkey: k(5),
            hotkey: k(6),
            coldkey: k(2),
            epoch: 7,
        }],
        swapped: vec![v1::HotkeySwapState {
            old_hotkey: k(4),
            hotkey: k(5),
            coldkey: k(2),
            epoch: 3,
        }],
    }
}

/// A subnet's default rules, with `kappa` and `tempo`.
fn subnet_params(kappa: u32, tempo: u64) -> v1::SubnetParams {
    v1::SubnetParams {
        max_uids: 256,
        max_validators: 64,
        immunity_epochs: 4,
        min_burn: 1_000,
        max_burn: 100_000_000_000,
        kappa,
        bonds_moving_average: 900_000,
        activity_cutoff: 16,
        yuma3: false,
        liquid_alpha: false,
        alpha_low: 45_875,
        alpha_high: 58_982,
        commit_reveal: true,
        weights_rate_limit: 0,
        min_allowed_weights: 0,
        max_weight_limit: 65_535,
        tempo,
    }
}
