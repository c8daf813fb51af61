//! Subnets as markets, hand-checked: owners' parameters, weight rules, takes, moved stake, hotkey
//! swaps, emission by moving averages and deregistration.

use meshmind_protocols::{Keypair, v1};

use super::tests::{NET, World, key, register, stake, tx, world};
use super::*;
use crate::yuma;

/// Sends `kind` signed by `signer` with its next nonce; on refusal checks nothing changed.
fn send(w: &mut World, signer: &Keypair, kind: v1::transaction::Kind) -> Result<(), TxError> {
    let nonce = w.state.account(&key(signer)).nonce;
    let before = w.state.clone();
    let result = w.state.apply(&tx(signer, nonce, kind));
    if result.is_err() {
        assert_eq!(w.state, before, "a refused transaction changes nothing");
    }
    w.state.check_invariants().expect("invariants");
    result
}

fn set_params(subnet: u32, values: &[(&str, u64)]) -> v1::transaction::Kind {
    v1::transaction::Kind::SetSubnetParams(v1::SetSubnetParams {
        subnet,
        values: values
            .iter()
            .map(|&(name, value)| v1::ParamValue {
                name: name.into(),
                value,
            })
            .collect(),
    })
}

fn set_take(hotkey: &Keypair, take_per_mille: u32) -> v1::transaction::Kind {
    v1::transaction::Kind::SetTake(v1::SetTake {
        hotkey: key(hotkey).0.to_vec(),
        take_per_mille,
    })
}

fn move_stake(from: (&Keypair, u32), to: (&Keypair, u32), amount: u64) -> v1::transaction::Kind {
    v1::transaction::Kind::MoveStake(v1::MoveStake {
        from_hotkey: key(from.0).0.to_vec(),
        from_subnet: from.1,
        to_hotkey: key(to.0).0.to_vec(),
        to_subnet: to.1,
        amount,
    })
}

fn swap(old: &Keypair, new: &Keypair, coldkey: &Keypair) -> v1::transaction::Kind {
    v1::transaction::Kind::SwapHotkey(
        v1::SwapHotkey {
            old_hotkey: key(old).0.to_vec(),
            ..Default::default()
        }
        .consented(new, &NET.to_vec(), &coldkey.public()),
    )
}

fn reveal(validator: &Keypair, subnet: u32, row: &[(u32, u16)]) -> v1::WeightReveal {
    v1::WeightReveal {
        network_id: NET.to_vec(),
        subnet,
        epoch: 0,
        validator: key(validator).0.to_vec(),
        uids: row.iter().map(|&(u, _)| u).collect(),
        weights: row.iter().map(|&(_, w)| u32::from(w)).collect(),
        salt: vec![0; 32],
        signature: vec![0; 64],
    }
}

#[test]
fn an_owner_changes_parameters_within_bounds_at_the_next_epoch_and_no_faster_than_the_limit() {
    let mut w = world();
    w.state.params.owner_rate_limit = 3;
    let (owner, stranger) = (w.cold[0].clone(), w.cold[2].clone());
    assert_eq!(
        send(&mut w, &stranger, set_params(1, &[("kappa", 40_000)])),
        Err(TxError::NotOwner)
    );
    assert_eq!(
        send(&mut w, &owner, set_params(9, &[("kappa", 40_000)])),
        Err(TxError::UnknownSubnet(9))
    );
    assert!(matches!(
        send(&mut w, &owner, set_params(1, &[("tempo", 0)])),
        Err(TxError::Param(ParamError::OutOfBounds {
            name: "tempo",
            ..
        }))
    ));
    assert!(matches!(
        send(&mut w, &owner, set_params(1, &[("speed", 1)])),
        Err(TxError::Param(ParamError::Unknown(_)))
    ));
    assert!(matches!(
        send(&mut w, &owner, set_params(1, &[("max_uids", 1)])),
        Err(TxError::Param(ParamError::Inconsistent(_)))
    ));
    send(
        &mut w,
        &owner,
        set_params(1, &[("kappa", 40_000), ("tempo", 3)]),
    )
    .expect("the owner's");
    let subnet = &w.state.subnets[&1];
    assert_eq!(
        subnet.params.kappa,
        yuma::DEFAULT_KAPPA_U16,
        "not before the boundary"
    );
    assert_eq!(
        subnet.pending.map(|p| (p.kappa, p.tempo)),
        Some((40_000, 3))
    );
    assert_eq!(subnet.changes.get("tempo"), Some(&0));
    assert_eq!(
        send(&mut w, &owner, set_params(1, &[("kappa", 30_000)])),
        Err(TxError::RateLimited { until: 3 })
    );
    w.state.end_epoch(&[], 0);
    let subnet = &w.state.subnets[&1];
    assert_eq!((subnet.params.kappa, subnet.params.tempo), (40_000, 3));
    assert_eq!(subnet.pending, None);
    w.state.end_epoch(&[], 0);
    w.state.end_epoch(&[], 0);
    send(&mut w, &owner, set_params(1, &[("kappa", 30_000)])).expect("after the rate limit");
}

