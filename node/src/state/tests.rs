//! The economy's rules, hand-checked, and its invariants under random transactions and epochs.

use proptest::prelude::*;

use meshmind_protocols::{Keypair, NetworkId, Signed, v1};

use super::*;

pub(super) const NET: NetworkId = NetworkId::new([3; 32]);

pub(super) fn key(k: &Keypair) -> Key {
    Key(k.public().to_bytes())
}

pub(super) struct World {
    pub(super) state: State,
    pub(super) cold: Vec<Keypair>,
    pub(super) hot: Vec<Keypair>,
}

/// Two validators (stake 1000 each) on subnet 1 (owned by cold[0]); cold[2] has 100000 free.
pub(super) fn world() -> World {
    let cold: Vec<Keypair> = (0..4)
        .map(|_| Keypair::generate().expect("random"))
        .collect();
    let hot: Vec<Keypair> = (0..8)
        .map(|_| Keypair::generate().expect("random"))
        .collect();
    let genesis = v1::Genesis {
        network_name: "test".into(),
        genesis_time_ms: 0,
        epoch_ms: 1_000,
        subnets: vec![v1::SubnetSpec {
            id: 1,
            name: "one".into(),
            tasks: vec!["sort".into()],
            owner: key(&cold[0]).0.to_vec(),
        }],
        validators: (0..2)
            .map(|i| v1::GenesisValidator {
                hotkey: key(&hot[i]).0.to_vec(),
                coldkey: key(&cold[i]).0.to_vec(),
                stake: 1_000,
            })
            .collect(),
        balances: vec![v1::GenesisBalance {
            coldkey: key(&cold[2]).0.to_vec(),
            amount: 100_000,
        }],
        emission_per_epoch: 1_000_000,
        neurons: Vec::new(),
        economy: None,
    };
    let mut state = State::from_genesis(&genesis, NET).expect("a usable genesis");
    // The rules below are checked without the fee; the fee has tests of its own.
    state.params.tx_fee = 0;
    World { state, cold, hot }
}

pub(super) fn tx(signer: &Keypair, nonce: u64, kind: v1::transaction::Kind) -> v1::Transaction {
    signed_tx(NET, signer, nonce, kind)
}

pub(super) fn transfer(to: &Keypair, amount: u64) -> v1::transaction::Kind {
    v1::transaction::Kind::Transfer(v1::Transfer {
        to: key(to).0.to_vec(),
        amount,
    })
}

/// A registration of `hotkey` on subnet 1, with the hotkey's consent to `coldkey` signing it.
pub(super) fn register(
    hotkey: &Keypair,
    coldkey: &Keypair,
    max_burn: u64,
) -> v1::transaction::Kind {
    v1::transaction::Kind::Register(
        v1::Register {
            subnet: 1,
            max_burn,
            ..Default::default()
        }
        .consented(hotkey, &NET.to_vec(), &coldkey.public()),
    )
}

pub(super) fn stake(hotkey: &Keypair, amount: u64) -> v1::transaction::Kind {
    v1::transaction::Kind::AddStake(v1::AddStake {
        hotkey: key(hotkey).0.to_vec(),
        subnet: 1,
        amount,
    })
}

#[test]
fn genesis_registers_validators_and_accounts_for_every_unit() {
    let w = world();
    let subnet = &w.state.subnets[&1];
    assert_eq!(subnet.neurons.len(), 2);
    assert_eq!(w.state.hotkey_stake(1, &key(&w.hot[0])), 1_000);
    assert_eq!(w.state.supply.genesis, 102_000);
    assert_eq!(w.state.held(), 102_000);
    w.state.check_invariants().expect("invariants");
}

#[test]
fn transfers_move_balance_once_and_refuse_replays_and_forgeries() {
    let mut w = world();
    let t = tx(&w.cold[2], 0, transfer(&w.cold[3], 400));
    w.state.apply(&t).expect("applies");
    assert_eq!(w.state.account(&key(&w.cold[2])).balance, 99_600);
    assert_eq!(w.state.account(&key(&w.cold[3])).balance, 400);
    assert_eq!(w.state.account(&key(&w.cold[2])).nonce, 1);
    assert_eq!(
        w.state.apply(&t),
        Err(TxError::Nonce {
            expected: 1,
            got: 0
        }),
        "a replay is refused by nonce"
    );
    let too_much = tx(&w.cold[3], 0, transfer(&w.cold[2], 401));
    assert_eq!(
        w.state.apply(&too_much),
        Err(TxError::Insufficient {
            needed: 401,
            available: 400
        })
    );
    let mut forged = tx(&w.cold[2], 1, transfer(&w.cold[3], 1));
    if let Some(v1::transaction::Kind::Transfer(t)) = &mut forged.kind {
        t.amount = 50_000;
    }
    assert_eq!(w.state.apply(&forged), Err(TxError::BadSignature));
    let mut other = tx(&w.cold[2], 1, transfer(&w.cold[3], 1));
    other.network_id = vec![9; 32];
    let other = other.signed(&w.cold[2]);
    assert_eq!(w.state.apply(&other), Err(TxError::WrongNetwork));
    assert_eq!(
        w.state.account(&key(&w.cold[2])).balance,
        99_600,
        "nothing lost"
    );
    w.state.check_invariants().expect("invariants");
}

#[test]
fn registration_burns_its_price_which_doubles_then_decays() {
    let mut w = world();
    let burn = w.state.subnets[&1].burn;
    assert_eq!(burn, w.state.subnets[&1].params.min_burn);
    w.state
        .apply(&tx(&w.cold[2], 0, register(&w.hot[2], &w.cold[2], burn)))
        .expect("registers");
    assert_eq!(w.state.subnets[&1].uid_of(&key(&w.hot[2])), Some(2));
    assert_eq!(w.state.supply.burned, burn);
    assert_eq!(w.state.subnets[&1].burn, 2 * burn);
    assert_eq!(
        w.state
            .apply(&tx(&w.cold[2], 1, register(&w.hot[3], &w.cold[2], burn))),
        Err(TxError::BurnTooHigh {
            burn: 2 * burn,
            max: burn
        })
    );
    assert_eq!(
        w.state.apply(&tx(
            &w.cold[2],
            1,
            register(&w.hot[2], &w.cold[2], u64::MAX)
        )),
        Err(TxError::AlreadyRegistered(1))
    );
    w.state.end_epoch(&[], 0);
    assert_eq!(
        w.state.subnets[&1].burn,
        2 * burn - 2 * burn / 20,
        "5% decay"
    );
    for _ in 0..100 {
        w.state.end_epoch(&[], 0);
    }
    assert_eq!(w.state.subnets[&1].burn, burn, "never below the minimum");
    w.state.check_invariants().expect("invariants");
}

#[test]
fn a_full_subnet_prunes_the_lowest_earning_non_immune_neuron() {
    let mut w = world();
    w.state
        .subnets
        .get_mut(&1)
        .expect("subnet 1")
        .params
        .max_uids = 3;
    w.state
        .subnets
        .get_mut(&1)
        .expect("subnet 1")
        .params
        .immunity_epochs = 2;
    w.state
        .apply(&tx(
            &w.cold[2],
            0,
            register(&w.hot[2], &w.cold[2], u64::MAX),
        ))
        .expect("uid 2");
    // Full, and every neuron is still within its immunity period.
    assert_eq!(
        w.state.apply(&tx(
            &w.cold[2],
            1,
            register(&w.hot[3], &w.cold[2], u64::MAX)
        )),
        Err(TxError::SubnetFull(1))
    );
    w.state.end_epoch(&[], 0);
    w.state.end_epoch(&[], 0);
    // Everyone earned 0: the oldest registration (uid 0 at epoch 0, before uid 1 by UID) goes.
    let staker = key(&w.cold[0]);
    let before = w.state.account(&staker).balance;
    w.state
        .apply(&tx(
            &w.cold[2],
            1,
            register(&w.hot[3], &w.cold[2], u64::MAX),
        ))
        .expect("prunes");
    let subnet = &w.state.subnets[&1];
    assert_eq!(subnet.uid_of(&key(&w.hot[3])), Some(0));
    assert_eq!(subnet.uid_of(&key(&w.hot[0])), None);
    // It is a finalizer, so its stake goes back to its staker only after unbonding (evidence
    // against it must still find it).
    assert_eq!(w.state.account(&staker).balance, before);
    w.state.check_invariants().expect("invariants");
    for _ in 0..w.state.params.unbonding_epochs {
        w.state.end_epoch(&[], 0);
    }
    assert_eq!(
        w.state.account(&staker).balance,
        before + 1_000,
        "the pruned hotkey's stake goes back to its staker"
    );
    w.state.check_invariants().expect("invariants");
}

