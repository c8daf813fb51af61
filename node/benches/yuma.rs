//! Yuma epoch time and memory for subnets of growing size, printed as a table.
//!
//! `cargo bench -p meshmind-node --bench yuma`. Each case: n UIDs, the first k are validators with
//! stake, each weighting 1 % of the UIDs (deterministic pseudo-random targets), with bonds from a
//! previous epoch of the same shape. Peak memory is the process's high-water mark after the case.

use std::time::{Duration, Instant};

use meshmind_node::yuma::{BondsMode, LiquidAlpha, SubnetState, YumaParams, epoch};

fn lcg(x: &mut u64) -> u64 {
    *x = x
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *x >> 33
}

fn case(n: usize, validators: usize) -> SubnetState {
    let mut x = (n * 31 + validators) as u64;
    let per_row = (n / 100).max(1);
    let row = |x: &mut u64| -> Vec<(u32, u16)> {
        let mut entries: Vec<(u32, u16)> = (0..per_row)
            .map(|_| ((lcg(x) % n as u64) as u32, (lcg(x) % 65_535 + 1) as u16))
            .collect();
        entries.sort();
        entries.dedup_by_key(|e| e.0);
        entries
    };
    let mut weights = vec![Vec::new(); n];
    let mut bonds = vec![Vec::new(); n];
    for i in 0..validators {
        weights[i] = row(&mut x);
        bonds[i] = row(&mut x);
    }
    let stake = (0..n)
        .map(|i| {
            if i < validators {
                1_000 + lcg(&mut x) % 1_000_000
            } else {
                0
            }
        })
        .collect();
    SubnetState {
        stake,
        weights,
        bonds,
        ..Default::default()
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    let quick = std::env::var_os("MESHMIND_BENCH_QUICK").is_some();
    println!(
        "| UIDs x validators | bonds | weights | median epoch | min | runs | peak RSS after |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (n, validators, target) in [
        (256usize, 64usize, None),
        (4_096, 256, Some(Duration::from_millis(50))),
        (65_536, 1_024, Some(Duration::from_secs(1))),
    ] {
        let state = case(n, validators);
        let nnz: usize = state.weights.iter().map(Vec::len).sum();
        for (bonds, bonds_mode) in [
            ("classic", BondsMode::Classic),
            (
                "yuma3 + liquid alpha",
                BondsMode::Yuma3 {
                    liquid_alpha: Some(LiquidAlpha::default()),
                },
            ),
        ] {
            let params = YumaParams {
                max_validators: validators,
                bonds_mode,
                ..Default::default()
            };
            let runs = if quick {
                3
            } else if n > 10_000 {
                7
            } else {
                21
            };
            let mut times = Vec::with_capacity(runs);
            for _ in 0..runs {
                let start = Instant::now();
                let result = epoch(&state, &params, 1_000_000_000);
                times.push(start.elapsed());
                assert_eq!(result.incentive.len(), n);
            }
            times.sort();
            let median = times[runs / 2];
            let verdict = match target {
                Some(t) if median <= t => format!(" (target <= {t:?}: met)"),
                Some(t) => format!(" (target <= {t:?}: MISSED)"),
                None => String::new(),
            };
            println!(
                "| {n} x {validators} | {bonds} | {nnz} | {median:.2?}{verdict} | {:.2?} | {runs} | {:.0} MiB |",
                times[0],
                peak_rss_mib()
            );
        }
    }
}
