//! The economy's canonical encoding (`v1::EconomyState`): what the state root hashes and what the
//! ledger stores. Lists come out sorted by key because the state keeps ordered maps; reading refuses
//! lists out of order or with repeated keys, and the root is always taken over the re-encoding.

use meshmind_protocols::v1;
use prost::Message;

use super::{
    Account, Bounds, Delegate, EmissionMode, Finalizer, HotkeySwap, Key, Neuron, PARAMS, Params,
    State, StateError, Subnet, SubnetParams, Supply,
};

/// Domain of the state root's key derivation.
const ROOT_DOMAIN: &str = "meshmind/v1/state";

impl State {
    /// The root committed to in snapshot headers: blake3 (derive-key mode) of the canonical
    /// encoding.
    pub fn root(&self) -> [u8; 32] {
        blake3::derive_key(ROOT_DOMAIN, &self.to_bytes())
    }

    /// The canonical encoding (also the stored form).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_wire().encode_to_vec()
    }

    /// Reads the stored form, checking its order and the economy's invariants.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        let wire = v1::EconomyState::decode(bytes).map_err(|e| corrupt(e.to_string()))?;
        let state = State::from_wire(wire)?;
        state.check_invariants()?;
        Ok(state)
    }

    /// The state as its canonical message.
    pub fn to_wire(&self) -> v1::EconomyState {
        v1::EconomyState {
            network_id: self.network_id.0.to_vec(),
            params: Some(params_to_wire(&self.params)),
            epoch: self.epoch,
            accounts: self
                .accounts
                .iter()
                .map(|(coldkey, a)| v1::AccountState {
                    coldkey: coldkey.0.to_vec(),
                    balance: a.balance,
                    nonce: a.nonce,
                })
                .collect(),
            stakes: self
                .stakes
                .iter()
                .map(|(&subnet, hotkeys)| v1::SubnetStakes {
                    subnet,
                    hotkeys: hotkeys
                        .iter()
                        .map(|(hotkey, coldkeys)| v1::HotkeyStakes {
                            hotkey: hotkey.0.to_vec(),
                            coldkeys: coldkeys
                                .iter()
                                .map(|(coldkey, &amount)| v1::ColdkeyStake {
                                    coldkey: coldkey.0.to_vec(),
                                    amount,
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
            subnets: self
                .subnets
                .iter()
                .map(|(&id, s)| subnet_to_wire(id, s))
                .collect(),
            supply: Some(v1::SupplyState {
                genesis: self.supply.genesis,
                emitted: self.supply.emitted,
                burned: self.supply.burned,
            }),
            finalizers: self
                .finalizers
                .iter()
                .map(|(hotkey, f)| v1::FinalizerState {
                    hotkey: hotkey.0.to_vec(),
                    coldkey: f.coldkey.0.to_vec(),
                    declared: f.declared,
                    left_at: f.left_at,
                    jailed_until: f.jailed_until,
                    in_set_since: f.in_set_since,
                })
                .collect(),
            unbonding: self
                .unbonding
                .iter()
                .map(
                    |(&(release_epoch, coldkey, hotkey), &amount)| v1::UnbondingState {
                        release_epoch,
                        coldkey: coldkey.0.to_vec(),
                        hotkey: hotkey.0.to_vec(),
                        amount,
                    },
                )
                .collect(),
            delegates: self
                .delegates
                .iter()
                .map(|(hotkey, d)| v1::DelegateState {
                    hotkey: hotkey.0.to_vec(),
                    owner: d.owner.0.to_vec(),
                    take_per_mille: u32::try_from(d.take_per_mille).unwrap_or(u32::MAX),
                    changed_at: d.changed_at,
                })
                .collect(),
            next_subnet: self.next_subnet,
            swaps: swaps_to_wire(&self.swaps),
            swapped: swaps_to_wire(&self.swapped),
        }
    }

    /// The state a canonical message describes; refuses one that is not canonical.
    pub fn from_wire(wire: v1::EconomyState) -> Result<Self, StateError> {
        let mut state = State {
            network_id: key(&wire.network_id, "network_id")?,
            params: params_from_wire(&wire.params.unwrap_or_default())?,
            epoch: wire.epoch,
            accounts: Default::default(),
            stakes: Default::default(),
            subnets: Default::default(),
            supply: wire
                .supply
                .map(|s| Supply {
                    genesis: s.genesis,
                    emitted: s.emitted,
                    burned: s.burned,
                })
                .unwrap_or_default(),
            finalizers: Default::default(),
            unbonding: Default::default(),
            delegates: Default::default(),
            next_subnet: wire.next_subnet,
            swaps: swaps_from_wire(wire.swaps, "swaps")?,
            swapped: swaps_from_wire(wire.swapped, "swapped")?,
        };
        for d in wire.delegates {
            let delegate = Delegate {
                owner: key(&d.owner, "delegate owner")?,
                take_per_mille: u64::from(d.take_per_mille),
                changed_at: d.changed_at,
            };
            insert_last(
                &mut state.delegates,
                key(&d.hotkey, "delegate")?,
                delegate,
                "delegates",
            )?;
        }
        for f in wire.finalizers {
            let finalizer = Finalizer {
                coldkey: key(&f.coldkey, "finalizer")?,
                declared: f.declared,
                left_at: f.left_at,
                jailed_until: f.jailed_until,
                in_set_since: f.in_set_since,
            };
            let hotkey = key(&f.hotkey, "finalizer")?;
            insert_last(&mut state.finalizers, hotkey, finalizer, "finalizers")?;
        }
        for u in wire.unbonding {
            let entry = (
                u.release_epoch,
                key(&u.coldkey, "unbonding")?,
                key(&u.hotkey, "unbonding")?,
            );
            insert_last(&mut state.unbonding, entry, u.amount, "unbonding")?;
        }
        for a in wire.accounts {
            let coldkey = key(&a.coldkey, "account")?;
            let account = Account {
                balance: a.balance,
                nonce: a.nonce,
            };
            insert_last(&mut state.accounts, coldkey, account, "accounts")?;
        }
        for s in wire.stakes {
            let mut hotkeys = std::collections::BTreeMap::new();
            for h in s.hotkeys {
                let mut coldkeys = std::collections::BTreeMap::new();
                for c in h.coldkeys {
                    insert_last(&mut coldkeys, key(&c.coldkey, "stake")?, c.amount, "stakes")?;
                }
                insert_last(&mut hotkeys, key(&h.hotkey, "stake")?, coldkeys, "stakes")?;
            }
            insert_last(&mut state.stakes, s.subnet, hotkeys, "stakes")?;
        }
        for s in wire.subnets {
            let id = s.id;
            let subnet = subnet_from_wire(s)?;
            insert_last(&mut state.subnets, id, subnet, "subnets")?;
        }
        Ok(state)
    }
}

fn corrupt(reason: impl Into<String>) -> StateError {
    StateError::Corrupt(reason.into())
}

fn key(bytes: &[u8], what: &str) -> Result<Key, StateError> {
    Key::from_slice(bytes).ok_or_else(|| corrupt(format!("{what}: a key of {} bytes", bytes.len())))
}

fn u16_of(value: u32, what: &str) -> Result<u16, StateError> {
    u16::try_from(value).map_err(|_| corrupt(format!("{what}: {value} is over 65535")))
}

/// Inserts `(k, v)` after every key already in `map`, refusing keys out of order or repeated.
fn insert_last<K: Ord, V>(
    map: &mut std::collections::BTreeMap<K, V>,
    k: K,
    v: V,
    what: &str,
) -> Result<(), StateError> {
    if map.last_key_value().is_some_and(|(last, _)| *last >= k) {
        return Err(corrupt(format!(
            "{what}: not sorted by key, or a key repeated"
        )));
    }
    map.insert(k, v);
    Ok(())
}

fn params_to_wire(p: &Params) -> v1::StateParams {
    v1::StateParams {
        burn_decay_per_mille: p.burn_decay_per_mille,
        subnet_lock: p.subnet_lock,
        max_subnets: p.max_subnets,
        owner_cut_per_mille: p.owner_cut_per_mille,
        validator_take_per_mille: p.validator_take_per_mille,
        tx_fee: p.tx_fee,
        max_finalizers: p.max_finalizers,
        unbonding_epochs: p.unbonding_epochs,
        jail_epochs: p.jail_epochs,
        slash_per_mille: u32::try_from(p.slash_per_mille).unwrap_or(u32::MAX),
        subnet_defaults: Some(subnet_params_to_wire(&p.subnet_defaults)),
        bounds: PARAMS
            .iter()
            .zip(p.bounds.0)
            .map(|(spec, (min, max))| v1::ParamBound {
                name: spec.name.to_string(),
                min,
                max,
            })
            .collect(),
        owner_rate_limit: p.owner_rate_limit,
        take_rate_limit: p.take_rate_limit,
        subnet_immunity_epochs: p.subnet_immunity_epochs,
        emission_mode: p.emission_mode.to_wire(),
        emission_smoothing_epochs: p.emission_smoothing_epochs,
    }
}

fn params_from_wire(p: &v1::StateParams) -> Result<Params, StateError> {
    if p.bounds.len() != PARAMS.len()
        || p.bounds
            .iter()
            .zip(&PARAMS)
            .any(|(b, spec)| b.name != spec.name)
    {
        return Err(corrupt("params.bounds: not every parameter, in order"));
    }
    let mut bounds = Bounds::default();
    for ((slot, b), spec) in bounds.0.iter_mut().zip(&p.bounds).zip(&PARAMS) {
        if b.min < spec.min || b.max > spec.max || b.min > b.max {
            return Err(corrupt(format!(
                "params.bounds: {} outside its built-in bounds",
                b.name
            )));
        }
        *slot = (b.min, b.max);
    }
    Ok(Params {
        burn_decay_per_mille: p.burn_decay_per_mille,
        subnet_lock: p.subnet_lock,
        max_subnets: p.max_subnets,
        owner_cut_per_mille: p.owner_cut_per_mille,
        validator_take_per_mille: p.validator_take_per_mille,
        tx_fee: p.tx_fee,
        max_finalizers: p.max_finalizers,
        unbonding_epochs: p.unbonding_epochs,
        jail_epochs: p.jail_epochs,
        slash_per_mille: u64::from(p.slash_per_mille),
        subnet_defaults: subnet_params_from_wire(
            &p.subnet_defaults.unwrap_or_default(),
            "params.subnet_defaults",
        )?,
        bounds,
        owner_rate_limit: p.owner_rate_limit,
        take_rate_limit: p.take_rate_limit,
        subnet_immunity_epochs: p.subnet_immunity_epochs,
        emission_mode: EmissionMode::from_wire(p.emission_mode)
            .ok_or_else(|| corrupt(format!("params.emission_mode {}", p.emission_mode)))?,
        emission_smoothing_epochs: p.emission_smoothing_epochs,
    })
}

fn subnet_params_to_wire(p: &SubnetParams) -> v1::SubnetParams {
    v1::SubnetParams {
        max_uids: p.max_uids,
        max_validators: p.max_validators,
        immunity_epochs: p.immunity_epochs,
        min_burn: p.min_burn,
        max_burn: p.max_burn,
        kappa: u32::from(p.kappa),
        bonds_moving_average: p.bonds_moving_average,
        activity_cutoff: p.activity_cutoff,
        yuma3: p.yuma3,
        liquid_alpha: p.liquid_alpha,
        alpha_low: u32::from(p.alpha_low),
        alpha_high: u32::from(p.alpha_high),
        commit_reveal: p.commit_reveal,
        weights_rate_limit: p.weights_rate_limit,
        min_allowed_weights: p.min_allowed_weights,
        max_weight_limit: u32::from(p.max_weight_limit),
        tempo: p.tempo,
    }
}

fn subnet_params_from_wire(p: &v1::SubnetParams, what: &str) -> Result<SubnetParams, StateError> {
    let params = SubnetParams {
        max_uids: p.max_uids,
        max_validators: p.max_validators,
        immunity_epochs: p.immunity_epochs,
        min_burn: p.min_burn,
        max_burn: p.max_burn,
        kappa: u16_of(p.kappa, what)?,
        bonds_moving_average: p.bonds_moving_average,
        activity_cutoff: p.activity_cutoff,
        yuma3: p.yuma3,
        liquid_alpha: p.liquid_alpha,
        alpha_low: u16_of(p.alpha_low, what)?,
        alpha_high: u16_of(p.alpha_high, what)?,
        commit_reveal: p.commit_reveal,
        weights_rate_limit: p.weights_rate_limit,
        min_allowed_weights: p.min_allowed_weights,
        max_weight_limit: u16_of(p.max_weight_limit, what)?,
        tempo: p.tempo,
    };
    params
        .check()
        .map_err(|e| corrupt(format!("{what}: {e}")))?;
    Ok(params)
}

fn swaps_to_wire(swaps: &std::collections::BTreeMap<Key, HotkeySwap>) -> Vec<v1::HotkeySwapState> {
    swaps
        .iter()
        .map(|(old, s)| v1::HotkeySwapState {
            old_hotkey: old.0.to_vec(),
            hotkey: s.hotkey.0.to_vec(),
            coldkey: s.coldkey.0.to_vec(),
            epoch: s.epoch,
        })
        .collect()
}

fn swaps_from_wire(
    wire: Vec<v1::HotkeySwapState>,
    what: &str,
) -> Result<std::collections::BTreeMap<Key, HotkeySwap>, StateError> {
    let mut swaps = std::collections::BTreeMap::new();
    for s in wire {
        let swap = HotkeySwap {
            hotkey: key(&s.hotkey, what)?,
            coldkey: key(&s.coldkey, what)?,
            epoch: s.epoch,
        };
        insert_last(&mut swaps, key(&s.old_hotkey, what)?, swap, what)?;
    }
    Ok(swaps)
}

fn pairs_to_wire(pairs: &[(u32, u16)]) -> (Vec<u32>, Vec<u32>) {
    pairs.iter().map(|&(uid, v)| (uid, u32::from(v))).unzip()
}

fn pairs_from_wire(
    uids: Vec<u32>,
    values: Vec<u32>,
    what: &str,
) -> Result<Vec<(u32, u16)>, StateError> {
    if uids.len() != values.len() {
        return Err(corrupt(format!(
            "{what}: {} uids, {} values",
            uids.len(),
            values.len()
        )));
    }
    uids.into_iter()
        .zip(values)
        .map(|(uid, v)| Ok((uid, u16_of(v, what)?)))
        .collect()
}

fn subnet_to_wire(id: u32, s: &Subnet) -> v1::SubnetState {
    v1::SubnetState {
        id,
        name: s.name.clone(),
        tasks: s.tasks.clone(),
        owner: s.owner.map(|k| k.0.to_vec()).unwrap_or_default(),
        locked: s.locked,
        burn: s.burn,
        neurons: s
            .neurons
            .iter()
            .map(|n| {
                let (weight_uids, weight_values) = pairs_to_wire(&n.weights);
                let (bond_uids, bond_values) = pairs_to_wire(&n.bonds);
                let [consensus, incentive, dividends, trust] = n.results.map(u32::from);
                v1::NeuronState {
                    hotkey: n.hotkey.0.to_vec(),
                    owner: n.owner.0.to_vec(),
                    registered_at: n.registered_at,
                    last_update: n.last_update,
                    weight_uids,
                    weight_values,
                    bond_uids,
                    bond_values,
                    last_emission: n.last_emission,
                    consensus,
                    incentive,
                    dividends,
                    trust,
                    permit_since: n.permit_since,
                    last_dividends: n.last_dividends,
                }
            })
            .collect(),
        params: Some(subnet_params_to_wire(&s.params)),
        pending: s.pending.as_ref().map(subnet_params_to_wire),
        params_changed_at: s.params_changed_at,
        changes: s
            .changes
            .iter()
            .map(|(name, &epoch)| v1::ParamChange {
                name: name.clone(),
                epoch,
            })
            .collect(),
        created_at: s.created_at,
        stake_ema: s.stake_ema,
        flow_ema: s.flow_ema,
        flow: s.flow,
        pending_emission: s.pending_emission,
        prior: s.prior.as_ref().map(|(p, _)| subnet_params_to_wire(p)),
        prior_until: s.prior.map_or(0, |(_, until)| until),
    }
}

fn subnet_from_wire(s: v1::SubnetState) -> Result<Subnet, StateError> {
    let owner = match s.owner.is_empty() {
        true => None,
        false => Some(key(&s.owner, "subnet owner")?),
    };
    let neurons = s
        .neurons
        .into_iter()
        .map(|n| {
            Ok(Neuron {
                hotkey: key(&n.hotkey, "neuron")?,
                owner: key(&n.owner, "neuron owner")?,
                registered_at: n.registered_at,
                last_update: n.last_update,
                weights: pairs_from_wire(n.weight_uids, n.weight_values, "weights")?,
                bonds: pairs_from_wire(n.bond_uids, n.bond_values, "bonds")?,
                last_emission: n.last_emission,
                results: [
                    u16_of(n.consensus, "consensus")?,
                    u16_of(n.incentive, "incentive")?,
                    u16_of(n.dividends, "dividends")?,
                    u16_of(n.trust, "trust")?,
                ],
                permit_since: n.permit_since,
                last_dividends: n.last_dividends,
            })
        })
        .collect::<Result<Vec<_>, StateError>>()?;
    let mut changes = std::collections::BTreeMap::new();
    for c in s.changes {
        insert_last(&mut changes, c.name, c.epoch, "subnet changes")?;
    }
    Ok(Subnet {
        name: s.name,
        tasks: s.tasks,
        owner,
        locked: s.locked,
        burn: s.burn,
        neurons,
        params: subnet_params_from_wire(&s.params.unwrap_or_default(), "subnet params")?,
        pending: s
            .pending
            .map(|p| subnet_params_from_wire(&p, "pending subnet params"))
            .transpose()?,
        params_changed_at: s.params_changed_at,
        changes,
        created_at: s.created_at,
        stake_ema: s.stake_ema,
        flow_ema: s.flow_ema,
        flow: s.flow,
        pending_emission: s.pending_emission,
        prior: s
            .prior
            .map(|p| subnet_params_from_wire(&p, "prior subnet params"))
            .transpose()?
            .map(|p| (p, s.prior_until)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small state with every kind of entry, from fixed keys.
    fn sample() -> State {
        let k = |b: u8| Key([b; 32]);
        let mut state = State {
            network_id: k(9),
            params: Params::default(),
            epoch: 7,
            accounts: Default::default(),
            stakes: Default::default(),
            subnets: Default::default(),
            supply: Supply {
                genesis: 1_000_000,
                emitted: 5_000,
                burned: 1_000,
            },
            finalizers: Default::default(),
            unbonding: Default::default(),
            delegates: Default::default(),
            next_subnet: 2,
            swaps: Default::default(),
            swapped: Default::default(),
        };
        state.delegates.insert(
            k(5),
            Delegate {
                owner: k(2),
                take_per_mille: 90,
                changed_at: 6,
            },
        );
        state.swaps.insert(
            k(5),
            HotkeySwap {
                hotkey: k(6),
                coldkey: k(2),
                epoch: 7,
            },
        );
        state.swapped.insert(
            k(4),
            HotkeySwap {
                hotkey: k(5),
                coldkey: k(2),
                epoch: 3,
            },
        );
        state.finalizers.insert(
            k(5),
            Finalizer {
                coldkey: k(2),
                declared: true,
                left_at: 0,
                jailed_until: 3,
                in_set_since: Some(2),
            },
        );
        state.unbonding.insert((9, k(2), k(5)), 25);
        state.accounts.insert(
            k(2),
            Account {
                balance: 900,
                nonce: 3,
            },
        );
        state.accounts.insert(
            k(1),
            Account {
                balance: 100,
                nonce: 0,
            },
        );
        let mut behind = std::collections::BTreeMap::new();
        behind.insert(k(1), 40);
        behind.insert(k(2), 60);
        state.stakes.entry(1).or_default().insert(k(5), behind);
        let mut subnet = Subnet::new(
            "reference".into(),
            vec!["sort".into(), "arith".into()],
            Some(k(1)),
            10,
            SubnetParams::default(),
            0,
        );
        subnet.pending = Some(SubnetParams {
            kappa: 40_000,
            tempo: 3,
            ..SubnetParams::default()
        });
        subnet.params_changed_at = Some(6);
        subnet.changes.insert("kappa".into(), 6);
        subnet.changes.insert("tempo".into(), 6);
        (subnet.stake_ema, subnet.flow_ema, subnet.flow) = (90, -4, 7);
        subnet.pending_emission = 12;
        subnet.prior = Some((
            SubnetParams {
                kappa: 30_000,
                ..SubnetParams::default()
            },
            9,
        ));
        state.subnets.insert(
            1,
            Subnet {
                neurons: vec![Neuron {
                    hotkey: k(5),
                    owner: k(2),
                    registered_at: 1,
                    last_update: 6,
                    weights: vec![(0, 65_535), (3, 7)],
                    bonds: vec![(0, 12)],
                    last_emission: 44,
                    results: [1, 2, 3, 4],
                    permit_since: Some(5),
                    last_dividends: 30,
                }],
                ..subnet
            },
        );
        state
    }

    #[test]
    fn the_root_is_the_hash_of_the_canonical_encoding() {
        let state = sample();
        let encoded = state.to_wire().encode_to_vec();
        assert_eq!(state.to_bytes(), encoded);
        assert_eq!(
            state.root(),
            blake3::derive_key("meshmind/v1/state", &encoded)
        );
        assert_eq!(hex::encode(state.root()), GOLDEN_STATE_ROOT);
        let back = State::from_wire(state.to_wire()).expect("reads back");
        assert_eq!(back, state);
    }

    #[test]
    fn a_non_canonical_encoding_is_refused() {
        let mut wire = sample().to_wire();
        wire.accounts.reverse();
        assert!(matches!(
            State::from_wire(wire),
            Err(StateError::Corrupt(_))
        ));
        let mut wire = sample().to_wire();
        let first = wire.accounts[0].clone();
        wire.accounts.insert(0, first);
        assert!(matches!(
            State::from_wire(wire),
            Err(StateError::Corrupt(_))
        ));
        let mut wire = sample().to_wire();
        wire.subnets[0].neurons[0].weight_values.pop();
        assert!(matches!(
            State::from_wire(wire),
            Err(StateError::Corrupt(_))
        ));
        let mut wire = sample().to_wire();
        wire.subnets[0].neurons[0].trust = 65_536;
        assert!(matches!(
            State::from_wire(wire),
            Err(StateError::Corrupt(_))
        ));
        let mut wire = sample().to_wire();
        wire.network_id.pop();
        assert!(matches!(
            State::from_wire(wire),
            Err(StateError::Corrupt(_))
        ));
    }

    /// The state root of [`sample`]: if this changes, every snapshot's state root changes, which
    /// forks every running network. Change the protocol version instead.
    const GOLDEN_STATE_ROOT: &str =
        "ff65dba1566d14bfc8876db58b73b3cb6a17429a3fe6e4d38e37c6ca2e0617fd";
}
