//! Hand-computed cases and properties of Yuma consensus.

use proptest::prelude::*;

use super::*;

fn pct(p: u32) -> u16 {
    ((u32::from(u16::MAX) * p) / 100) as u16
}

fn near(actual: u16, expected: f64) -> bool {
    (f64::from(actual) / 65535.0 - expected).abs() < 0.0005
}

/// Validators A (uid 0, stake 60) and B (uid 1, stake 40); miners 2 and 3.
/// A weights 80/20 on miners 2/3, B weights 20/80.
fn two_validators() -> SubnetState {
    SubnetState {
        stake: vec![60, 40, 0, 0],
        weights: vec![
            vec![(2, pct(80)), (3, pct(20))],
            vec![(2, pct(20)), (3, pct(80))],
            vec![],
            vec![],
        ],
        bonds: vec![vec![]; 4],
        validator_permit: Some(vec![true, true, false, false]),
        ..Default::default()
    }
}

fn with_kappa(kappa: f64) -> YumaParams {
    YumaParams {
        kappa: Fx::from_num(kappa),
        ..Default::default()
    }
}

#[test]
fn consensus_clips_at_the_stake_weighted_median_either_side_of_a_stake_boundary() {
    // kappa just below A's 60 % stake: A alone is a majority for miner 2, so consensus is A's 0.8.
    let below = epoch(&two_validators(), &with_kappa(0.59), 1_000_000);
    assert!(near(below.consensus[2], 0.8), "{:?}", below.consensus);
    assert!(near(below.consensus[3], 0.2), "{:?}", below.consensus);
    // Ranks 0.6*0.8+0.4*0.2 = 0.56 and 0.6*0.2+0.4*0.2 = 0.20; incentive 0.56/0.76 and 0.20/0.76.
    assert!(
        near(below.incentive[2], 0.56 / 0.76),
        "{:?}",
        below.incentive
    );
    assert!(
        near(below.incentive[3], 0.20 / 0.76),
        "{:?}",
        below.incentive
    );
    // A keeps all its weight; B keeps 0.2 of its 0.8 on miner 3 plus its 0.2 on miner 2.
    assert!(near(below.validator_trust[0], 1.0));
    assert!(near(below.validator_trust[1], 0.4));

    // kappa just above 60 %: miner 2 needs B too, so consensus falls to 0.2 for both miners.
    let above = epoch(&two_validators(), &with_kappa(0.61), 1_000_000);
    assert!(near(above.consensus[2], 0.2), "{:?}", above.consensus);
    assert!(near(above.consensus[3], 0.2), "{:?}", above.consensus);
    assert!(near(above.incentive[2], 0.5) && near(above.incentive[3], 0.5));
    assert!(near(above.validator_trust[0], 0.4) && near(above.validator_trust[1], 0.4));
}

#[test]
fn a_validator_weighting_an_outlier_is_clipped() {
    // A (40) and B (30) weight miner 3; C (30) puts everything on its friend, miner 4.
    let state = SubnetState {
        stake: vec![40, 30, 30, 0, 0],
        weights: vec![
            vec![(3, u16::MAX)],
            vec![(3, u16::MAX)],
            vec![(4, u16::MAX)],
            vec![],
            vec![],
        ],
        bonds: vec![vec![]; 5],
        validator_permit: Some(vec![true, true, true, false, false]),
        ..Default::default()
    };
    let result = epoch(&state, &YumaParams::default(), 1_000);
    assert_eq!(result.consensus[4], 0, "30 % of stake is no majority");
    assert_eq!(result.incentive[4], 0);
    assert_eq!(result.validator_trust[2], 0, "C's weight was clipped away");
    assert!(near(result.incentive[3], 1.0));
    assert_eq!(result.dividends[2], 0, "C bonded to nothing that earned");
    assert_eq!(result.emission[4], 0);
}

