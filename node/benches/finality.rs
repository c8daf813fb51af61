//! Finality latency and catch-up verification speed, printed as tables.
//!
//! `cargo bench -p meshmind-node --bench finality`: n validators with unequal stakes in one
//! process, each with its own network over loopback QUIC and its own RocksDB ledger (fsync on),
//! finalize one snapshot per epoch. Latency is from an epoch's end to its certificate persisted,
//! over every (validator, epoch) pair of the n after the warm-up epochs. `MESHMIND_BENCH_SIZES=4,16`
//! picks the sizes (default 4,16,64).
//!
//! Each size runs twice with one more node beside the n, a genesis validator with a small stake:
//! with a fixed set (it stays), and with a set that changes every epoch (it undeclares and
//! declares itself a finalizer in turn, so every snapshot hands over a new set).
//! Then each run's ledger is verified from genesis as a catching-up node does (every snapshot,
//! certificate and hand-over), in epochs per second.
//!
//! Second table: verifying finalized snapshots as a catching-up node does (snapshot checks with
//! 100 weight vectors plus the certificate, all batch-verified) for a 100-validator set, against
//! verifying the same 200 signatures one by one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshmind_node::chain::driver::Commit;
use meshmind_node::chain::service::ConsensusService;
use meshmind_node::chain::snapshot::{self, Expect};
use meshmind_node::chain::verify::{check_finalized, verify_ledger};
use meshmind_node::clock::now_ms;
use meshmind_node::config::ConsensusSection;
use meshmind_node::consensus::certificate;
use meshmind_node::consensus::members::Members;
use meshmind_node::consensus::votes::{Vote, VoteType};
use meshmind_node::consensus::wire;
use meshmind_node::genesis::Genesis;
use meshmind_node::ledger::Ledger;
use meshmind_node::node::Node;
use meshmind_node::role::validator::gossip::{Arrival, WeightBoard, WeightKind};
use meshmind_node::role::validator::weights::commit;
use meshmind_node::state::{Key, State};
use meshmind_p2p::{Multiaddr, Network, NetworkConfig, NetworkHandle};
use meshmind_protocols::{Keypair, NetworkId, Signed, hash, v1};
use prost::Message;

/// Epochs not counted while the mesh settles.
const WARM_UP: u64 = 2;

fn keys(n: usize) -> Vec<Keypair> {
    let mut keys: Vec<Keypair> = (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            Keypair::from_secret(&seed)
        })
        .collect();
    keys.sort_by_key(|k| k.public());
    keys
}

fn stake(i: usize) -> u64 {
    100 + (i as u64 * 37) % 200
}

/// The genesis of `validators` (key, stake), with `funded` coldkeys holding a balance for fees.
fn genesis(
    validators: &[(&Keypair, u64)],
    funded: &[&Keypair],
    epoch_ms: u64,
    start_ms: u64,
) -> Genesis {
    let message = v1::Genesis {
        network_name: "finality-bench".into(),
        genesis_time_ms: start_ms,
        epoch_ms,
        subnets: vec![v1::SubnetSpec {
            id: 1,
            name: "bench".into(),
            tasks: vec!["echo".into()],
            owner: Vec::new(),
        }],
        validators: validators
            .iter()
            .map(|(k, stake)| v1::GenesisValidator {
                hotkey: k.public().to_bytes().to_vec(),
                coldkey: k.public().to_bytes().to_vec(),
                stake: *stake,
            })
            .collect(),
        balances: funded
            .iter()
            .map(|k| v1::GenesisBalance {
                coldkey: k.public().to_bytes().to_vec(),
                amount: 1_000_000,
            })
            .collect(),
        emission_per_epoch: 0,
        neurons: Vec::new(),
        economy: None,
    };
    Genesis {
        network_id: hash(&message).into(),
        message,
    }
}

