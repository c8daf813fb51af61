//! A simulated market of subnets: who gets emission under each rule, printed as tables.
//!
//! `cargo bench -p meshmind-node --bench market`: eight subnets whose stakers follow different
//! paths over 1,000 epochs (steady, growing, leaving, a pump and dump, a late entrant, wash
//! trading in and out every epoch, a step), plus the farming attack (a subnet of one hotkey with
//! a stake of 1). Every stake moves by real signed transactions applied to the real economy,
//! which then ends each epoch as the chain does. The same paths run under both rules emission
//! may follow: the moving average of the stake on each subnet, and of its net inflows.
//! `MESHMIND_MARKET_EPOCHS` changes the length. Exits non-zero if the farm earns 0.1 % or more.

use std::collections::BTreeMap;

use meshmind_node::state::{EmissionMode, Key, State};
use meshmind_protocols::{Keypair, NetworkId, v1};

const NET: NetworkId = NetworkId::new([4; 32]);
/// Emission per epoch.
const EMISSION: u64 = 10_000;
const SUBNETS: u32 = 8;
const FARM: u32 = SUBNETS + 1;

fn keypair(tag: u8, i: u32) -> Keypair {
    let mut seed = [tag; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    Keypair::from_secret(&seed)
}

fn key(k: &Keypair) -> Key {
    Key(k.public().to_bytes())
}

/// The stakers' deposits on subnet `i` at epoch `t` (what they put in, before earnings), and
/// what the path is.
fn deposits(i: u32, t: u64, epochs: u64) -> u64 {
    let at = |fraction: f64| (epochs as f64 * fraction) as u64;
    match i {
        1 => 1_000_000,
        2 => 100_000,
        3 => 1_000_000 * t / epochs,
        4 => 1_000_000 - 900_000 * t / epochs,
        5 if (at(0.5)..at(0.5) + 5).contains(&t) => 50_000 + 2_000_000,
        5 => 50_000,
        6 if t >= at(0.7) => 500_000,
        6 => 0,
        7 if t.is_multiple_of(2) => 300_000,
        7 => 200_000,
        _ if t >= at(0.3) => 600_000,
        _ => 300_000,
    }
}

const PATHS: [&str; 8] = [
    "steady 1,000,000",
    "steady 100,000",
    "grows 0 to 1,000,000",
    "leaves 1,000,000 to 100,000",
    "50,000; +2,000,000 for 5 epochs at 50 %",
    "none, then 500,000 from 70 %",
    "200,000; +100,000 in and out every epoch",
    "300,000, then 600,000 from 30 %",
];

struct Market {
    state: State,
    whales: Vec<(Keypair, Keypair)>,
}

impl Market {
    fn new(mode: EmissionMode) -> (Self, Keypair) {
        let validator = keypair(1, 0);
        let whales: Vec<(Keypair, Keypair)> = (1..=SUBNETS)
            .map(|i| (keypair(2, i), keypair(3, i)))
            .collect();
        let farmer = (keypair(4, 0), keypair(5, 0));
        let mut balances: Vec<v1::GenesisBalance> = whales
            .iter()
            .map(|(cold, _)| v1::GenesisBalance {
                coldkey: key(cold).0.to_vec(),
                amount: 1_000_000_000,
            })
            .collect();
        balances.push(v1::GenesisBalance {
            coldkey: key(&farmer.0).0.to_vec(),
            amount: 10_000_000,
        });
        let genesis = v1::Genesis {
            network_name: "market".into(),
            epoch_ms: 1_000,
            subnets: (1..=SUBNETS)
                .map(|id| v1::SubnetSpec {
                    id,
                    name: format!("s{id}"),
                    tasks: vec!["t".into()],
                    owner: Vec::new(),
                })
                .collect(),
            validators: vec![v1::GenesisValidator {
                hotkey: key(&validator).0.to_vec(),
                coldkey: key(&validator).0.to_vec(),
                stake: u64::from(SUBNETS),
            }],
            balances,
            emission_per_epoch: EMISSION,
            economy: Some(v1::EconomyParams {
                subnet_lock: 1_000,
                emission_mode: match mode {
                    EmissionMode::StakeEma => "stake".into(),
                    EmissionMode::FlowEma => "flows".into(),
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut market = Market {
            state: State::from_genesis(&genesis, NET).expect("a usable genesis"),
            whales,
        };
        for i in 0..SUBNETS as usize {
            let (cold, hot) = (market.whales[i].0.clone(), market.whales[i].1.clone());
            market.send(&cold, register(&hot, &cold, i as u32 + 1));
        }
        // The farm: one hotkey on a subnet of its own, a stake of 1.
        let (cold, hot) = farmer;
        market.send(
            &cold,
            v1::transaction::Kind::CreateSubnet(v1::CreateSubnet {
                name: "farm".into(),
                tasks: vec!["t".into()],
                max_lock: 1_000,
            }),
        );
        market.send(&cold, register(&hot, &cold, FARM));
        market.send(&cold, add_stake(&hot, FARM, 1));
        (market, cold)
    }

    fn send(&mut self, signer: &Keypair, kind: v1::transaction::Kind) {
        let nonce = self.state.account(&key(signer)).nonce;
        let tx = v1::Transaction::new_signed(&NET.to_vec(), nonce, kind, signer);
        if let Err(e) = self.state.apply(&tx) {
            panic!("a market transaction was refused: {e}");
        }
    }
}

fn register(hot: &Keypair, cold: &Keypair, subnet: u32) -> v1::transaction::Kind {
    v1::transaction::Kind::Register(
        v1::Register {
            subnet,
            max_burn: u64::MAX,
            ..Default::default()
        }
        .consented(hot, &NET.to_vec(), &cold.public()),
    )
}

fn add_stake(hot: &Keypair, subnet: u32, amount: u64) -> v1::transaction::Kind {
    v1::transaction::Kind::AddStake(v1::AddStake {
        hotkey: key(hot).0.to_vec(),
        subnet,
        amount,
    })
}

/// Each subnet's emission per epoch over a run.
fn run(mode: EmissionMode, epochs: u64) -> BTreeMap<u32, Vec<u64>> {
    let (mut m, _) = Market::new(mode);
    let mut paid: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for t in 0..epochs {
        for i in 1..=SUBNETS {
            let before = if t == 0 {
                0
            } else {
                deposits(i, t - 1, epochs)
            };
            let now = deposits(i, t, epochs);
            let (cold, hot) = m.whales[i as usize - 1].clone();
            if now > before {
                m.send(&cold, add_stake(&hot, i, now - before));
            } else if now < before {
                let remove = v1::transaction::Kind::RemoveStake(v1::RemoveStake {
                    hotkey: key(&hot).0.to_vec(),
                    subnet: i,
                    amount: before - now,
                });
                m.send(&cold, remove);
            }
        }
        m.state.end_epoch(&[], EMISSION);
        m.state.check_invariants().expect("supply conserved");
        for (id, share) in m.state.market_shares(EMISSION) {
            paid.entry(id).or_default().push(share);
        }
    }
    paid
}

fn percent(part: u64, whole: u64) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

fn main() {
    let epochs: u64 = std::env::var("MESHMIND_MARKET_EPOCHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let modes = [
        (EmissionMode::StakeEma, "stake EMA"),
        (EmissionMode::FlowEma, "net-inflow EMA"),
    ];
    let runs: Vec<BTreeMap<u32, Vec<u64>>> = modes.iter().map(|&(m, _)| run(m, epochs)).collect();
    let total = EMISSION * epochs;
    let window = |v: &[u64], from: f64, to: f64| -> u64 {
        let (a, b) = (
            (epochs as f64 * from) as usize,
            (epochs as f64 * to) as usize,
        );
        v[a.min(v.len())..b.min(v.len())].iter().sum()
    };
    println!("Emission shares over {epochs} epochs ({EMISSION} per epoch), by subnet and rule");
    println!();
    println!(
        "| subnet | stakers' deposits | {} all | {} 0-30 % | {} 70-100 % | {} all | {} 0-30 % | {} 70-100 % |",
        modes[0].1, modes[0].1, modes[0].1, modes[1].1, modes[1].1, modes[1].1
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut failed = false;
    for id in 1..=FARM {
        let path = PATHS
            .get(id as usize - 1)
            .copied()
            .unwrap_or("farm: one hotkey, stake 1");
        let mut row = format!("| {id} | {path} |");
        for paid in &runs {
            let v = paid.get(&id).cloned().unwrap_or_default();
            let part = total * 3 / 10;
            row += &format!(
                " {:.2} % | {:.2} % | {:.2} % |",
                percent(v.iter().sum(), total),
                percent(window(&v, 0.0, 0.3), part),
                percent(window(&v, 0.7, 1.0), part),
            );
            if id == FARM && percent(v.iter().sum(), total) >= 0.1 {
                failed = true;
            }
        }
        println!("{row}");
    }
    println!();
    // The pump: 2,000,000 for five epochs, against holding 50,000 throughout.
    let pump_at = (epochs as f64 * 0.5) as usize;
    for ((_, name), paid) in modes.iter().zip(&runs) {
        let v = &paid[&5];
        let during = v[pump_at..(pump_at + 5).min(v.len())].iter().sum::<u64>();
        let after = v[(pump_at + 5).min(v.len())..(pump_at + 69).min(v.len())]
            .iter()
            .sum::<u64>();
        let before = v[pump_at.saturating_sub(64)..pump_at].iter().sum::<u64>();
        println!(
            "{name}: the pump's subnet earned {during} in its 5 epochs and {after} in the 64 after (the 64 before: {before})"
        );
        let wash = &paid[&7];
        let (even, odd): (Vec<u64>, Vec<u64>) = (
            wash.iter().step_by(2).copied().collect(),
            wash.iter().skip(1).step_by(2).copied().collect(),
        );
        println!(
            "{name}: the wash trader's subnet earned {:.2} % on epochs it bought, {:.2} % on epochs it sold",
            percent(even.iter().sum(), EMISSION * even.len() as u64),
            percent(odd.iter().sum(), EMISSION * odd.len() as u64),
        );
    }
    if failed {
        eprintln!("the farm earned 0.1 % or more of emission");
        std::process::exit(1);
    }
}