#[test]
fn zero_weights_give_validators_the_emission_by_stake() {
    let state = SubnetState {
        stake: vec![60, 40, 0],
        weights: vec![vec![], vec![], vec![]],
        bonds: vec![vec![]; 3],
        validator_permit: Some(vec![true, true, false]),
        ..Default::default()
    };
    let result = epoch(&state, &YumaParams::default(), 1_000_000);
    assert!(result.incentive.iter().all(|&x| x == 0));
    assert!(result.dividends.iter().all(|&x| x == 0));
    assert!(result.consensus.iter().all(|&x| x == 0));
    // Truncation may lose a unit per UID.
    assert!(
        (599_998..=600_000).contains(&result.emission[0]),
        "{:?}",
        result.emission
    );
    assert!(
        (399_998..=400_000).contains(&result.emission[1]),
        "{:?}",
        result.emission
    );
    assert_eq!(result.emission[2], 0);
}

#[test]
fn a_single_validator_sets_consensus_and_takes_all_dividends() {
    let state = SubnetState {
        stake: vec![100, 0, 0],
        weights: vec![vec![(1, pct(75)), (2, pct(25))], vec![], vec![]],
        bonds: vec![vec![]; 3],
        ..Default::default()
    };
    let result = epoch(&state, &YumaParams::default(), 1_000_000);
    assert!(result.validator_permit[0]);
    assert!(near(result.consensus[1], 0.75) && near(result.consensus[2], 0.25));
    assert!(near(result.incentive[1], 0.75) && near(result.incentive[2], 0.25));
    assert!(near(result.dividends[0], 1.0));
    assert!(near(result.validator_trust[0], 1.0));
    // Half to the miners by incentive, half to the validator (u16 weights quantise 75/25 to
    // 49151/16383, a few millionths off).
    let expect = [500_000.0, 375_000.0, 125_000.0];
    for (uid, &e) in expect.iter().enumerate() {
        assert!(
            (result.emission[uid] as f64 - e).abs() <= 10.0,
            "{:?}",
            result.emission
        );
    }
    assert_eq!(result.bonds[0], vec![(1, u16::MAX), (2, u16::MAX)]);
}

#[test]
fn self_weights_and_weights_from_unpermitted_uids_do_not_count() {
    let state = SubnetState {
        stake: vec![100, 1, 0],
        weights: vec![vec![(0, u16::MAX), (2, 1)], vec![(2, u16::MAX)], vec![]],
        bonds: vec![vec![]; 3],
        validator_permit: Some(vec![true, false, false]),
        ..Default::default()
    };
    let result = epoch(&state, &YumaParams::default(), 1_000);
    assert_eq!(result.consensus[0], 0, "a self-weight is ignored");
    assert!(near(result.incentive[2], 1.0), "{:?}", result.incentive);
    assert_eq!(result.dividends[1], 0, "no permit, no bonds");
}

#[test]
fn weights_set_before_a_uids_registration_are_masked() {
    let mut state = two_validators();
    // Miner 3 re-registered at epoch 10; A last set weights at epoch 9, B at epoch 11.
    state.last_update = Some(vec![9, 11, 0, 0]);
    state.registered_at = Some(vec![0, 0, 0, 10]);
    let result = epoch(&state, &with_kappa(0.5), 1_000);
    // A's row is now all on miner 2; B's row is unchanged.
    assert!(near(result.consensus[2], 1.0), "{:?}", result.consensus);
}

#[test]
fn bonds_move_by_the_moving_average() {
    // One validator bonded fully to miner 1 last epoch, now weighting only miner 2.
    let state = SubnetState {
        stake: vec![100, 0, 0],
        weights: vec![vec![(2, u16::MAX)], vec![], vec![]],
        bonds: vec![vec![(1, u16::MAX)], vec![], vec![]],
        ..Default::default()
    };
    let result = epoch(&state, &YumaParams::default(), 1_000);
    // Each column is normalised over the one validator, so both columns upscale to the max.
    assert_eq!(result.bonds[0], vec![(1, u16::MAX), (2, u16::MAX)]);
    assert!(near(result.dividends[0], 1.0));
}

fn yuma3(liquid_alpha: Option<LiquidAlpha>) -> YumaParams {
    YumaParams {
        bonds_mode: BondsMode::Yuma3 { liquid_alpha },
        ..Default::default()
    }
}