#[test]
fn the_genesis_sets_defaults_and_narrows_bounds() {
    let economy = v1::EconomyParams {
        subnet_defaults: vec![v1::ParamValue {
            name: "tempo".into(),
            value: 4,
        }],
        bounds: vec![v1::ParamBound {
            name: "tempo".into(),
            min: 2,
            max: 8,
        }],
        ..Default::default()
    };
    let params = Params::from_genesis(Some(&economy)).expect("usable");
    assert_eq!(params.subnet_defaults.tempo, 4);
    assert_eq!(params.bounds.0[PARAM_COUNT - 1], (2, 8));
    let outside = v1::EconomyParams {
        subnet_defaults: vec![v1::ParamValue {
            name: "tempo".into(),
            value: 9,
        }],
        ..economy.clone()
    };
    assert!(Params::from_genesis(Some(&outside)).is_err());
    let wider = v1::EconomyParams {
        bounds: vec![v1::ParamBound {
            name: "tempo".into(),
            min: 0,
            max: 8,
        }],
        ..economy
    };
    assert!(Params::from_genesis(Some(&wider)).is_err());
}

#[test]
fn tempo_holds_emission_until_yuma_runs_and_supply_is_conserved() {
    let mut w = world();
    w.state.subnets.get_mut(&1).expect("subnet 1").params.tempo = 3;
    let mut minted = Vec::new();
    for epoch in 0..6u64 {
        let before = w.state.supply.emitted;
        let results = w.state.end_epoch(&[], 1_000_000);
        minted.push(w.state.supply.emitted - before);
        assert_eq!(results.is_empty(), (epoch + 1) % 3 != 0, "epoch {epoch}");
        w.state.check_invariants().expect("conserved");
    }
    assert_eq!(minted[0], 0);
    assert_eq!(minted[1], 0);
    assert!(minted[2] > 2_900_000, "three epochs at once: {minted:?}");
    assert_eq!(w.state.subnets[&1].pending_emission, 0);
}

#[test]
fn kappa_decides_how_much_stake_makes_consensus() {
    let consensus_with = |kappa: u16| {
        let mut w = world();
        let (miner_a, miner_b) = (w.hot[2].clone(), w.hot[3].clone());
        let (c2, v0) = (w.cold[2].clone(), w.hot[0].clone());
        send(&mut w, &c2, register(&miner_a, &c2, u64::MAX)).expect("registered");
        send(&mut w, &c2, register(&miner_b, &c2, u64::MAX)).expect("registered");
        // 60 % of the stake behind validator 0.
        send(&mut w, &c2, stake(&v0, 500)).expect("staked");
        w.state.subnets.get_mut(&1).expect("subnet 1").params.kappa = kappa;
        // Weights set after the miners registered count.
        w.state.end_epoch(&[], 0);
        let weights = [
            reveal(&w.hot[0], 1, &[(2, u16::MAX)]),
            reveal(&w.hot[1], 1, &[(3, u16::MAX)]),
        ];
        w.state.end_epoch(&weights, 0);
        let results = w.state.end_epoch(&[], 1_000_000);
        results[0].consensus.clone()
    };
    // Half the stake: validator 0's miner is in consensus.
    let half = consensus_with(32_767);
    assert!(half[2] > 60_000 && half[3] == 0, "{half:?}");
    // 70 % of the stake needed: no miner is.
    let most = consensus_with(45_875);
    assert!(most[2] == 0 && most[3] == 0, "{most:?}");
}