#[test]
fn emission_pays_the_owner_then_miners_and_validators() {
    let mut w = world();
    // A miner registers; both validators weight it fully.
    w.state
        .apply(&tx(
            &w.cold[2],
            0,
            register(&w.hot[2], &w.cold[2], u64::MAX),
        ))
        .expect("registers");
    w.state
        .apply(&tx(&w.cold[3], 0, transfer(&w.cold[3], 0)))
        .expect_err("a zero transfer is malformed");
    w.state.end_epoch(&[], 0);
    let reveals: Vec<v1::WeightReveal> = (0..2)
        .map(|i| v1::WeightReveal {
            network_id: NET.to_vec(),
            subnet: 1,
            epoch: 0,
            validator: key(&w.hot[i]).0.to_vec(),
            uids: vec![2],
            weights: vec![65_535],
            salt: vec![0; 32],
            signature: vec![0; 64],
        })
        .collect();
    let owner_before = w.state.account(&key(&w.cold[0])).balance;
    let results = w.state.end_epoch(&reveals, 1_000_000);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].incentive[2], 65_535);
    assert_eq!(
        w.state.account(&key(&w.cold[0])).balance - owner_before,
        180_000,
        "the owner's 18 %"
    );
    let miner = w.state.stake(1, &key(&w.hot[2]), &key(&w.cold[2]));
    assert!(
        (409_000..=410_000).contains(&miner),
        "miners' half: {miner}"
    );
    let v0 = w.state.hotkey_stake(1, &key(&w.hot[0])) - 1_000;
    let v1 = w.state.hotkey_stake(1, &key(&w.hot[1])) - 1_000;
    assert!(v0.abs_diff(v1) <= 1 && v0 + v1 >= 409_000, "{v0} {v1}");
    assert!(w.state.supply.emitted <= 1_000_000);
    w.state.check_invariants().expect("invariants");
}

#[test]
fn dividends_give_the_take_to_the_owner_and_the_rest_to_stakers() {
    let mut w = world();
    // cold[2] stakes 1000 on validator 0's hotkey: half of its stake.
    w.state
        .apply(&tx(&w.cold[2], 0, stake(&w.hot[0], 1_000)))
        .expect("stakes");
    assert_eq!(
        w.state.apply(&tx(&w.cold[2], 1, stake(&w.hot[5], 1))),
        Err(TxError::NotRegistered(1)),
        "stake goes to registered hotkeys only"
    );
    let before = w.state.stake(1, &key(&w.hot[0]), &key(&w.cold[2]));
    w.state
        .pay_dividends(1, key(&w.hot[0]), key(&w.cold[0]), 10_000);
    let staker = w.state.stake(1, &key(&w.hot[0]), &key(&w.cold[2])) - before;
    assert_eq!(staker, 4_100, "half of the 82 % after the 18 % take");
    assert_eq!(w.state.hotkey_stake(1, &key(&w.hot[0])), 2_000 + 10_000);
}

#[test]
fn a_stored_state_reads_back_with_the_same_root_and_corruption_is_an_error() {
    let mut w = world();
    w.state
        .apply(&tx(&w.cold[2], 0, transfer(&w.cold[3], 7)))
        .expect("applies");
    let bytes = w.state.to_bytes();
    let back = State::from_bytes(&bytes).expect("reads");
    assert_eq!(back.root(), w.state.root());
    assert_eq!(back, w.state);
    assert!(matches!(
        State::from_bytes(&bytes[..bytes.len() / 2]),
        Err(StateError::Corrupt(_))
    ));
    let mut broken = w.state.clone();
    broken.supply.emitted += 1;
    assert!(matches!(
        State::from_bytes(&broken.to_bytes()),
        Err(StateError::Invariant(_))
    ));
}

#[test]
fn creating_a_subnet_locks_its_cost() {
    let mut w = world();
    let lock = w.state.params.subnet_lock;
    let create = |max_lock| {
        v1::transaction::Kind::CreateSubnet(v1::CreateSubnet {
            name: "two".into(),
            tasks: vec!["arith".into()],
            max_lock,
        })
    };
    assert_eq!(
        w.state.apply(&tx(&w.cold[2], 0, create(lock))),
        Err(TxError::Insufficient {
            needed: lock,
            available: 100_000
        })
    );
    w.state.credit(key(&w.cold[3]), 0);
    w.state.params.subnet_lock = 50_000;
    w.state
        .apply(&tx(&w.cold[2], 0, create(50_000)))
        .expect("creates");
    let subnet = &w.state.subnets[&2];
    assert_eq!(subnet.owner, Some(key(&w.cold[2])));
    assert_eq!(subnet.locked, 50_000);
    w.state.check_invariants().expect("invariants");
}

/// One random step: a transaction from a random coldkey, or an epoch with random weights.
#[derive(Debug, Clone)]
enum Step {
    Tx {
        from: usize,
        to: usize,
        kind: u8,
        amount: u64,
        nonce_skew: u8,
    },
    Epoch {
        weights: Vec<(usize, u32, u16)>,
        emission: u64,
    },
    /// Evidence against `hot[offender]` enters a snapshot.
    Punish { offender: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0usize..4, 0usize..8, 0u8..11, 0u64..20_000, 0u8..8).prop_map(
            |(from, to, kind, amount, nonce_skew)| Step::Tx { from, to, kind, amount, nonce_skew }
        ),
        1 => (
            proptest::collection::vec((0usize..8, 0u32..8, any::<u16>()), 0..6),
            0u64..10_000_000,
        )
            .prop_map(|(weights, emission)| Step::Epoch { weights, emission }),
        1 => (0usize..8).prop_map(|offender| Step::Punish { offender }),
    ]
}

/// Declaring `hotkey` a finalizer under `coldkey`, with the hotkey's consent.
pub(super) fn declare(hotkey: &Keypair, coldkey: &Keypair) -> v1::transaction::Kind {
    v1::transaction::Kind::DeclareFinalizer(v1::DeclareFinalizer::default().consented(
        hotkey,
        &NET.to_vec(),
        &coldkey.public(),
    ))
}

pub(super) fn undeclare(hotkey: &Keypair) -> v1::transaction::Kind {
    v1::transaction::Kind::UndeclareFinalizer(v1::UndeclareFinalizer {
        hotkey: key(hotkey).0.to_vec(),
    })
}

/// The set the rules say must finalize next: the declared, unjailed hotkeys with the most stake
/// from their declaring coldkey (ties to the lower hotkey), at most `max_finalizers`.
fn expected_set(state: &State) -> Vec<(Key, u64)> {
    let mut candidates: Vec<(Key, u64)> = state
        .finalizers
        .iter()
        .filter(|(_, f)| f.declared && f.jailed_until <= state.epoch)
        .map(|(&hotkey, f)| (hotkey, state.own_stake(&hotkey, &f.coldkey)))
        .filter(|(_, own)| *own > 0)
        .collect();
    candidates.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    candidates.truncate(state.params.max_finalizers as usize);
    candidates.sort();
    candidates
}