#[test]
fn yuma3_bonds_are_a_moving_average_of_the_validators_own_weights() {
    // One validator weighting miners 1 and 2 at 3:1, no bonds yet: with alpha 0.1 its bonds are
    // 0.1 of its (normalised, unclipped) weights, as proportions, and it takes all dividends.
    let state = SubnetState {
        stake: vec![100, 0, 0],
        weights: vec![vec![(1, 49_151), (2, 16_384)], vec![], vec![]],
        bonds: vec![vec![]; 3],
        ..Default::default()
    };
    let result = epoch(&state, &yuma3(None), 1_000);
    assert_eq!(result.bonds[0].len(), 2);
    assert!(near(result.bonds[0][0].1, 0.075), "{:?}", result.bonds);
    assert!(near(result.bonds[0][1].1, 0.025), "{:?}", result.bonds);
    assert!(near(result.dividends[0], 1.0));
    // Classic bonds of the same epoch are column-normalised and max-upscaled instead.
    let classic = epoch(&state, &YumaParams::default(), 1_000);
    assert_eq!(classic.bonds[0], vec![(1, u16::MAX), (2, u16::MAX)]);
    // A second epoch moves the bonds another tenth of the way: 0.1·w + 0.9·b.
    let next = SubnetState {
        bonds: result.bonds.clone(),
        ..state
    };
    let second = epoch(&next, &yuma3(None), 1_000);
    assert!(
        near(second.bonds[0][0].1, 0.075 + 0.9 * 0.075),
        "{:?}",
        second.bonds
    );
}

#[test]
fn yuma3_dividends_follow_bonds_times_incentive_times_stake() {
    // Two validators agreeing exactly: same bonds per unit of weight, so dividends split by stake.
    let mut state = two_validators();
    state.weights[1] = state.weights[0].clone();
    let result = epoch(&state, &yuma3(None), 1_000);
    assert!(near(result.dividends[0], 0.6), "{:?}", result.dividends);
    assert!(near(result.dividends[1], 0.4), "{:?}", result.dividends);
}

#[test]
fn liquid_alpha_stays_within_its_bounds_and_follows_the_sigmoid() {
    let liquid = LiquidAlpha::default();
    let f = |x: f64| Fx::from_num(x);
    // Weight at consensus, no bond: difference 0, so alpha = low + (high - low) / (1 + e^5).
    let at_consensus = liquid.alpha(f(0.5), f(0.5), f(0.0)).to_num::<f64>();
    let low = liquid.low.to_num::<f64>();
    let high = liquid.high.to_num::<f64>();
    let expected = low + (high - low) / (1.0 + 5f64.exp());
    assert!(
        (at_consensus - expected).abs() < 1e-6,
        "{at_consensus} vs {expected}"
    );
    // Buying far above consensus: difference 1, alpha near high.
    let buying = liquid.alpha(f(0.0), f(1.0), f(0.0)).to_num::<f64>();
    let expected = low + (high - low) / (1.0 + (-5f64).exp());
    assert!((buying - expected).abs() < 1e-6, "{buying} vs {expected}");
    for (c, w, b) in [
        (0.0, 0.0, 0.0),
        (1.0, 0.0, 1.0),
        (0.3, 0.9, 0.2),
        (0.9, 0.1, 0.8),
    ] {
        let alpha = liquid.alpha(f(c), f(w), f(b));
        assert!(
            alpha >= liquid.low && alpha <= liquid.high,
            "{c} {w} {b}: {alpha}"
        );
    }
    // In an epoch, liquid alpha bonds a validator faster than the fixed alpha of 0.1.
    let state = SubnetState {
        stake: vec![100, 0, 0],
        weights: vec![vec![(1, 49_151), (2, 16_384)], vec![], vec![]],
        bonds: vec![vec![]; 3],
        ..Default::default()
    };
    let fixed = epoch(&state, &yuma3(None), 1_000);
    let liquid = epoch(&state, &yuma3(Some(LiquidAlpha::default())), 1_000);
    assert!(
        liquid.bonds[0][0].1 > 5 * fixed.bonds[0][0].1,
        "{liquid:?} vs {fixed:?}"
    );
}