#[test]
fn weight_vectors_breaking_the_subnets_rules_are_not_recorded() {
    let mut w = world();
    let c2 = w.cold[2].clone();
    for i in 2..6 {
        let hot = w.hot[i].clone();
        send(&mut w, &c2, register(&hot, &c2, u64::MAX)).expect("registered");
    }
    {
        let p = &mut w.state.subnets.get_mut(&1).expect("subnet 1").params;
        p.weights_rate_limit = 2;
        p.min_allowed_weights = 2;
        p.max_weight_limit = 45_875; // 0.7
    }
    let recorded = |w: &World, v: usize| {
        let uid = w.state.subnets[&1].uid_of(&key(&w.hot[v])).expect("uid");
        w.state.subnets[&1].neurons[uid as usize].weights.clone()
    };
    let good = [(2, 30_000), (3, 30_000)];
    let errors = |state: &State, r: &v1::WeightReveal| state.check_weights(r).unwrap_err();
    let s = &w.state;
    assert!(matches!(
        errors(s, &reveal(&w.hot[0], 1, &[(2, 1), (9, 1)])),
        WeightRuleError::Length(_)
    ));
    assert!(matches!(
        errors(s, &reveal(&w.hot[0], 1, &[(2, 1), (2, 1)])),
        WeightRuleError::Length(_)
    ));
    assert_eq!(
        errors(s, &reveal(&w.hot[7], 1, &good)),
        WeightRuleError::NotRegistered
    );
    assert_eq!(
        errors(s, &reveal(&w.hot[0], 1, &[(2, 10)])),
        WeightRuleError::TooFewWeights { count: 1, min: 2 }
    );
    assert!(matches!(
        errors(s, &reveal(&w.hot[0], 1, &[(2, 60_000), (3, 1_000)])),
        WeightRuleError::WeightTooLarge { limit: 45_875, .. }
    ));
    w.state.epoch = 5;
    w.state.end_epoch(&[reveal(&w.hot[0], 1, &good)], 0);
    assert_eq!(recorded(&w, 0), good.to_vec());
    // The next epoch's vector comes within the rate limit: the first stays.
    let later = [(4, 30_000), (5, 30_000)];
    w.state.end_epoch(&[reveal(&w.hot[0], 1, &later)], 0);
    assert_eq!(recorded(&w, 0), good.to_vec());
    w.state.end_epoch(&[reveal(&w.hot[0], 1, &later)], 0);
    assert_eq!(recorded(&w, 0), later.to_vec(), "two epochs on");
}

#[test]
fn a_take_is_set_by_the_owner_cut_at_once_raised_no_faster_than_the_limit_and_paid() {
    let mut w = world();
    w.state.params.take_rate_limit = 5;
    let (owner, stranger) = (w.cold[0].clone(), w.cold[2].clone());
    let validator = w.hot[0].clone();
    assert_eq!(
        send(&mut w, &stranger, set_take(&validator, 10)),
        Err(TxError::NotOwner)
    );
    assert_eq!(
        send(&mut w, &owner, set_take(&validator, 181)),
        Err(TxError::TakeTooHigh { max: 180 })
    );
    // Registered at genesis: the first raise could come at epoch 5; a cut comes at once.
    assert_eq!(w.state.next_raise_from(&key(&validator)), 5);
    send(&mut w, &owner, set_take(&validator, 0)).expect("a cut");
    assert_eq!(w.state.take_of(&key(&validator)), 0);
    // Nominators who came for the cut see any raise coming take_rate_limit epochs ahead.
    assert_eq!(
        send(&mut w, &owner, set_take(&validator, 100)),
        Err(TxError::RateLimited { until: 5 })
    );
    w.state.epoch = 5;
    send(&mut w, &owner, set_take(&validator, 100)).expect("after the limit");
    assert_eq!(
        send(&mut w, &owner, set_take(&validator, 120)),
        Err(TxError::RateLimited { until: 10 })
    );
    send(&mut w, &owner, set_take(&validator, 50)).expect("cuts never wait");
    w.state.epoch = 10;
    send(&mut w, &owner, set_take(&validator, 120)).expect("after the limit again");
    // A nominator with as much stake as the owner: dividends of 1,000 split 120 / 440 / 440.
    send(&mut w, &stranger, stake(&validator, 1_000)).expect("nominated");
    let (hk, ok, nk) = (key(&validator), key(&owner), key(&stranger));
    let before = (w.state.stake(1, &hk, &ok), w.state.stake(1, &hk, &nk));
    w.state.pay_dividends(1, hk, ok, 1_000);
    let after = (w.state.stake(1, &hk, &ok), w.state.stake(1, &hk, &nk));
    assert_eq!((after.0 - before.0, after.1 - before.1), (560, 440));
}