fn run(w: &mut World, steps: &[Step]) -> Result<(), TestCaseError> {
    for step in steps {
        match step {
            Step::Tx {
                from,
                to,
                kind,
                amount,
                nonce_skew,
            } => {
                let signer = &w.cold[*from];
                let mut nonce = w.state.account(&key(signer)).nonce;
                if *nonce_skew == 0 {
                    nonce = nonce.wrapping_sub(1);
                }
                let kind = match kind {
                    0 => transfer(&w.cold[to % 4], *amount),
                    // On some registered hotkey.
                    1 => {
                        let neurons: Vec<(u32, Key)> = w
                            .state
                            .subnets
                            .iter()
                            .flat_map(|(&id, s)| s.neurons.iter().map(move |n| (id, n.hotkey)))
                            .collect();
                        let (subnet, hotkey) = neurons
                            .get(to % neurons.len().max(1))
                            .copied()
                            .unwrap_or((1, key(&w.hot[*to])));
                        v1::transaction::Kind::AddStake(v1::AddStake {
                            hotkey: hotkey.0.to_vec(),
                            subnet,
                            amount: *amount,
                        })
                    }
                    2 => v1::transaction::Kind::RemoveStake(v1::RemoveStake {
                        hotkey: key(&w.hot[*to]).0.to_vec(),
                        subnet: 1,
                        amount: *amount,
                    }),
                    3 => register(&w.hot[*to], signer, *amount),
                    4 => declare(&w.hot[*to], signer),
                    5 => undeclare(&w.hot[*to]),
                    6 => v1::transaction::Kind::CreateSubnet(v1::CreateSubnet {
                        name: format!("s{to}"),
                        tasks: vec!["t".into()],
                        max_lock: *amount * 100,
                    }),
                    // A parameter of subnet 1 or 2, any value (most are out of bounds).
                    7 => v1::transaction::Kind::SetSubnetParams(v1::SetSubnetParams {
                        subnet: 1 + (*to as u32 % 2),
                        values: vec![v1::ParamValue {
                            name: PARAMS[*amount as usize % PARAMS.len()].name.into(),
                            value: amount / PARAMS.len() as u64,
                        }],
                    }),
                    8 => v1::transaction::Kind::SetTake(v1::SetTake {
                        hotkey: key(&w.hot[*to]).0.to_vec(),
                        take_per_mille: (*amount % 200) as u32,
                    }),
                    // From some stake the signer holds to some registered hotkey.
                    9 => {
                        let held: Vec<(u32, Key)> = w
                            .state
                            .stakes
                            .iter()
                            .flat_map(|(&id, h)| h.iter().map(move |(k, c)| (id, *k, c)))
                            .filter(|(_, k, c)| c.contains_key(&key(signer)) && !w.state.bonded(k))
                            .map(|(id, k, _)| (id, k))
                            .collect();
                        let neurons: Vec<(u32, Key)> = w
                            .state
                            .subnets
                            .iter()
                            .flat_map(|(&id, s)| s.neurons.iter().map(move |n| (id, n.hotkey)))
                            .filter(|&(id, k)| Some(&(id, k)) != held.first())
                            .collect();
                        let from = held.get(to % held.len().max(1)).copied();
                        let from = from.unwrap_or((1, key(&w.hot[*to])));
                        let dest = neurons.get((to + 1) % neurons.len().max(1)).copied();
                        let dest = dest.unwrap_or((1, key(&w.hot[(to + 1) % 8])));
                        v1::transaction::Kind::MoveStake(v1::MoveStake {
                            from_hotkey: from.1.0.to_vec(),
                            from_subnet: from.0,
                            to_hotkey: dest.1.0.to_vec(),
                            to_subnet: dest.0,
                            amount: (amount % 500 + 1)
                                .min(w.state.stake(from.0, &from.1, &key(signer)).max(1)),
                        })
                    }
                    // To a key of its own (fresh the first time), or to one of the world's.
                    _ => {
                        let fresh = Keypair::from_secret(&[(*amount % 7) as u8 + 1; 32]);
                        let new = if amount % 3 == 0 {
                            &w.hot[(to + 1) % 8]
                        } else {
                            &fresh
                        };
                        v1::transaction::Kind::SwapHotkey(
                            v1::SwapHotkey {
                                old_hotkey: key(&w.hot[*to]).0.to_vec(),
                                ..Default::default()
                            }
                            .consented(
                                new,
                                &NET.to_vec(),
                                &signer.public(),
                            ),
                        )
                    }
                };
                let before = w.state.clone();
                if w.state.apply(&tx(signer, nonce, kind)).is_err() {
                    prop_assert_eq!(&w.state, &before, "a refused transaction changes nothing");
                }
            }
            Step::Epoch { weights, emission } => {
                let reveals: Vec<v1::WeightReveal> = weights
                    .iter()
                    .map(|&(v, uid, w8)| v1::WeightReveal {
                        network_id: NET.to_vec(),
                        subnet: 1,
                        epoch: 0,
                        validator: key(&w.hot[v]).0.to_vec(),
                        uids: vec![uid],
                        weights: vec![u32::from(w8)],
                        salt: vec![0; 32],
                        signature: vec![0; 64],
                    })
                    .collect();
                let emitted = w.state.supply.emitted;
                w.state.end_epoch(&reveals, *emission);
                prop_assert!(w.state.supply.emitted - emitted <= *emission);
            }
            Step::Punish { offender } => {
                let burned = w.state.supply.burned;
                let slashed = w.state.punish(&key(&w.hot[*offender]));
                prop_assert_eq!(w.state.supply.burned - burned, slashed);
            }
        }
        let set = w.state.voting_set(&v1::ValidatorSet::default());
        let chosen: Vec<(Key, u64)> = set
            .validators
            .iter()
            .map(|v| (Key::from_slice(&v.hotkey).expect("a key"), v.stake))
            .collect();
        let expected = expected_set(&w.state);
        if !expected.is_empty() {
            prop_assert_eq!(chosen, expected, "the set is the top of the declared stake");
        }
        if let Err(e) = w.state.check_invariants() {
            return Err(TestCaseError::fail(e.to_string()));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn supply_is_conserved_and_replays_are_deterministic(
        steps in proptest::collection::vec(step(), 1..40),
        yuma3 in any::<bool>(),
        flows in any::<bool>(),
    ) {
        let mut w = world();
        if flows {
            w.state.params.emission_mode = EmissionMode::FlowEma;
        }
        // Either bond rule: classic, or Yuma-3 with liquid alpha.
        w.state.subnets.get_mut(&1).expect("subnet 1").params.yuma3 = yuma3;
        w.state.subnets.get_mut(&1).expect("subnet 1").params.liquid_alpha = yuma3;
        // A small set and short windows, so the top-k, unbonding and jail all come into play.
        w.state.params.max_finalizers = 2;
        w.state.params.unbonding_epochs = 3;
        w.state.params.jail_epochs = 2;
        // Few subnets, short rate limits and averages, so deregistration, repeated changes and
        // the market's moves all come into play.
        w.state.params.max_subnets = 2;
        w.state.params.subnet_immunity_epochs = 2;
        w.state.params.owner_rate_limit = 2;
        w.state.params.take_rate_limit = 2;
        w.state.params.emission_smoothing_epochs = 3;
        w.state.params.subnet_lock = 10;
        let start = w.state.clone();
        run(&mut w, &steps)?;
        // The same steps from the same start give the same state, bit for bit.
        let mut again = World { state: start, cold: w.cold.clone(), hot: w.hot.clone() };
        run(&mut again, &steps)?;
        prop_assert_eq!(again.state.root(), w.state.root());
    }
}

#[test]
fn genesis_rules_apply_and_unaffordable_transactions_are_refused_before_forwarding() {
    let params = Params::from_genesis(Some(&v1::EconomyParams {
        max_uids: 3,
        immunity_epochs: 0,
        min_burn: 50,
        max_burn: 10,
        subnet_lock: 7,
        validator_take_per_mille: 100,
        yuma3: true,
        liquid_alpha: true,
        activity_cutoff: 3,
        tx_fee: 5,
        max_finalizers: 0,
        unbonding_epochs: 9,
        jail_epochs: 1,
        slash_per_mille: 2_000,
        ..Default::default()
    }))
    .expect("usable rules");
    assert_eq!(params.max_finalizers, 64, "zero takes the default");
    assert_eq!(params.unbonding_epochs, 9);
    assert_eq!(
        params.jail_epochs, MIN_JAIL_EPOCHS,
        "never shorter than evidence lives"
    );
    assert_eq!(params.slash_per_mille, 1_000, "at most all of it");
    let d = params.subnet_defaults;
    assert_eq!(d.activity_cutoff, 3);
    assert_eq!(params.tx_fee, 5);
    assert!(d.yuma3 && d.liquid_alpha);
    assert_eq!(d.max_uids, 3);
    assert_eq!(d.immunity_epochs, 4, "zero takes the default");
    assert_eq!((d.min_burn, d.max_burn), (50, 50), "max never below min");
    assert_eq!(params.subnet_lock, 7);
    assert_eq!(params.validator_take_per_mille, 100);
    let w = world();
    let mut genesis = v1::Genesis {
        network_name: "n".into(),
        epoch_ms: 1_000,
        validators: vec![v1::GenesisValidator {
            hotkey: key(&w.hot[0]).0.to_vec(),
            coldkey: key(&w.cold[0]).0.to_vec(),
            stake: 1,
        }],
        economy: Some(v1::EconomyParams {
            max_uids: 70_000,
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = meshmind_protocols::Validate::validate(&genesis).expect_err("too many UIDs");
    assert_eq!(err.field, "economy.max_uids");
    genesis.economy = None;
    meshmind_protocols::Validate::validate(&genesis).expect("valid without it");

    // cold[3] holds nothing: its transfer is refused before it is forwarded or kept.
    let poor = tx(&w.cold[3], 0, transfer(&w.cold[2], 1));
    assert_eq!(
        w.state.precheck(&poor),
        Err(TxError::Insufficient {
            needed: 1,
            available: 0
        })
    );
    let mut pool = Mempool::new(2);
    assert!(matches!(
        pool.insert(poor, &w.state),
        Err(PoolError::Invalid(TxError::Insufficient { .. }))
    ));
    let ok = tx(&w.cold[2], 0, transfer(&w.cold[3], 1));
    assert_eq!(pool.insert(ok.clone(), &w.state), Ok(true));
    assert_eq!(pool.insert(ok, &w.state), Ok(false), "a repeat is not new");
    let far = tx(&w.cold[2], MAX_NONCE_AHEAD + 1, transfer(&w.cold[3], 1));
    assert!(matches!(
        pool.insert(far, &w.state),
        Err(PoolError::TooFarAhead { .. })
    ));
    assert!(matches!(
        pool.insert(tx(&w.cold[2], 1, transfer(&w.cold[3], 1)), &w.state),
        Ok(true)
    ));
    assert!(matches!(
        pool.insert(tx(&w.cold[2], 2, transfer(&w.cold[3], 1)), &w.state),
        Err(PoolError::Full(2))
    ));
}

#[test]
fn a_validator_silent_past_the_activity_cutoff_stops_counting() {
    let mut w = world();
    let reveal = |v: usize| v1::WeightReveal {
        network_id: NET.to_vec(),
        subnet: 1,
        epoch: 0,
        validator: key(&w.hot[v]).0.to_vec(),
        uids: vec![1 - v as u32],
        weights: vec![65_535],
        salt: vec![0; 32],
        signature: vec![0; 64],
    };
    let (both, only_first) = (vec![reveal(0), reveal(1)], vec![reveal(0)]);
    w.state.end_epoch(&both, 1_000);
    let cutoff = w.state.subnets[&1].params.activity_cutoff;
    // Its last vector was recorded in epoch 0; the state now stands at epoch `cutoff`.
    for _ in 1..cutoff {
        w.state.end_epoch(&only_first, 1_000);
    }
    let input = w.state.yuma_input(1).expect("subnet 1");
    assert_eq!(
        input.active,
        Some(vec![true, true]),
        "still within the cutoff"
    );
    w.state.end_epoch(&only_first, 1_000);
    let input = w.state.yuma_input(1).expect("subnet 1");
    assert_eq!(input.active, Some(vec![true, false]), "silent for longer");
    w.state.check_invariants().expect("invariants");
}

#[test]
fn voting_power_follows_stake_and_an_unstaked_validator_leaves_the_set() {
    let mut w = world();
    let mut members: Vec<v1::ValidatorEntry> = (0..2)
        .map(|i| v1::ValidatorEntry {
            hotkey: key(&w.hot[i]).0.to_vec(),
            coldkey: key(&w.cold[i]).0.to_vec(),
            stake: 1,
        })
        .collect();
    members.sort_by(|a, b| a.hotkey.cmp(&b.hotkey));
    let current = v1::ValidatorSet {
        validators: members,
    };
    let power = |set: &v1::ValidatorSet, i: usize| {
        set.validators
            .iter()
            .find(|v| v.hotkey == key(&w.hot[i]).0.to_vec())
            .map(|v| v.stake)
    };
    let next = w.state.voting_set(&current);
    assert_eq!(
        (power(&next, 0), power(&next, 1)),
        (Some(1_000), Some(1_000))
    );
    // Stake pumping: cold[2] stakes 500 on validator 0, which earns with it but gains no voting
    // power from it; validator 0's own coldkey stakes 500 more, which counts; validator 1's owner
    // unstakes everything.
    w.state
        .apply(&tx(&w.cold[2], 0, stake(&w.hot[0], 500)))
        .expect("stakes");
    assert_eq!(
        power(&w.state.voting_set(&current), 0),
        Some(1_000),
        "another coldkey's stake moves no voting power"
    );
    w.state
        .apply(&tx(&w.cold[2], 1, transfer(&w.cold[0], 1_000)))
        .expect("funds the validator's owner");
    w.state
        .apply(&tx(&w.cold[0], 0, stake(&w.hot[0], 500)))
        .expect("stakes");
    w.state
        .apply(&tx(
            &w.cold[1],
            0,
            v1::transaction::Kind::RemoveStake(v1::RemoveStake {
                hotkey: key(&w.hot[1]).0.to_vec(),
                subnet: 1,
                amount: 1_000,
            }),
        ))
        .expect("unstakes");
    let next = w.state.voting_set(&current);
    assert_eq!(power(&next, 0), Some(1_500));
    assert_eq!(power(&next, 1), None, "no stake, no vote");
    // With no self-stake left anywhere, the set stays as it was rather than vanishing, even
    // though another coldkey's stake is still behind validator 0.
    w.state
        .apply(&tx(
            &w.cold[0],
            1,
            v1::transaction::Kind::RemoveStake(v1::RemoveStake {
                hotkey: key(&w.hot[0]).0.to_vec(),
                subnet: 1,
                amount: 1_500,
            }),
        ))
        .expect("unstakes");
    assert_eq!(w.state.voting_set(&current), current);
}

/// Hotkey hijack: registering another's hotkey needs that hotkey's consent to this coldkey, on
/// this network and subnet; a consent given to someone else does not carry over.
#[test]
fn a_hotkey_is_registered_only_with_its_consent_to_that_coldkey() {
    let mut w = world();
    let victim = &w.hot[4];
    let thief = w.cold[2].clone();
    let mut stolen = v1::Register {
        hotkey: key(victim).0.to_vec(),
        subnet: 1,
        max_burn: u64::MAX,
        hotkey_signature: vec![0; 64],
    };
    let refused = w.state.apply(&tx(
        &thief,
        0,
        v1::transaction::Kind::Register(stolen.clone()),
    ));
    assert_eq!(refused, Err(TxError::NoHotkeyConsent));
    // The victim's real consent, given to its own coldkey, is of no use to the thief.
    let given = v1::Register {
        subnet: 1,
        max_burn: u64::MAX,
        ..Default::default()
    }
    .consented(victim, &NET.to_vec(), &w.cold[3].public());
    stolen.hotkey_signature = given.hotkey_signature.clone();
    let refused = w
        .state
        .apply(&tx(&thief, 0, v1::transaction::Kind::Register(stolen)));
    assert_eq!(refused, Err(TxError::NoHotkeyConsent));
    // Nor on another subnet, or another network.
    let elsewhere = v1::Register {
        subnet: 2,
        ..given.clone()
    };
    assert!(matches!(
        elsewhere.verify_consent(&NET.to_vec(), &key(&w.cold[3]).0),
        Err(meshmind_protocols::SignatureError::Invalid)
    ));
    assert!(matches!(
        given.verify_consent(&[7; 32], &key(&w.cold[3]).0),
        Err(meshmind_protocols::SignatureError::Invalid)
    ));
    assert!(w.state.subnets[&1].uid_of(&key(victim)).is_none());
    let mut pool = Mempool::new(8);
    let refused = pool
        .insert(
            tx(
                &thief,
                0,
                v1::transaction::Kind::Register(v1::Register {
                    hotkey_signature: vec![0; 64],
                    ..given.clone()
                }),
            ),
            &w.state,
        )
        .expect_err("refused");
    assert!(
        matches!(refused, PoolError::Invalid(TxError::NoHotkeyConsent)),
        "{refused:?}"
    );
    assert!(refused.penalise(), "no honest relay forwards it");
}

#[test]
fn every_applied_transaction_burns_the_fee_and_supply_is_conserved() {
    let mut w = world();
    w.state.params.tx_fee = 100;
    let before = w.state.account(&key(&w.cold[2])).balance;
    w.state
        .apply(&tx(&w.cold[2], 0, transfer(&w.cold[3], 1_000)))
        .expect("a paid transfer");
    assert_eq!(w.state.account(&key(&w.cold[2])).balance, before - 1_100);
    assert_eq!(w.state.account(&key(&w.cold[3])).balance, 1_000);
    assert_eq!(w.state.supply.burned, 100);
    w.state.check_invariants().expect("supply conserved");
    // cold[3] now holds 1,000: it can move 900 and pay the fee, not 901.
    assert_eq!(
        w.state.apply(&tx(&w.cold[3], 0, transfer(&w.cold[2], 901))),
        Err(TxError::Insufficient {
            needed: 1_001,
            available: 1_000
        })
    );
    w.state
        .apply(&tx(&w.cold[3], 0, transfer(&w.cold[2], 900)))
        .expect("all but the fee");
    assert_eq!(w.state.account(&key(&w.cold[3])).balance, 0);
    w.state.check_invariants().expect("supply conserved");
}

/// Free mempool stuffing: registrations with `max_burn: 0` and 1-unit transfers from fresh keys
/// with no balance, 9,000 of them, are all refused before they are kept or forwarded, none as a
/// fault of a relay that raced a commit, and an honest transfer still gets in.
#[test]
fn free_transactions_from_fresh_keys_cannot_fill_the_pool() {
    let mut w = world();
    w.state.params.tx_fee = 100;
    let mut pool = Mempool::new(8_192);
    for n in 0..9_000u32 {
        let fresh = Keypair::from_secret(blake3::hash(&n.to_be_bytes()).as_bytes());
        let kind = if n % 2 == 0 {
            register(&fresh, &fresh, 0)
        } else {
            transfer(&w.cold[2], 1)
        };
        let refused = pool
            .insert(tx(&fresh, 0, kind), &w.state)
            .expect_err("a free transaction is refused");
        assert!(
            matches!(
                refused,
                PoolError::Invalid(TxError::BurnTooHigh { .. } | TxError::Insufficient { .. })
            ),
            "{refused:?}"
        );
    }
    assert!(pool.is_empty());
    let honest = tx(&w.cold[2], 0, transfer(&w.cold[3], 10));
    assert_eq!(pool.insert(honest, &w.state), Ok(true));
}

#[test]
fn the_pool_takes_only_what_can_apply_after_what_waits_and_evicts_what_no_longer_can() {
    let mut w = world();
    w.state.params.tx_fee = 100;
    let mut pool = Mempool::new(64);
    // A gap: nonce 1 before nonce 0 waits.
    assert!(matches!(
        pool.insert(tx(&w.cold[2], 1, transfer(&w.cold[3], 1)), &w.state),
        Err(PoolError::Gap { next: 0, got: 1 })
    ));
    // 100,000 covers one transfer of 60,000 and its fee, not two.
    assert_eq!(
        pool.insert(tx(&w.cold[2], 0, transfer(&w.cold[3], 60_000)), &w.state),
        Ok(true)
    );
    assert!(matches!(
        pool.insert(tx(&w.cold[2], 1, transfer(&w.cold[3], 60_000)), &w.state),
        Err(PoolError::Unaffordable {
            needed: 120_200,
            available: 100_000
        })
    ));
    // A registration at today's price waits; another registration doubles the price first.
    let waiting = tx(&w.cold[2], 1, register(&w.hot[4], &w.cold[2], 1_000));
    assert_eq!(pool.insert(waiting, &w.state), Ok(true));
    w.state
        .apply(&tx(&w.cold[2], 0, transfer(&w.cold[3], 60_000)))
        .expect("the first applies");
    w.state
        .apply(&tx(&w.cold[3], 0, register(&w.hot[5], &w.cold[3], 1_000)))
        .expect("someone else registers at 1,000");
    assert_eq!(w.state.subnets[&1].burn, 2_000);
    assert_eq!(
        pool.prune(&w.state),
        1,
        "the registration can no longer apply"
    );
    assert!(pool.is_empty(), "the used transfer is dropped too");
}

/// Emission farming: a subnet with one hotkey and a token of stake earns nothing; emission
/// follows the stake on each subnet, and supply stays conserved.
#[test]
fn emission_follows_stake_and_a_token_subnet_farms_nothing() {
    let mut w = world();
    w.state.params.subnet_lock = 10;
    // Averages over one epoch: emission follows the stake of the moment.
    w.state.params.emission_smoothing_epochs = 1;
    let farmer = w.cold[2].clone();
    let create = v1::transaction::Kind::CreateSubnet(v1::CreateSubnet {
        name: "farm".into(),
        tasks: vec!["sort".into()],
        max_lock: 10,
    });
    w.state.apply(&tx(&farmer, 0, create)).expect("a subnet");
    let register_on_2 = v1::transaction::Kind::Register(
        v1::Register {
            subnet: 2,
            max_burn: u64::MAX,
            ..Default::default()
        }
        .consented(&w.hot[5], &NET.to_vec(), &farmer.public()),
    );
    w.state
        .apply(&tx(&farmer, 1, register_on_2))
        .expect("registered");
    let stake_on_2 = |amount| {
        v1::transaction::Kind::AddStake(v1::AddStake {
            hotkey: key(&w.hot[5]).0.to_vec(),
            subnet: 2,
            amount,
        })
    };
    w.state
        .apply(&tx(&farmer, 2, stake_on_2(1)))
        .expect("staked");
    let emitted = |w: &World, subnet: u32, results: &[v1::SubnetResult]| -> u64 {
        let i = w.state.subnets.keys().position(|&id| id == subnet).unwrap();
        results[i].emission.iter().sum()
    };
    // Subnet 1 holds 2,000 of stake, subnet 2 holds 1: the farm is under the minimum.
    let results = w.state.end_epoch(&[], 1_000_000);
    assert_eq!(emitted(&w, 2, &results), 0, "{results:?}");
    // All of it went to subnet 1 (its owner's 18 % cut aside).
    assert_eq!(emitted(&w, 1, &results), 820_000, "{results:?}");
    w.state.check_invariants().expect("supply conserved");
    // With real stake it earns its part: in proportion to the stake on each subnet.
    w.state
        .apply(&tx(&farmer, 3, stake_on_2(90_000)))
        .expect("staked");
    let on_1: u64 = [0, 1]
        .iter()
        .map(|&i| w.state.hotkey_stake(1, &key(&w.hot[i])))
        .sum();
    let on_2 = w.state.hotkey_stake(2, &key(&w.hot[5]));
    let results = w.state.end_epoch(&[], 1_000_000);
    let share = |on: u64| {
        let share = 1_000_000 * u128::from(on) / u128::from(on_1 + on_2);
        (share - share * 180 / 1000) as u64
    };
    for (subnet, on) in [(1, on_1), (2, on_2)] {
        let got = emitted(&w, subnet, &results);
        assert!(
            got.abs_diff(share(on)) <= 10,
            "subnet {subnet}: {got} vs {}",
            share(on)
        );
    }
    w.state.check_invariants().expect("supply conserved");
}

#[test]
fn permits_go_to_the_top_stake_and_validators_are_the_holders_that_set_weights() {
    let mut w = world();
    w.state
        .subnets
        .get_mut(&1)
        .expect("subnet 1")
        .params
        .max_validators = 1;
    let (v0, v1) = (key(&w.hot[0]), key(&w.hot[1]));
    w.state.add_stake(1, v1, key(&w.cold[2]), 500);
    // The one permit goes to the most stake.
    assert_eq!(w.state.permits(1), vec![(v1, 1_500)]);
    assert!(w.state.validators(1).is_empty(), "nobody set weights yet");
    w.state
        .subnets
        .get_mut(&1)
        .expect("subnet 1")
        .params
        .max_validators = 64;
    assert_eq!(w.state.permits(1).len(), 2);
    let chain = w.state.subnets.get_mut(&1).expect("subnet 1");
    for neuron in &mut chain.neurons {
        if neuron.hotkey == v0 {
            neuron.weights = vec![(1, u16::MAX)];
            neuron.last_update = 10;
        }
    }
    w.state.epoch = 10 + w.state.subnets[&1].params.activity_cutoff;
    assert_eq!(w.state.validators(1), vec![(v0, 1_000)]);
    // Silent past the cutoff: no longer a validator.
    w.state.epoch += 1;
    assert!(w.state.validators(1).is_empty());
    assert!(w.state.permits(99).is_empty() && w.state.validators(99).is_empty());
}

/// Weights count by validator permit, not by membership of the finalizing set: a hotkey that
/// registers and stakes into the top `max_validators` of a subnet has its vector built into a
/// snapshot and accepted there; one registered without stake holds no permit, is left out, and a
/// snapshot carrying its vector is refused with the subnet named.
#[test]
fn snapshots_take_weights_from_permit_holders_only() {
    use crate::chain::snapshot::{Expect, build, check};
    use crate::role::validator::weights::commit;
    let mut w = world();
    w.state
        .subnets
        .get_mut(&1)
        .expect("subnet 1")
        .params
        .max_validators = 3;
    let (newcomer, unstaked) = (&w.hot[2], &w.hot[3]);
    let steps = [
        register(newcomer, &w.cold[2], 10_000),
        stake(newcomer, 5_000),
        register(unstaked, &w.cold[2], 10_000),
    ];
    for (nonce, kind) in steps.into_iter().enumerate() {
        let t = tx(&w.cold[2], nonce as u64, kind);
        w.state.apply(&t).expect("applies");
    }
    w.state.end_epoch(&[], 1_000_000);
    let holders = &w.state.permit_holders()[&1];
    assert!(holders.contains(&key(newcomer)) && !holders.contains(&key(unstaked)));
    // The finalizing set is still the two genesis validators.
    let members = members_of(&w, &[0, 1]);
    assert!(members.index_of(&key(newcomer).0).is_none());
    let expect = Expect {
        network_id: NET,
        epoch: 1,
        parent_hash: [0; 32],
        members: &members,
        state: &w.state,
        emission: 1_000_000,
    };
    let reveal = |k: &Keypair| commit(k, NET, 1, 0, &[(0, 65_535)], [4; 32]).1;
    let offered = [&w.hot[0], &w.hot[1], newcomer, unstaked].map(reveal);
    let built = build(&expect, &w.hot[0].public(), offered.clone(), vec![], vec![]);
    let mut carried: Vec<Vec<u8>> = built.weights.iter().map(|r| r.validator.clone()).collect();
    carried.sort();
    let mut expected: Vec<Vec<u8>> = [&w.hot[0], &w.hot[1], newcomer]
        .iter()
        .map(|k| key(k).0.to_vec())
        .collect();
    expected.sort();
    assert_eq!(
        carried, expected,
        "the permit holders' vectors, the newcomer's too"
    );
    check(&built, &expect, 0).expect("a snapshot of permit holders' vectors checks");

    let mut stuffed = built.clone();
    stuffed.weights = offered.to_vec();
    stuffed
        .weights
        .sort_by(|a, b| (a.subnet, &a.validator).cmp(&(b.subnet, &b.validator)));
    let refused = check(&stuffed, &expect, 0).expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains("holds no validator permit on subnet 1"),
        "{refused}"
    );
}

/// The finalizing set is open: a hotkey its coldkey declares (with the hotkey's consent) and
/// stakes joins the set by its own stake, the top `max_finalizers` win, and undeclaring leaves;
/// refused declarations change nothing and say why.
#[test]
fn finalizers_join_by_declaring_and_stake_and_leave_by_undeclaring() {
    let mut w = world();
    w.state.params.max_finalizers = 2;
    let set = |w: &World| -> Vec<Key> {
        w.state
            .voting_set(&v1::ValidatorSet::default())
            .validators
            .iter()
            .map(|v| Key::from_slice(&v.hotkey).expect("a key"))
            .collect()
    };
    let sorted = |mut keys: Vec<Key>| {
        keys.sort();
        keys
    };
    let genesis = sorted(vec![key(&w.hot[0]), key(&w.hot[1])]);
    assert_eq!(
        set(&w),
        genesis,
        "genesis validators are the first finalizers"
    );
    let (newcomer, funder) = (w.hot[2].clone(), w.cold[2].clone());
    let mut nonce = 0;
    let mut send = |w: &mut World, kind: v1::transaction::Kind| {
        let before = w.state.clone();
        let result = w.state.apply(&tx(&funder, nonce, kind));
        match &result {
            Ok(()) => nonce += 1,
            Err(_) => assert_eq!(w.state, before, "a refused transaction changes nothing"),
        }
        w.state.check_invariants().expect("invariants");
        result
    };
    send(&mut w, register(&newcomer, &funder, 10_000)).expect("registered");
    assert_eq!(
        send(&mut w, declare(&newcomer, &funder)),
        Err(TxError::NoOwnStake),
        "stake first"
    );
    send(&mut w, stake(&newcomer, 5_000)).expect("staked");
    assert_eq!(set(&w), genesis, "stake alone does not make a finalizer");
    // The hotkey's consent is to one coldkey: a declaration under another is refused.
    let forged = v1::transaction::Kind::DeclareFinalizer(
        v1::DeclareFinalizer::default().consented(&newcomer, &NET.to_vec(), &w.cold[3].public()),
    );
    assert_eq!(send(&mut w, forged), Err(TxError::NoHotkeyConsent));
    send(&mut w, declare(&newcomer, &funder)).expect("declared");
    assert_eq!(
        send(&mut w, declare(&newcomer, &funder)),
        Err(TxError::AlreadyDeclared)
    );
    let chosen = set(&w);
    assert_eq!(chosen.len(), 2, "at most max_finalizers");
    assert!(
        chosen.contains(&key(&newcomer)),
        "the most staked declared hotkey is in"
    );
    let power = w.state.voting_set(&v1::ValidatorSet::default());
    let entry = power
        .validators
        .iter()
        .find(|v| v.hotkey == key(&newcomer).0)
        .expect("its entry");
    assert_eq!(
        (entry.stake, entry.coldkey.as_slice()),
        (5_000, &key(&funder).0[..])
    );
    // Only the declaring coldkey undeclares.
    let other = tx(&w.cold[3], 0, undeclare(&newcomer));
    assert_eq!(w.state.apply(&other), Err(TxError::NotDeclared));
    send(&mut w, undeclare(&newcomer)).expect("undeclared");
    assert_eq!(set(&w), genesis);
    assert_eq!(
        send(&mut w, undeclare(&newcomer)),
        Err(TxError::NotDeclared)
    );
}

/// Stake behind a finalizer returns only after `unbonding_epochs`, so evidence found meanwhile
/// still reaches it: an equivocator is jailed (out of the set, unable to declare again) and loses
/// `slash_per_mille` of its stake and of what is unbonding, once per jail; supply stays whole.
#[test]
fn unbonding_keeps_stake_slashable_and_an_equivocator_is_jailed_once() {
    let mut w = world();
    let (hot, cold) = (w.hot[0].clone(), w.cold[0].clone());
    w.state.params.unbonding_epochs = 3;
    let balance = |w: &World| w.state.account(&key(&cold)).balance;
    let before = balance(&w);
    let unstake = v1::transaction::Kind::RemoveStake(v1::RemoveStake {
        hotkey: key(&hot).0.to_vec(),
        subnet: 1,
        amount: 400,
    });
    w.state.apply(&tx(&cold, 0, unstake)).expect("unstaked");
    w.state.check_invariants().expect("invariants");
    assert_eq!(balance(&w), before, "nothing back at once");
    assert_eq!(w.state.unbonding.values().sum::<u64>(), 400);
    assert_eq!(w.state.hotkey_stake(1, &key(&hot)), 600);

    let burned = w.state.supply.burned;
    let slashed = w.state.punish(&key(&hot));
    assert_eq!(slashed, 60 + 40, "a tenth of the stake and of what unbonds");
    assert_eq!(w.state.supply.burned - burned, slashed);
    assert_eq!(w.state.hotkey_stake(1, &key(&hot)), 540);
    assert_eq!(w.state.punish(&key(&hot)), 0, "punished once while jailed");
    w.state.check_invariants().expect("invariants");
    let members: Vec<Vec<u8>> = w
        .state
        .voting_set(&v1::ValidatorSet::default())
        .validators
        .into_iter()
        .map(|v| v.hotkey)
        .collect();
    assert_eq!(
        members,
        vec![key(&w.hot[1]).0.to_vec()],
        "jailed out of the set"
    );
    let jailed_until = w.state.finalizers[&key(&hot)].jailed_until;
    assert_eq!(jailed_until, w.state.params.jail_epochs);
    let again = v1::transaction::Kind::DeclareFinalizer(v1::DeclareFinalizer::default().consented(
        &hot,
        &NET.to_vec(),
        &cold.public(),
    ));
    assert_eq!(
        w.state.apply(&tx(&cold, 1, again)),
        Err(TxError::Jailed(jailed_until))
    );
    for _ in 0..3 {
        w.state.end_epoch(&[], 0);
        w.state.check_invariants().expect("invariants");
    }
    assert_eq!(
        balance(&w),
        before + 360,
        "the unbonded rest, after unbonding_epochs"
    );
    assert!(w.state.unbonding.is_empty());
}

/// However many subnets and permit holders there are, a snapshot stays deliverable: with twelve
/// subnets of 64 permit holders each revealing a full vector (far over the limit together), the
/// snapshot built fits, carries the finalizers' vectors, and checks.
#[test]
fn weight_vectors_of_many_subnets_never_make_a_snapshot_undeliverable() {
    use crate::chain::snapshot::{Expect, MAX_SNAPSHOT_BYTES, build, check};
    use crate::role::validator::weights::commit;
    let mut w = world();
    let full: Vec<(u32, u16)> = (0..256u32).map(|uid| (uid, u16::MAX)).collect();
    let mut reveals = Vec::new();
    for subnet in 1..=12u32 {
        let holders: Vec<Keypair> = (0..64)
            .map(|_| Keypair::generate().expect("random"))
            .collect();
        let chain = w.state.subnets.entry(subnet).or_insert_with(|| {
            Subnet::new(
                format!("s{subnet}"),
                vec!["sort".into()],
                None,
                0,
                SubnetParams::default(),
                0,
            )
        });
        for holder in &holders {
            chain
                .neurons
                .push(Neuron::new(key(holder), key(&w.cold[3]), 0));
        }
        // Miners fill the subnet, so a full vector names only UIDs on it.
        while chain.neurons.len() < 256 {
            let mut filler = [0xee; 32];
            filler[..4].copy_from_slice(&subnet.to_le_bytes());
            filler[4..8].copy_from_slice(&(chain.neurons.len() as u32).to_le_bytes());
            chain
                .neurons
                .push(Neuron::new(Key(filler), key(&w.cold[3]), 0));
        }
        for holder in &holders {
            w.state.add_stake(subnet, key(holder), key(&w.cold[3]), 1);
            reveals.push(commit(holder, NET, subnet, 0, &full, [6; 32]).1);
        }
    }
    reveals.extend((0..2).map(|i| commit(&w.hot[i], NET, 1, 0, &full, [6; 32]).1));
    let offered: usize = reveals.iter().map(prost::Message::encoded_len).sum();
    assert!(
        offered > MAX_SNAPSHOT_BYTES,
        "the test offers too little: {offered}"
    );
    w.state.end_epoch(&[], 1_000_000);
    let members = members_of(&w, &[0, 1]);
    let expect = Expect {
        network_id: NET,
        epoch: 1,
        parent_hash: [0; 32],
        members: &members,
        state: &w.state,
        emission: 1_000_000,
    };
    let built = build(&expect, &w.hot[0].public(), reveals, vec![], vec![]);
    assert!(prost::Message::encoded_len(&built) <= MAX_SNAPSHOT_BYTES);
    assert!(built.weights.len() > 100, "{} vectors", built.weights.len());
    for i in 0..2 {
        assert!(
            built
                .weights
                .iter()
                .any(|r| r.validator == key(&w.hot[i]).0),
            "finalizer {i}'s vector is carried"
        );
    }
    check(&built, &expect, 0).expect("it checks");
}

/// The set's members from the genesis validators `which` of `w`, as the engine names them.
fn members_of(w: &World, which: &[usize]) -> crate::consensus::members::Members {
    let mut entries: Vec<v1::ValidatorEntry> = which
        .iter()
        .map(|&i| v1::ValidatorEntry {
            hotkey: key(&w.hot[i]).0.to_vec(),
            coldkey: key(&w.cold[i]).0.to_vec(),
            stake: 1_000,
        })
        .collect();
    entries.sort_by(|a, b| a.hotkey.cmp(&b.hotkey));
    crate::consensus::members::Members::new(v1::ValidatorSet {
        validators: entries,
    })
    .expect("a set")
}

/// A finalizer that left the set still answers for what it did in it while its stake is bonded:
/// evidence of its double vote enters a snapshot of the new set and jails and slashes it. Two
/// weight commitments of a member for one epoch enter as evidence but punish no one.
#[test]
fn a_finalizer_that_left_is_punished_and_double_commits_are_only_recorded() {
    use crate::chain::snapshot::{Expect, build, check};
    use crate::consensus::evidence::duplicate_vote;
    use crate::consensus::votes::{Vote, VoteType};
    use crate::consensus::wire::wire_vote;
    use crate::role::validator::weights::commit;
    let mut w = world();
    let old_set = members_of(&w, &[0, 1]);
    let voter = old_set.index_of(&key(&w.hot[0]).0).expect("a member");
    let vote = |value: u8| {
        let vote = Vote {
            height: 0,
            round: 0,
            vote_type: VoteType::Prevote,
            value: Some([value; 32]),
            voter,
        };
        wire_vote(NET, &old_set, &vote)
            .expect("a vote")
            .signed(&w.hot[0])
    };
    let double_vote = duplicate_vote(vote(1), vote(2));
    let (first, _) = commit(&w.hot[1], NET, 1, 0, &[(0, 1)], [1; 32]);
    let (second, _) = commit(&w.hot[1], NET, 1, 0, &[(0, 2)], [1; 32]);
    let double_commit = v1::Evidence {
        kind: Some(v1::evidence::Kind::DuplicateWeightCommit(
            v1::DuplicateWeightCommit {
                first: Some(first),
                second: Some(second),
            },
        )),
    };
    // hot[0] undeclares and leaves: the set is hot[1] alone, but hot[0]'s stake is bonded.
    w.state
        .apply(&tx(&w.cold[0], 0, undeclare(&w.hot[0])))
        .expect("undeclared");
    w.state.end_epoch(&[], 0);
    assert!(w.state.bonded(&key(&w.hot[0])));
    let new_set = members_of(&w, &[1]);
    let expect = Expect {
        network_id: NET,
        epoch: 1,
        parent_hash: [0; 32],
        members: &new_set,
        state: &w.state,
        emission: 0,
    };
    let evidence = vec![double_vote, double_commit];
    let built = build(&expect, &w.hot[1].public(), vec![], evidence, vec![]);
    assert_eq!(built.evidence.len(), 2, "both pieces are carried");
    // (Without vectors this epoch, as from round 2 on.)
    let round = crate::chain::snapshot::OPEN_WEIGHTS_ROUND;
    let (_, after) = check(&built, &expect, round).expect("it checks");
    let jailed = |k: &Keypair| {
        after
            .finalizers
            .get(&key(k))
            .is_some_and(|f| f.jailed_until > after.epoch)
    };
    assert!(jailed(&w.hot[0]), "the double vote is punished");
    assert!(
        after.hotkey_stake(1, &key(&w.hot[0])) < 1_000,
        "and slashed"
    );
    assert!(!jailed(&w.hot[1]), "a double commitment is not");
    assert_eq!(after.hotkey_stake(1, &key(&w.hot[1])), 1_000);
    after.check_invariants().expect("invariants");
}

/// Tenure: since when a hotkey holds a validator permit and sits in the finalizing set, kept while
/// the run goes on, begun at the hand-over that starts it and cleared when it ends.
#[test]
fn tenure_records_when_a_permit_and_a_seat_began() {
    let mut w = world();
    let permit_since = |w: &World, i: usize| {
        w.state.subnets[&1]
            .neurons
            .iter()
            .find(|n| n.hotkey == key(&w.hot[i]))
            .map(|n| n.permit_since)
    };
    let seat_since = |w: &World, i: usize| {
        w.state
            .finalizers
            .get(&key(&w.hot[i]))
            .and_then(|f| f.in_set_since)
    };
    // The genesis validators hold both from epoch 0, and keep them while nothing changes.
    assert_eq!(
        (permit_since(&w, 0), seat_since(&w, 0)),
        (Some(Some(0)), Some(0))
    );
    let current = w.state.voting_set(&v1::ValidatorSet::default());
    for _ in 0..2 {
        w.state.end_epoch(&[], 0);
        w.state.hand_over(&current);
    }
    assert_eq!(
        (permit_since(&w, 1), seat_since(&w, 1)),
        (Some(Some(0)), Some(0))
    );
    // A newcomer registers, stakes and declares: both begin at the next hand-over.
    let (hot, cold) = (&w.hot[2], &w.cold[2]);
    for (nonce, kind) in [
        register(hot, cold, 100_000),
        stake(hot, 500),
        declare(hot, cold),
    ]
    .into_iter()
    .enumerate()
    {
        w.state
            .apply(&tx(cold, nonce as u64, kind))
            .expect("applies");
    }
    assert_eq!(permit_since(&w, 2), Some(None), "registered, no permit yet");
    w.state.end_epoch(&[], 0);
    let from = w.state.epoch;
    let next = w.state.hand_over(&current);
    assert!(
        next.validators
            .iter()
            .any(|v| v.hotkey == key(&w.hot[2]).0.to_vec())
    );
    assert_eq!(
        (permit_since(&w, 2), seat_since(&w, 2)),
        (Some(Some(from)), Some(from))
    );
    // Validator 1 leaves the set: its seat's record ends, its permit (stake still there) goes on.
    w.state
        .apply(&tx(&w.cold[1], 0, undeclare(&w.hot[1])))
        .expect("undeclares");
    w.state.end_epoch(&[], 0);
    w.state.hand_over(&next);
    assert_eq!(seat_since(&w, 1), None);
    assert_eq!(permit_since(&w, 1), Some(Some(0)));
    // The records are part of the state root: they survive the canonical encoding.
    let decoded = State::from_wire(w.state.to_wire()).expect("canonical");
    assert_eq!(decoded.to_wire(), w.state.to_wire());
    assert_eq!(decoded.finalizers[&key(&w.hot[2])].in_set_since, Some(from));
}

/// A chain of snapshots, each built by a proposer and checked as every node checks it, from the
/// state the previous check left: builder and checker agree epoch after epoch (weights, Yuma,
/// emission, tenure and hand-over included), and a node replaying the ledger gets the same state.
#[test]
fn snapshots_built_and_checked_agree_over_epochs() {
    use crate::chain::snapshot::{Expect, build, check};
    let mut w = world();
    w.state
        .apply(&tx(&w.cold[2], 0, register(&w.hot[2], &w.cold[2], 100_000)))
        .expect("registers");
    let mut state = w.state.clone();
    let start = state.clone();
    let ledger = crate::ledger::MemStore::default();
    let mut members = members_of(&w, &[0, 1]);
    let mut parent = [0u8; 32];
    for epoch in 0..6u64 {
        let expect = Expect {
            network_id: NET,
            epoch,
            parent_hash: parent,
            members: &members,
            state: &state,
            emission: 1_000_000,
        };
        let reveal = |k: &Keypair| {
            crate::role::validator::weights::commit(
                k,
                NET,
                1,
                epoch.saturating_sub(1),
                &[(2, 65_535)],
                [4; 32],
            )
            .1
        };
        let built = build(
            &expect,
            &w.hot[0].public(),
            [&w.hot[0], &w.hot[1]].map(reveal),
            vec![],
            vec![],
        );
        let (hash, next_state) =
            check(&built, &expect, 3).unwrap_or_else(|e| panic!("epoch {epoch}: {e:?}"));
        parent = hash;
        members = crate::consensus::members::Members::new(built.next_validators.clone().unwrap())
            .unwrap();
        state = next_state;
        let finalized = v1::FinalizedSnapshot {
            snapshot: Some(built),
            certificate: Some(v1::Certificate::default()),
        };
        // Stored without its economy, as a ledger written before the economy existed.
        crate::ledger::Store::commit(&ledger, &finalized, &[]).expect("stored");
    }
    // A node that must rebuild the economy from the ledger replays the same steps: same root.
    let rebuilt = crate::chain::app::Chain::load(&ledger, start, 1_000_000).expect("replayed");
    assert_eq!(rebuilt.state().root(), state.root());
}