#[test]
fn fixed_point_exp_matches_f64() {
    for i in -200..=200 {
        let x = f64::from(i) / 10.0;
        let got = math::exp(Fx::from_num(x)).to_num::<f64>();
        let want = x.exp();
        assert!(
            (got - want).abs() <= want * 1e-6 + 1e-8,
            "e^{x}: {got} vs {want}"
        );
    }
}

/// A random subnet: `n` UIDs with distinct stakes, sparse weights, explicit permits.
fn subnet() -> impl Strategy<Value = (SubnetState, u64)> {
    (2usize..24).prop_flat_map(|n| {
        (
            proptest::collection::vec(0u64..1_000_000, n),
            proptest::collection::vec(
                proptest::collection::vec((0..n as u32, any::<u16>()), 0..6),
                n,
            ),
            proptest::collection::vec(
                proptest::collection::vec((0..n as u32, any::<u16>()), 0..4),
                n,
            ),
            proptest::collection::vec(any::<bool>(), n),
            1u64..u64::MAX / 2,
        )
            .prop_map(|(mut stake, weights, bonds, permit, emission)| {
                // Distinct stakes keep the default permit ordering free of ties.
                for (i, s) in stake.iter_mut().enumerate() {
                    *s = *s * 64 + i as u64;
                }
                let state = SubnetState {
                    stake,
                    weights,
                    bonds,
                    validator_permit: Some(permit),
                    ..Default::default()
                };
                (state, emission)
            })
    })
}

/// Every bond rule: classic, Yuma-3 with a fixed alpha, Yuma-3 with liquid alpha.
fn modes() -> impl Strategy<Value = YumaParams> {
    prop_oneof![
        Just(BondsMode::Classic),
        Just(BondsMode::Yuma3 { liquid_alpha: None }),
        Just(BondsMode::Yuma3 {
            liquid_alpha: Some(LiquidAlpha::default()),
        }),
    ]
    .prop_map(|bonds_mode| YumaParams {
        bonds_mode,
        ..Default::default()
    })
}