#[test]
fn stake_moves_between_hotkeys_and_subnets_but_not_out_of_a_finalizer() {
    let mut w = world();
    second_subnet(&mut w, 0);
    let c2 = w.cold[2].clone();
    let (miner, other) = (w.hot[2].clone(), w.hot[5].clone());
    send(&mut w, &c2, register(&miner, &c2, u64::MAX)).expect("on 1");
    send(&mut w, &c2, stake(&miner, 5_000)).expect("staked");
    assert_eq!(
        send(&mut w, &c2, move_stake((&miner, 1), (&other, 2), 6_000)),
        Err(TxError::Insufficient {
            needed: 6_000,
            available: 5_000
        })
    );
    assert_eq!(
        send(&mut w, &c2, move_stake((&miner, 1), (&other, 1), 1_000)),
        Err(TxError::NotRegistered(1))
    );
    assert!(matches!(
        send(&mut w, &c2, move_stake((&miner, 1), (&miner, 1), 1_000)),
        Err(TxError::Malformed(_))
    ));
    send(&mut w, &c2, move_stake((&miner, 1), (&other, 2), 2_000)).expect("moved");
    assert_eq!(w.state.stake(1, &key(&miner), &key(&c2)), 3_000);
    assert_eq!(w.state.stake(2, &key(&other), &key(&c2)), 2_000);
    assert_eq!(w.state.subnets[&2].flow, 2_000);
    assert_eq!(w.state.subnets[&1].flow, 5_000 - 2_000);
    // The genesis validators are finalizers: their stake leaves only through unbonding.
    let (c0, v0) = (w.cold[0].clone(), w.hot[0].clone());
    assert_eq!(
        send(&mut w, &c0, move_stake((&v0, 1), (&miner, 1), 10)),
        Err(TxError::Bonded)
    );
}

#[test]
fn a_swapped_hotkey_hands_everything_to_the_new_one_and_cannot_escape_punishment() {
    let mut w = world();
    let (c0, c2) = (w.cold[0].clone(), w.cold[2].clone());
    let (old, other) = (w.hot[0].clone(), w.hot[1].clone());
    let new = Keypair::generate().expect("random");
    send(&mut w, &c2, stake(&old, 500)).expect("a nominator");
    send(&mut w, &c0, set_take(&old, 90)).expect("a take");
    assert_eq!(
        send(&mut w, &c2, swap(&old, &new, &c2)),
        Err(TxError::NotOwner)
    );
    assert_eq!(
        send(&mut w, &c0, swap(&old, &other, &c0)),
        Err(TxError::HotkeyInUse)
    );
    let mut forged = swap(&old, &new, &c0);
    if let v1::transaction::Kind::SwapHotkey(s) = &mut forged {
        s.hotkey = key(&w.hot[6]).0.to_vec();
    }
    assert_eq!(send(&mut w, &c0, forged), Err(TxError::NoHotkeyConsent));
    send(&mut w, &c0, swap(&old, &new, &c0)).expect("requested");
    assert_eq!(
        send(&mut w, &c0, swap(&old, &new, &c0)),
        Err(TxError::SwapPending)
    );
    assert!(
        w.state.subnets[&1].uid_of(&key(&old)).is_some(),
        "not before the boundary"
    );
    w.state.end_epoch(&[], 0);
    let (ok, nk) = (key(&old), key(&new));
    assert_eq!(w.state.subnets[&1].uid_of(&nk), Some(0));
    assert_eq!(w.state.subnets[&1].uid_of(&ok), None);
    assert_eq!(w.state.hotkey_stake(1, &ok), 0);
    assert_eq!(w.state.stake(1, &nk, &key(&c2)), 500);
    assert_eq!(w.state.take_of(&nk), 90);
    assert_eq!(w.state.owner_of(&nk), Some(key(&c0)));
    assert!(w.state.finalizers[&nk].declared);
    assert!(!w.state.finalizers.contains_key(&ok));
    let set = w.state.voting_set(&v1::ValidatorSet::default());
    assert!(set.validators.iter().any(|v| v.hotkey == nk.0.to_vec()));
    assert!(!set.validators.iter().any(|v| v.hotkey == ok.0.to_vec()));
    // Evidence of what the old key signed before the swap punishes the new one.
    let stake_before = w.state.hotkey_stake(1, &nk);
    let burned = w.state.punish(&ok);
    assert!(burned > 0);
    assert_eq!(w.state.hotkey_stake(1, &nk), stake_before - burned);
    assert!(w.state.finalizers[&nk].jailed_until > w.state.epoch);
    w.state.check_invariants().expect("conserved");
}