/// Every validator's commitment and reveal for each epoch, as gossip would have delivered them.
fn board(keys: &[&Keypair], network_id: NetworkId, epochs: u64) -> Arc<Mutex<WeightBoard>> {
    let mut board = WeightBoard::new(keys.iter().map(|k| k.public()));
    for epoch in 0..epochs {
        let at = Arrival { subnet: 1, epoch };
        for key in keys {
            let (c, r) = commit(key, network_id, 1, epoch, &[(0, 65535), (1, 300)], [5; 32]);
            board
                .on_message(WeightKind::Commit, &c.encode_to_vec(), at)
                .expect("commit");
            board
                .on_message(WeightKind::Reveal, &r.encode_to_vec(), at)
                .expect("reveal");
        }
    }
    Arc::new(Mutex::new(board))
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

/// What one run saw.
struct Run {
    latencies: Vec<u64>,
    round0: usize,
    commits: usize,
    highest: Option<u64>,
    handovers: u64,
    verified: u64,
    verify_rate: f64,
}

/// Runs of one size and kind of set, pooled.
struct Row {
    n: usize,
    churn: bool,
    epochs: u64,
    p50: u64,
    p99: u64,
    round0: f64,
    samples: usize,
    /// Commits seen in all (any epoch, any validator), and the highest epoch committed.
    commits: usize,
    highest: Option<u64>,
    /// Snapshots that handed over a set different from the one that finalized them.
    handovers: u64,
    /// Epochs a catching-up node verifies per second on the runs' ledgers (mean), and how many.
    verify_rate: f64,
    verified: u64,
}

impl Row {
    fn pool(n: usize, churn: bool, epochs: u64, runs: &[Run]) -> Self {
        let mut latencies: Vec<u64> = runs.iter().flat_map(|r| r.latencies.clone()).collect();
        latencies.sort_unstable();
        let samples = latencies.len();
        let round0: usize = runs.iter().map(|r| r.round0).sum();
        Row {
            n,
            churn,
            epochs: epochs * runs.len() as u64,
            p50: percentile(&latencies, 0.5),
            p99: percentile(&latencies, 0.99),
            round0: if samples == 0 {
                0.0
            } else {
                round0 as f64 / samples as f64
            },
            samples,
            commits: runs.iter().map(|r| r.commits).sum(),
            highest: runs.iter().filter_map(|r| r.highest).max(),
            handovers: runs.iter().map(|r| r.handovers).sum(),
            verify_rate: runs.iter().map(|r| r.verify_rate).sum::<f64>() / runs.len().max(1) as f64,
            verified: runs.iter().map(|r| r.verified).sum(),
        }
    }
}

async fn spawn(
    key: &Keypair,
    tag: &str,
    bootnode: Option<Multiaddr>,
) -> (NetworkHandle, meshmind_p2p::NetworkEvents) {
    let mut config = NetworkConfig::local(tag);
    config.query_listen = None;
    config.bootnodes = bootnode.into_iter().collect();
    config.bootnode_redial = Duration::from_secs(2);
    Network::builder(config, key).spawn().expect("network")
}

/// The stake of the node that comes and goes: small, so the set finalizes without it.
const SPARE_STAKE: u64 = 10;

/// A transaction of the spare's own coldkey (its hotkey, as in this bench's genesis).
fn spare_tx(spare: &Keypair, network_id: NetworkId, nonce: u64, declare: bool) -> v1::Transaction {
    let kind = if declare {
        v1::transaction::Kind::DeclareFinalizer(v1::DeclareFinalizer::default().consented(
            spare,
            &network_id.to_vec(),
            &spare.public(),
        ))
    } else {
        v1::transaction::Kind::UndeclareFinalizer(v1::UndeclareFinalizer {
            hotkey: spare.public().to_bytes().to_vec(),
        })
    };
    v1::Transaction::new_signed(&network_id.to_vec(), nonce, kind, spare)
}

/// Runs n validators and a spare one; with `churn` the spare leaves the set and comes back
/// every epoch, otherwise it stays.
async fn finality(n: usize, epoch_ms: u64, epochs: u64, churn: bool) -> Run {
    let all = keys(n + 1);
    let spare = all[n].clone();
    let mut validators: Vec<(&Keypair, u64)> = all[..n]
        .iter()
        .enumerate()
        .map(|(i, k)| (k, stake(i)))
        .collect();
    validators.push((&spare, SPARE_STAKE));
    let setup_ms = 4_000 + n as u64 * 150;
    let genesis = genesis(&validators, &[&spare], epoch_ms, now_ms() + setup_ms);
    let network_id = genesis.network_id;
    let setters: Vec<&Keypair> = validators.iter().map(|(k, _)| *k).collect();
    let board = board(&setters, network_id, epochs + WARM_UP + 4);
    let dir = tempfile::tempdir().expect("temp dir");
    let (commit_tx, mut commit_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Commit)>();
    // Every validator of the bench shares two cores and one disk: with many of them, each step
    // takes longer than the loopback defaults allow, so the step timeouts scale with the set.
    let mut section = ConsensusSection::default();
    if n > 24 {
        section.propose_ms = 3_000;
        section.prevote_ms = 1_500;
        section.precommit_ms = 1_500;
        section.delta_ms = 500;
    }
    let mut nodes = Vec::new();
    let mut tasks = Vec::new();
    let mut bootnode: Option<Multiaddr> = None;
    let mut ledger = None;
    let mut spare_service = None;
    for (i, key) in all.iter().enumerate() {
        let (network, events) = spawn(key, &genesis.network_tag(), bootnode.clone()).await;
        if bootnode.is_none() {
            let addr = loop {
                let addrs = network.listen_addrs().await.expect("addrs");
                if let Some(a) = addrs.iter().find(|a| a.to_string().contains("quic")) {
                    break a.clone();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            bootnode = Some(addr.with_p2p(network.local_peer_id()).expect("p2p suffix"));
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let service = ConsensusService::start(
            &dir.path().join(format!("v{i}")),
            Some(key.clone()),
            &genesis,
            network.clone(),
            board.clone(),
            &section,
            Some(tx),
        )
        .await
        .expect("consensus");
        let service = Arc::new(service);
        if i == 0 {
            ledger = Some(service.ledger.clone());
        }
        if i == n {
            spare_service = Some(service.clone());
        }
        let forward = commit_tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(c) = rx.recv().await {
                let _ = forward.send((i, c));
            }
        }));
        let mut node = Node::new(network);
        node.add(service).expect("one consensus service");
        nodes.push(node.start(events).await.expect("node started"));
    }
    let deadline = Instant::now()
        + Duration::from_millis(genesis.message.genesis_time_ms.saturating_sub(now_ms()))
        + Duration::from_millis((epochs + WARM_UP + 3) * epoch_ms)
        + Duration::from_secs(30);
    let last = WARM_UP + epochs;
    let mut latencies = Vec::new();
    let mut round0 = 0usize;
    let mut commits = 0usize;
    let mut highest = None;
    let mut done = vec![false; n];
    let spare_service = spare_service.expect("the spare runs");
    let spare_key = Key(spare.public().to_bytes());
    let mut submitted = None;
    while Instant::now() < deadline && !done.iter().all(|d| *d) {
        let Ok(Some((i, c))) =
            tokio::time::timeout(Duration::from_millis(200), commit_rx.recv()).await
        else {
            continue;
        };
        if i == n {
            // The spare's next turn, once its last one applied: leave if declared, else declare.
            let (nonce, declared) = {
                let state = spare_service
                    .economy
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                (
                    state.accounts.get(&spare_key).map_or(0, |a| a.nonce),
                    state.finalizers.get(&spare_key).is_some_and(|f| f.declared),
                )
            };
            if churn && submitted != Some(nonce) {
                let tx = spare_tx(&spare, network_id, nonce, !declared);
                spare_service.submit_transaction(tx).await.expect("taken");
                submitted = Some(nonce);
            }
            continue;
        }
        commits += 1;
        highest = highest.max(Some(c.epoch));
        if c.epoch >= WARM_UP && c.epoch < last {
            latencies.push(c.latency_ms);
            round0 += usize::from(c.round == 0);
        }
        if c.epoch + 1 >= last {
            done[i] = true;
        }
    }
    for node in nodes {
        node.shutdown().await;
    }
    for task in tasks {
        task.abort();
    }
    drop(spare_service);
    let ledger = ledger.expect("node 0 ran");
    let (handovers, verified, verify_rate) = replay(ledger.as_ref(), &genesis);
    Run {
        latencies,
        round0,
        commits,
        highest,
        handovers,
        verified,
        verify_rate,
    }
}

/// Counts the snapshots of `ledger` that hand over a set other than the one that finalized
/// them, and verifies the ledger from genesis as a catching-up node does: (hand-overs, epochs
/// verified, epochs per second).
fn replay(ledger: &Ledger, genesis: &Genesis) -> (u64, u64, f64) {
    let Some(head) = ledger.head().expect("head") else {
        return (0, 0, 0.0);
    };
    let mut set = Members::from_genesis(genesis)
        .expect("members")
        .genesis_validators();
    let mut handovers = 0;
    for epoch in 0..=head.epoch {
        let next = ledger
            .finalized(epoch)
            .expect("read")
            .and_then(|f| f.snapshot)
            .and_then(|s| s.next_validators);
        if let Some(next) = next {
            let hotkeys: Vec<_> = next.validators.iter().map(|v| &v.hotkey).collect();
            if hotkeys != set.iter().map(|v| &v.hotkey).collect::<Vec<_>>() {
                handovers += 1;
            }
            set = next
                .validators
                .into_iter()
                .map(|v| v1::GenesisValidator {
                    hotkey: v.hotkey,
                    coldkey: v.coldkey,
                    stake: v.stake,
                })
                .collect();
        }
    }
    let rounds = 20;
    let start = Instant::now();
    let mut verified = 0;
    for _ in 0..rounds {
        verified = verify_ledger(
            ledger,
            genesis.network_id,
            &Members::from_genesis(genesis).expect("members"),
            State::from_genesis(&genesis.message, genesis.network_id).expect("state"),
            genesis.message.emission_per_epoch,
        )
        .expect("the ledger verifies");
    }
    let rate = (verified * rounds) as f64 / start.elapsed().as_secs_f64();
    (handovers, verified, rate)
}

/// Epochs per second a catching-up node verifies for a 100-validator set (100 weight vectors and
/// 100 precommits), and the same 200 signatures checked one by one.
fn catch_up() -> (f64, f64) {
    let keys = keys(100);
    let validators = keys
        .iter()
        .enumerate()
        .map(|(i, k)| v1::ValidatorEntry {
            hotkey: k.public().to_bytes().to_vec(),
            coldkey: k.public().to_bytes().to_vec(),
            stake: stake(i),
        })
        .collect();
    let members = Members::new(v1::ValidatorSet { validators }).expect("members");
    let network_id = NetworkId::new([9; 32]);
    let genesis = v1::Genesis {
        network_name: "bench".into(),
        genesis_time_ms: 0,
        epoch_ms: 1_000,
        subnets: vec![v1::SubnetSpec {
            id: 1,
            name: "one".into(),
            tasks: vec!["sort".into()],
            owner: Vec::new(),
        }],
        validators: members.genesis_validators(),
        balances: Vec::new(),
        emission_per_epoch: 1_000_000,
        neurons: Vec::new(),
        economy: None,
    };
    let economy = State::from_genesis(&genesis, network_id).expect("economy");
    let expect = Expect {
        network_id,
        epoch: 7,
        parent_hash: [1; 32],
        members: &members,
        state: &economy,
        emission: 1_000_000,
    };
    let reveals: Vec<v1::WeightReveal> = keys
        .iter()
        .map(|k| commit(k, network_id, 1, 6, &[(0, 65535), (1, 300)], [5; 32]).1)
        .collect();
    let snap = snapshot::build(
        &expect,
        &keys[0].public(),
        reveals.clone(),
        Vec::new(),
        Vec::new(),
    );
    let value = snapshot::value_id(&snap);
    let votes: Vec<v1::Vote> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let vote = Vote {
                height: 7,
                round: 0,
                vote_type: VoteType::Precommit,
                value: Some(value),
                voter: i,
            };
            wire::wire_vote(network_id, &members, &vote)
                .expect("member")
                .signed(k)
        })
        .collect();
    let cert = certificate::build(&votes).expect("certificate");
    let finalized = v1::FinalizedSnapshot {
        snapshot: Some(snap),
        certificate: Some(cert),
    };
    let rounds = 100;
    let start = Instant::now();
    for _ in 0..rounds {
        let expect = Expect {
            network_id,
            epoch: 7,
            parent_hash: [1; 32],
            members: &members,
            state: &economy,
            emission: 1_000_000,
        };
        check_finalized(&finalized, &expect).expect("valid");
    }
    let full = rounds as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..rounds {
        for vote in &votes {
            vote.verify_signature().expect("valid");
        }
        for reveal in &reveals {
            reveal.verify_signature().expect("valid");
        }
    }
    let single = rounds as f64 / start.elapsed().as_secs_f64();
    (full, single)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if let Ok(filter) = std::env::var("MESHMIND_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let sizes: Vec<usize> = std::env::var("MESHMIND_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![4, 16, 64]);
    println!(
        "| validators | set | epochs | samples | finality p50 | finality p99 | decided in round 0 | hand-overs | commits | highest epoch |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut runs = Vec::new();
    for n in sizes {
        // Small sets finalize in a few ms, where one run's p50 moves by a ms between runs: they
        // run several times, alternating the two kinds of set, and the samples are pooled.
        let (epoch_ms, epochs, repeats) = match n {
            0..=8 => (500, 20, 4),
            9..=24 => (1_000, 12, 1),
            _ => (8_000, 6, 1),
        };
        let mut fixed = Vec::new();
        let mut changing = Vec::new();
        for _ in 0..repeats {
            fixed.push(finality(n, epoch_ms, epochs, false).await);
            changing.push(finality(n, epoch_ms, epochs, true).await);
        }
        for (churn, pooled) in [(false, &fixed), (true, &changing)] {
            let row = Row::pool(n, churn, epochs, pooled);
            println!(
                "| {} | {} | {} | {} | {} ms | {} ms | {:.1} % | {} | {} | {} |",
                row.n,
                if row.churn {
                    "changes every epoch"
                } else {
                    "fixed"
                },
                row.epochs,
                row.samples,
                row.p50,
                row.p99,
                row.round0 * 100.0,
                row.handovers,
                row.commits,
                row.highest.map_or("-".into(), |h| h.to_string())
            );
            runs.push(row);
        }
    }
    println!();
    println!(
        "| validators | hand-over cost (p50 changing / p50 fixed - 1) | catch-up, fixed set | catch-up, changing set | ratio |"
    );
    println!("|---|---|---|---|---|");
    for pair in runs.chunks(2) {
        let [fixed, churn] = pair else { continue };
        let cost = churn.p50 as f64 / fixed.p50.max(1) as f64 - 1.0;
        println!(
            "| {} | {:+.1} % | {:.0} epochs/s ({} epochs) | {:.0} epochs/s ({} epochs, {} hand-overs) | {:.2}x |",
            fixed.n,
            cost * 100.0,
            fixed.verify_rate,
            fixed.verified,
            churn.verify_rate,
            churn.verified,
            churn.handovers,
            churn.verify_rate / fixed.verify_rate.max(f64::MIN_POSITIVE)
        );
    }
    let (full, single) = catch_up();
    println!();
    println!("| catch-up, 100 validators | epochs/s |");
    println!("|---|---|");
    println!("| snapshot + certificate (batch verify) | {full:.0} |");
    println!("| the same 200 signatures one by one (baseline) | {single:.0} |");
    println!("| ratio | {:.2}x |", full / single);
}