fn permuted(state: &SubnetState, order: &[usize]) -> SubnetState {
    // `order[old] = new`.
    let n = state.stake.len();
    let mut out = SubnetState {
        stake: vec![0; n],
        weights: vec![vec![]; n],
        bonds: vec![vec![]; n],
        validator_permit: state.validator_permit.as_ref().map(|_| vec![false; n]),
        ..Default::default()
    };
    let remap = |row: &Vec<(u32, u16)>| -> Vec<(u32, u16)> {
        row.iter()
            .map(|&(j, w)| (order[j as usize] as u32, w))
            .collect()
    };
    for old in 0..n {
        let new = order[old];
        out.stake[new] = state.stake[old];
        out.weights[new] = remap(&state.weights[old]);
        out.bonds[new] = remap(&state.bonds[old]);
        if let (Some(to), Some(from)) = (&mut out.validator_permit, &state.validator_permit) {
            to[new] = from[old];
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn incentive_and_dividends_sum_to_one_and_emission_is_bounded(
        (state, emission) in subnet(),
        params in modes(),
    ) {
        let result = epoch(&state, &params, emission);
        let n = state.stake.len() as f64;
        let tolerance = n * 4.0 / 4_294_967_296.0;
        let incentive: f64 = result.incentive_fx.iter().map(|x| x.to_num::<f64>()).sum();
        let dividends: f64 = result.dividends_fx.iter().map(|x| x.to_num::<f64>()).sum();
        if incentive > 0.0 {
            prop_assert!((incentive - 1.0).abs() <= tolerance, "incentive sums to {}", incentive);
        }
        if dividends > 0.0 {
            prop_assert!((dividends - 1.0).abs() <= tolerance, "dividends sum to {}", dividends);
        }
        let handed_out: u128 = result.emission.iter().map(|&e| u128::from(e)).sum();
        prop_assert!(handed_out <= u128::from(emission));
    }

    #[test]
    fn permuting_uids_permutes_the_outputs(
        (state, emission) in subnet(),
        seed in any::<u64>(),
        params in modes(),
    ) {
        let n = state.stake.len();
        // A permutation from the seed (Fisher-Yates with a small LCG).
        let mut order: Vec<usize> = (0..n).collect();
        let mut x = seed | 1;
        for i in (1..n).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(i, (x >> 33) as usize % (i + 1));
        }
        let a = epoch(&state, &params, emission);
        let b = epoch(&permuted(&state, &order), &params, emission);
        for old in 0..n {
            let new = order[old];
            prop_assert_eq!(a.consensus[old], b.consensus[new]);
            prop_assert_eq!(a.incentive[old], b.incentive[new]);
            prop_assert_eq!(a.dividends[old], b.dividends[new]);
            prop_assert_eq!(a.validator_trust[old], b.validator_trust[new]);
            prop_assert_eq!(a.emission[old], b.emission[new]);
            let mut remapped: Vec<(u32, u16)> =
                a.bonds[old].iter().map(|&(j, v)| (order[j as usize] as u32, v)).collect();
            remapped.sort();
            prop_assert_eq!(&remapped, &b.bonds[new]);
        }
    }

    #[test]
    fn results_are_identical_across_runs((state, emission) in subnet(), params in modes()) {
        let first = epoch(&state, &params, emission);
        let second = epoch(&state.clone(), &params, emission);
        prop_assert_eq!(first, second);
    }
}

#[test]
fn json_input_runs_and_malformed_input_names_the_field() {
    let input = r#"{"stake":[100,0,0],"weights":[[[1,49151],[2,16384]],[],[]],"max_validators":64,"emission":1000000}"#;
    let output = YumaInput::from_json(input)
        .expect("parses")
        .run()
        .expect("runs");
    assert!(near(output.incentive[1], 0.75));
    assert_eq!(output.emission.len(), 3);

    let err = YumaInput::from_json(r#"{"stake":[1,2],"weights":[[[1,70000]],[]],"emission":1}"#)
        .expect_err("weight over u16");
    assert_eq!(err.field, "weights[0][0][1]", "{err}");
    let err = YumaInput::from_json(r#"{"stake":[1],"weights":[[]]}"#).expect_err("no emission");
    assert!(err.to_string().contains("emission"), "{err}");
    let err = YumaInput::from_json(r#"{"stake":[1,2],"weights":[[[5,1]],[]],"emission":1}"#)
        .expect("parses")
        .run()
        .expect_err("uid out of range");
    assert_eq!(err.field, "weights[0][0]");
    let err = YumaInput::from_json(r#"{"stake":[1],"weights":[[]],"kappa":1.5,"emission":1}"#)
        .expect("parses")
        .run()
        .expect_err("kappa");
    assert_eq!(err.field, "kappa");
    let yuma3 = r#"{"stake":[100,0,0],"weights":[[[1,49151],[2,16384]],[],[]],"emission":1000,
        "bonds_mode":"yuma3","liquid_alpha":{"alpha_low":0.6,"steepness":500}}"#;
    let output = YumaInput::from_json(yuma3)
        .expect("parses")
        .run()
        .expect("runs");
    assert!(near(output.dividends[0], 1.0));
    let err =
        YumaInput::from_json(r#"{"stake":[1],"weights":[[]],"emission":1,"bonds_mode":"yuma9"}"#)
            .expect_err("unknown mode");
    assert_eq!(err.field, "bonds_mode", "{err}");
    let err =
        YumaInput::from_json(r#"{"stake":[1],"weights":[[]],"emission":1,"liquid_alpha":{}}"#)
            .expect("parses")
            .run()
            .expect_err("liquid alpha without yuma3");
    assert_eq!(err.field, "liquid_alpha", "{err}");
    let err = YumaInput::from_json(
        r#"{"stake":[1],"weights":[[]],"emission":1,"bonds_mode":"yuma3","liquid_alpha":{"alpha_low":0.95}}"#,
    )
    .expect("parses")
    .run()
    .expect_err("low above high");
    assert_eq!(err.field, "liquid_alpha.alpha_low", "{err}");
    let err = YumaInput::from_json(r#"{"stake":[1],"weights":[[]],"emision":1}"#)
        .expect_err("unknown field");
    assert!(err.to_string().contains("emision"), "{err}");
}