/// Subnet 2 with one registered hotkey of cold[2]'s, staked `amount`.
fn second_subnet(w: &mut World, amount: u64) {
    w.state.params.subnet_lock = 10;
    let c2 = w.cold[2].clone();
    let hot = w.hot[5].clone();
    send(
        w,
        &c2,
        v1::transaction::Kind::CreateSubnet(v1::CreateSubnet {
            name: "two".into(),
            tasks: vec!["t".into()],
            max_lock: 10,
        }),
    )
    .expect("subnet 2");
    let on_2 = v1::transaction::Kind::Register(
        v1::Register {
            subnet: 2,
            max_burn: u64::MAX,
            ..Default::default()
        }
        .consented(&hot, &NET.to_vec(), &c2.public()),
    );
    send(w, &c2, on_2).expect("registered on 2");
    if amount > 0 {
        let add = v1::transaction::Kind::AddStake(v1::AddStake {
            hotkey: key(&hot).0.to_vec(),
            subnet: 2,
            amount,
        });
        send(w, &c2, add).expect("staked on 2");
    }
}

/// What subnet `id` was paid in `results` (owner's cut aside).
fn paid(id: u32, results: &[v1::SubnetResult]) -> u64 {
    results
        .iter()
        .find(|r| r.subnet == id)
        .map_or(0, |r| r.emission.iter().sum())
}

#[test]
fn a_moment_of_stake_buys_a_moment_of_emission_under_the_moving_average() {
    let mut w = world();
    w.state.params.emission_smoothing_epochs = 10;
    second_subnet(&mut w, 2_000);
    // Subnet 1 has held 2,000 since genesis; subnet 2's 2,000 just arrived.
    w.state.end_epoch(&[], 0);
    let shares = w.state.emission_shares(&[1, 2], 1_000_000);
    assert!(
        (80_000..100_000).contains(&shares[1]),
        "one epoch in, the newcomer weighs a tenth: {shares:?}"
    );
    for _ in 0..60 {
        w.state.end_epoch(&[], 0);
    }
    let shares = w.state.emission_shares(&[1, 2], 1_000_000);
    assert!(
        shares[1] > 490_000,
        "held long, it earns its share: {shares:?}"
    );
}

#[test]
fn under_flows_emission_follows_net_inflows() {
    let mut w = world();
    w.state.params.emission_smoothing_epochs = 4;
    w.state.params.emission_mode = EmissionMode::FlowEma;
    second_subnet(&mut w, 3_000);
    let results = w.state.end_epoch(&[], 1_000_000);
    // Only subnet 2 had inflows: all of it goes there.
    assert_eq!(paid(1, &results), 0);
    assert!(paid(2, &results) > 0);
    // With no flows at all, emission follows stake.
    let mut quiet = world();
    quiet.state.params.emission_mode = EmissionMode::FlowEma;
    let results = quiet.state.end_epoch(&[], 1_000_000);
    assert!(paid(1, &results) > 0);
}

#[test]
fn at_the_limit_a_new_subnet_deregisters_the_weakest_past_its_immunity() {
    let mut w = world();
    w.state.params.max_subnets = 2;
    w.state.params.subnet_immunity_epochs = 3;
    w.state.params.emission_smoothing_epochs = 1;
    second_subnet(&mut w, 500);
    let c2 = w.cold[2].clone();
    let create = |name: &str| {
        v1::transaction::Kind::CreateSubnet(v1::CreateSubnet {
            name: name.into(),
            tasks: vec!["t".into()],
            max_lock: 10,
        })
    };
    // Subnet 1 is past its immunity only from epoch 3, subnet 2 (created at 0) too.
    assert_eq!(
        send(&mut w, &c2, create("three")),
        Err(TxError::TooManySubnets(2))
    );
    for _ in 0..3 {
        w.state.end_epoch(&[], 1_000);
    }
    assert_eq!(w.state.weakest_subnet(), Some(2));
    let staked = w.state.subnet_stake(2);
    let c2_before = w.state.account(&key(&c2)).balance;
    send(&mut w, &c2, create("three")).expect("replaces subnet 2");
    assert!(!w.state.subnets.contains_key(&2));
    assert!(w.state.subnets.contains_key(&3), "ids are never reused");
    assert!(!w.state.stakes.contains_key(&2));
    // Its stake and lock came back to cold[2], which paid the new lock.
    assert_eq!(
        w.state.account(&key(&c2)).balance,
        c2_before + staked + 10 - 10
    );
    w.state.check_invariants().expect("conserved");
}

#[test]
fn a_farm_of_one_hotkey_and_a_token_earns_nothing_under_either_rule() {
    for mode in [EmissionMode::StakeEma, EmissionMode::FlowEma] {
        let mut w = world();
        w.state.params.emission_mode = mode;
        second_subnet(&mut w, 1);
        let (c2, v0) = (w.cold[2].clone(), w.hot[0].clone());
        send(&mut w, &c2, stake(&v0, 50_000)).expect("real stake on subnet 1");
        let mut farmed = 0;
        for _ in 0..200 {
            let results = w.state.end_epoch(&[], 1_000_000);
            farmed += paid(2, &results);
        }
        assert_eq!(farmed, 0, "{mode:?}");
        w.state.check_invariants().expect("conserved");
    }
}

#[test]
fn a_swapped_away_hotkey_is_retired_and_a_chain_of_swaps_still_answers_for_it() {
    let mut w = world();
    let c0 = w.cold[0].clone();
    let (a, b, c) = (
        w.hot[0].clone(),
        Keypair::generate().expect("random"),
        Keypair::generate().expect("random"),
    );
    send(&mut w, &c0, swap(&a, &b, &c0)).expect("a to b");
    // Being swapped, and once swapped, the old key takes no standing again.
    assert_eq!(
        send(&mut w, &c0, register(&a, &c0, u64::MAX)),
        Err(TxError::HotkeyRetired)
    );
    w.state.end_epoch(&[], 0);
    send(&mut w, &c0, swap(&b, &c, &c0)).expect("b to c");
    w.state.end_epoch(&[], 0);
    let on_2 = v1::transaction::Kind::Register(
        v1::Register {
            subnet: 1,
            max_burn: u64::MAX,
            ..Default::default()
        }
        .consented(&a, &NET.to_vec(), &c0.public()),
    );
    assert_eq!(send(&mut w, &c0, on_2), Err(TxError::HotkeyRetired));
    assert_eq!(
        send(&mut w, &c0, super::tests::declare(&b, &c0)),
        Err(TxError::HotkeyRetired)
    );
    // Evidence against the first key punishes the last.
    let (ak, ck) = (key(&a), key(&c));
    assert_eq!(w.state.successor(&ak), ck);
    let before = w.state.hotkey_stake(1, &ck);
    let burned = w.state.punish(&ak);
    assert!(burned > 0 && w.state.hotkey_stake(1, &ck) == before - burned);
    // Long after, once no evidence can come, the record goes.
    for _ in 0..200 {
        w.state.end_epoch(&[], 0);
    }
    assert!(!w.state.retired(&ak));
    w.state.check_invariants().expect("conserved");
}

#[test]
fn a_vector_made_before_a_change_is_judged_by_the_rules_it_was_made_under() {
    let mut w = world();
    let c2 = w.cold[2].clone();
    for i in 2..5 {
        let hot = w.hot[i].clone();
        send(&mut w, &c2, register(&hot, &c2, u64::MAX)).expect("registered");
    }
    let owner = w.cold[0].clone();
    send(
        &mut w,
        &owner,
        set_params(1, &[("max_weight_limit", 30_000)]),
    )
    .expect("changed");
    // The change is in force from the next epoch.
    w.state.end_epoch(&[], 0);
    let lopsided = [(2, 60_000), (3, 1_000), (4, 1_000)];
    // Made before validators could know: kept under the old rules for two epochs.
    w.state.end_epoch(&[reveal(&w.hot[0], 1, &lopsided)], 0);
    let uid = w.state.subnets[&1].uid_of(&key(&w.hot[0])).expect("uid") as usize;
    assert_eq!(w.state.subnets[&1].neurons[uid].weights, lopsided.to_vec());
    w.state.end_epoch(&[], 0);
    // Later, the new rules alone.
    assert!(matches!(
        w.state.check_weights(&reveal(&w.hot[1], 1, &lopsided)),
        Err(WeightRuleError::WeightTooLarge { .. })
    ));
    assert!(w.state.subnets[&1].prior.is_none());
}

#[test]
fn the_networks_own_subnets_are_never_deregistered() {
    let mut w = world();
    w.state.params.subnet_immunity_epochs = 0;
    assert_eq!(w.state.weakest_subnet(), Some(1), "owned by cold[0]");
    w.state.subnets.get_mut(&1).expect("subnet 1").owner = None;
    assert_eq!(w.state.weakest_subnet(), None);
}
