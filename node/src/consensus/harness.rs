//! Engines of several validators wired together in one process with a virtual clock: the test
//! bench of the engine (WAL replay, crashes, the double-sign guard). The bench performs each
//! engine's actions itself, in order, on an in-memory store or on real RocksDB ledgers, and can make
//! any write fail as a process that dies at that write.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use meshmind_protocols::{Keypair, NetworkId, Signed, v1};
use prost::Message;

use super::core::{Timeout, TimeoutConfig};
use super::engine::{Action, Engine, EngineConfig, EngineError};
use super::members::Members;
use crate::chain::app::{Chain, restore};
use crate::ledger::{Ledger, LedgerError, MemStore, Store};
use crate::role::validator::weights::commit;

pub(super) const NET: NetworkId = NetworkId::new([42; 32]);

/// A store that fails every write after `budget` of them, as a process that dies at that write.
pub(super) struct CrashingStore {
    pub ledger: Arc<dyn Store>,
    pub budget: Arc<AtomicUsize>,
}

impl CrashingStore {
    fn spend(&self) -> Result<(), LedgerError> {
        let left = self.budget.load(Ordering::SeqCst);
        if left == 0 {
            return Err(LedgerError::Corrupt {
                cf: "wal",
                epoch: None,
                reason: "simulated crash".into(),
            });
        }
        self.budget.store(left - 1, Ordering::SeqCst);
        Ok(())
    }
}

impl CrashingStore {
    /// Performs a storage action of an engine; other actions are not its to perform.
    fn perform(&self, action: &Action) -> Result<(), LedgerError> {
        match action {
            Action::Persist { epoch, entry, sync } => {
                self.spend()?;
                self.ledger.wal_append(*epoch, entry, *sync)
            }
            Action::StoreEvidence(evidence) => {
                self.spend()?;
                self.ledger.add_evidence(evidence).map(|_| ())
            }
            Action::ForgetEvidence(evidence) => {
                self.spend()?;
                self.ledger.remove_evidence(evidence)
            }
            Action::Commit { finalized, state } => {
                self.spend()?;
                self.ledger.commit(finalized, state)
            }
            _ => Ok(()),
        }
    }
}

/// Weight reveals every validator made for the commitments of `epoch`.
/// Emission per epoch of the simulated network.
pub(super) const EMISSION: u64 = 1_000_000;

/// The account that pays the simulated transfers.
pub(super) fn funder() -> Keypair {
    Keypair::from_secret(&[200; 32])
}

/// The funder's transfer of 1 to the first validator's coldkey with `nonce`.
pub(super) fn transfer(keys: &[Keypair], nonce: u64) -> v1::Transaction {
    let kind = v1::transaction::Kind::Transfer(v1::Transfer {
        to: keys[0].public().to_bytes().to_vec(),
        amount: 1,
    });
    v1::Transaction::new_signed(&NET.to_vec(), nonce, kind, &funder())
}

/// The economy at genesis: subnet 1 with every validator registered, and a funded account.
pub(super) fn economy(members: &Members) -> crate::state::State {
    let genesis = v1::Genesis {
        network_name: "sim".into(),
        genesis_time_ms: 0,
        epoch_ms: 1_000,
        subnets: vec![v1::SubnetSpec {
            id: 1,
            name: "one".into(),
            tasks: vec!["sort".into()],
            owner: Vec::new(),
        }],
        validators: members.genesis_validators(),
        balances: vec![v1::GenesisBalance {
            coldkey: funder().public().to_bytes().to_vec(),
            amount: 1_000_000,
        }],
        emission_per_epoch: EMISSION,
        neurons: Vec::new(),
        economy: None,
    };
    crate::state::State::from_genesis(&genesis, NET).expect("a usable economy")
}

pub(super) fn reveals(keys: &[Keypair], epoch: u64) -> Vec<v1::WeightReveal> {
    keys.iter()
        .map(|k| commit(k, NET, 1, epoch, &[(0, 65535), (1, 100)], [3; 32]).1)
        .collect()
}

#[allow(clippy::large_enum_variant)]
enum Event {
    Deliver(usize, v1::ConsensusMessage),
    Timeout(usize, Timeout),
    Restart(usize),
    /// Every node resends, and nodes behind fetch finalized epochs from the others' ledgers.
    Resend,
}

/// Virtual ms between resends.
const RESEND_MS: u64 = 500;
/// Virtual ms a crashed node stays down.
const DOWN_MS: u64 = 300;

/// Seeded network faults.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Faults {
    /// The seed the faults were drawn from, for failure messages.
    pub seed: u64,
    /// Random state (splitmix64); 0 turns faults off.
    pub state: u64,
    /// Longest delivery delay in ms.
    pub max_delay: u64,
    /// Percent of messages dropped.
    pub drop: u64,
    /// Percent of messages delivered twice.
    pub duplicate: u64,
    /// The nodes of a bit mask (bit i: node i) are cut off from the rest until the virtual time
    /// given: messages across wait, and neither side syncs from the other's ledgers.
    pub partition: Option<(u64, u64)>,
    /// A crash is a power failure: WAL writes not yet synced are lost with the process.
    pub power_loss: bool,
    /// A crash loses the node's whole data directory, as an operator who wipes and restarts it:
    /// it forgets what it signed, so it may sign again (its double signs are not checked).
    pub amnesia: bool,
}

impl Faults {
    /// Faults drawn from `seed`.
    pub(super) fn seeded(seed: u64) -> Self {
        Self {
            seed,
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            max_delay: 40,
            drop: 5,
            duplicate: 5,
            partition: None,
            power_loss: false,
            amnesia: false,
        }
    }

    /// Whether nodes `a` and `b` cannot reach each other at `now`, and until when.
    fn cut(&self, a: usize, b: usize, now: u64) -> Option<u64> {
        let (side, heal) = self.partition?;
        let on = |i: usize| i < 64 && side & (1 << i) != 0;
        (on(a) != on(b) && now < heal).then_some(heal)
    }

    /// The next random number.
    pub(super) fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A network of engines with a virtual clock.
pub(super) struct Net {
    pub dir: tempfile::TempDir,
    pub keys: Vec<Keypair>,
    pub members: Members,
    pub engines: Vec<Option<Engine<Chain>>>,
    /// Each live node's storage (dropped with its engine when it dies).
    pub stores: Vec<Option<CrashingStore>>,
    /// Where each node keeps its data across restarts: in memory, or RocksDB under `dir`.
    pub memory: Option<Vec<Arc<MemStore>>>,
    pub budgets: Vec<Arc<AtomicUsize>>,
    /// Every message each validator ever sent, by (epoch, round, kind) with kind 0 proposal,
    /// 1 prevote, 2 precommit: a second different one is a double sign.
    pub sent: HashMap<(usize, u64, u32, u8), Vec<u8>>,
    /// Commits seen: (node, epoch) -> header hash.
    pub commits: BTreeMap<(usize, u64), [u8; 32]>,
    /// Validators that propose without weight vectors (a censoring proposer).
    pub censor: Vec<bool>,
    /// Crashes so far.
    pub deaths: usize,
    /// Unsynced WAL writes lost in power failures so far.
    pub lost_writes: usize,
    /// Validators that equivocate on purpose (test mode); their double signs are not checked.
    pub equivocators: Vec<bool>,
    /// The funder's transaction at a nonce, instead of its transfer.
    pub plan: BTreeMap<u64, v1::Transaction>,
    /// Other transactions, offered to proposers from an epoch on.
    pub extra: Vec<(u64, v1::Transaction)>,
    /// Seeded faults: each message is delayed 1..=`max_delay` ms, dropped or duplicated at these
    /// percentages. Zero seed state means a perfect network with 1 ms delivery.
    pub faults: Faults,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: HashMap<u64, Event>,
    seq: u64,
    pub now: u64,
}

impl Net {
    /// A network of validators with `stakes`, keeping their data in memory.
    pub(super) fn new(stakes: &[u64]) -> Self {
        Self::build(stakes, 0, true)
    }

    /// The same with RocksDB ledgers on disk.
    pub(super) fn on_disk(stakes: &[u64]) -> Self {
        Self::build(stakes, 0, false)
    }

    /// Validators with `stakes` and `candidates` more nodes with keys of their own, outside the
    /// genesis set (they follow the chain and may join it).
    pub(super) fn with_candidates(stakes: &[u64], candidates: usize) -> Self {
        Self::build(stakes, candidates, true)
    }

    fn build(stakes: &[u64], candidates: usize, in_memory: bool) -> Self {
        let mut nodes: Vec<(Keypair, Option<u64>)> = (0..stakes.len() + candidates)
            .map(|i| Keypair::from_secret(&[i as u8 + 1; 32]))
            .zip(
                stakes
                    .iter()
                    .copied()
                    .map(Some)
                    .chain(std::iter::repeat(None)),
            )
            .collect();
        nodes.sort_by_key(|(k, _)| k.public());
        let validators = nodes
            .iter()
            .filter_map(|(k, stake)| {
                stake.map(|stake| v1::ValidatorEntry {
                    hotkey: k.public().to_bytes().to_vec(),
                    coldkey: k.public().to_bytes().to_vec(),
                    stake,
                })
            })
            .collect();
        let keys: Vec<Keypair> = nodes.into_iter().map(|(k, _)| k).collect();
        let members = Members::new(v1::ValidatorSet { validators }).unwrap();
        let n = keys.len();
        let mut net = Self {
            dir: tempfile::tempdir().unwrap(),
            keys,
            members,
            engines: (0..n).map(|_| None).collect(),
            stores: (0..n).map(|_| None).collect(),
            memory: in_memory.then(|| (0..n).map(|_| Arc::new(MemStore::new())).collect()),
            budgets: (0..n)
                .map(|_| Arc::new(AtomicUsize::new(usize::MAX)))
                .collect(),
            sent: HashMap::new(),
            commits: BTreeMap::new(),
            censor: vec![false; n],
            deaths: 0,
            lost_writes: 0,
            equivocators: vec![false; n],
            plan: BTreeMap::new(),
            extra: Vec::new(),
            faults: Faults::default(),
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            seq: 0,
            now: 0,
        };
        for i in 0..n {
            net.boot(i);
        }
        net.push(RESEND_MS, Event::Resend);
        net
    }

    fn config(&self, i: usize) -> EngineConfig {
        EngineConfig {
            network_id: NET,
            genesis: self.members.clone(),
            timeouts: TimeoutConfig::default(),
            equivocate: self.equivocators[i],
        }
    }

    /// The store of live node `i`.
    pub(super) fn ledger(&self, i: usize) -> &dyn Store {
        self.stores[i]
            .as_ref()
            .expect("a live node")
            .ledger
            .as_ref()
    }

    /// Replaces node `i`'s data by an empty store (a wiped disk); the node must be down.
    pub(super) fn wipe(&mut self, i: usize) {
        match &mut self.memory {
            Some(memory) => memory[i] = Arc::new(MemStore::new()),
            None => std::fs::remove_dir_all(self.dir.path().join(format!("n{i}"))).unwrap(),
        }
    }

    /// Opens node `i` from its ledger (replaying its WAL) and starts its epoch.
    pub(super) fn boot(&mut self, i: usize) {
        let ledger: Arc<dyn Store> = match &self.memory {
            Some(memory) => memory[i].clone(),
            None => Arc::new(Ledger::open(&self.dir.path().join(format!("n{i}"))).unwrap()),
        };
        let chain = Chain::load(ledger.as_ref(), economy(&self.members), EMISSION).unwrap();
        let restored = restore(ledger.as_ref()).unwrap();
        let (engine, actions) =
            Engine::open(chain, Some(self.keys[i].clone()), self.config(i), restored).unwrap();
        self.stores[i] = Some(CrashingStore {
            ledger,
            budget: self.budgets[i].clone(),
        });
        self.engines[i] = Some(engine);
        self.perform(i, Ok(actions));
        let started = self.engines[i].as_mut().map(|e| e.start());
        if let Some(result) = started {
            self.perform(i, result);
        }
    }

    fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        let node = match &event {
            Event::Deliver(n, _) | Event::Timeout(n, _) | Event::Restart(n) => *n,
            Event::Resend => usize::MAX,
        };
        self.queue.push(Reverse((at, self.seq, node)));
        self.events.insert(self.seq, event);
    }

    fn send(&mut self, from: usize, to: usize, msg: v1::ConsensusMessage) {
        if self.faults.state == 0 {
            self.push(self.now + 1, Event::Deliver(to, msg));
            return;
        }
        // Across a partition a message waits for the heal (gossip keeps resending it).
        let base = self.faults.cut(from, to, self.now).unwrap_or(self.now);
        if self.faults.next() % 100 < self.faults.drop {
            return;
        }
        let copies = if self.faults.next() % 100 < self.faults.duplicate {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = 1 + self.faults.next() % self.faults.max_delay.max(1);
            self.push(base + delay, Event::Deliver(to, msg.clone()));
        }
    }

    /// The store of node `i` failed: the process died; it comes back after a while.
    fn die(&mut self, i: usize) {
        self.deaths += 1;
        if self.faults.power_loss
            && let Some(memory) = &self.memory
        {
            self.lost_writes += memory[i].lose_unsynced();
        }
        if self.faults.amnesia && self.memory.is_some() {
            self.wipe(i);
            self.equivocators[i] = true;
        }
        self.engines[i] = None;
        self.stores[i] = None;
        self.push(self.now + DOWN_MS, Event::Restart(i));
    }

    fn resend(&mut self) {
        for i in 0..self.keys.len() {
            // Catch up from any ledger that is ahead.
            while let Some(height) = self.engines[i].as_ref().map(Engine::height) {
                let (faults, now) = (self.faults, self.now);
                let found = self
                    .stores
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| faults.cut(i, *j, now).is_none())
                    .filter_map(|(_, s)| s.as_ref())
                    .find_map(|s| s.ledger.finalized(height).ok().flatten());
                let Some(finalized) = found else { break };
                let Some(engine) = self.engines[i].as_mut() else {
                    break;
                };
                let result = engine.apply_finalized(finalized);
                let progressed = result.as_ref().is_ok_and(|a| !a.is_empty());
                self.perform(i, result);
                if !progressed {
                    break;
                }
            }
            let messages = self.engines[i]
                .as_ref()
                .map(Engine::rebroadcast)
                .unwrap_or_default();
            for msg in messages {
                for to in 0..self.keys.len() {
                    if to != i {
                        self.send(i, to, msg.clone());
                    }
                }
            }
        }
        self.push(self.now + RESEND_MS, Event::Resend);
    }

    fn record_sent(&mut self, i: usize, msg: &v1::ConsensusMessage) {
        use v1::consensus_message::Body;
        let key = match &msg.body {
            Some(Body::Proposal(p)) => p
                .proposal
                .as_ref()
                .map(|p| (p.epoch, p.round, 0, p.encode_to_vec())),
            Some(Body::Vote(v)) => Some((v.epoch, v.round, v.vote_type as u8, v.encode_to_vec())),
            _ => None,
        };
        if let Some((epoch, round, kind, bytes)) = key.filter(|_| !self.equivocators[i]) {
            let previous = self
                .sent
                .entry((i, epoch, round, kind))
                .or_insert(bytes.clone());
            assert_eq!(
                *previous, bytes,
                "seed {}: node {i} signed two different messages for epoch {epoch} round {round} \
                 kind {kind}",
                self.faults.seed
            );
        }
    }

    fn perform(&mut self, i: usize, result: Result<Vec<Action>, EngineError>) {
        let actions = match result {
            Ok(actions) => actions,
            Err(_) => {
                self.die(i);
                return;
            }
        };
        let mut queue = std::collections::VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            let stored = self.stores[i].as_ref().map(|store| store.perform(&action));
            if !matches!(stored, Some(Ok(()))) {
                self.die(i);
                return;
            }
            match action {
                Action::Persist { .. }
                | Action::StoreEvidence(_)
                | Action::ForgetEvidence(_)
                | Action::Commit { .. } => {}
                Action::Broadcast(msg) => {
                    self.record_sent(i, &msg);
                    for to in 0..self.keys.len() {
                        if to != i {
                            self.send(i, to, msg.clone());
                        }
                    }
                }
                Action::Schedule { timeout, after_ms } => {
                    self.push(self.now + after_ms, Event::Timeout(i, timeout))
                }
                Action::NeedValue { epoch, round } => {
                    let reveals = if self.censor[i] || epoch == 0 {
                        Vec::new()
                    } else {
                        reveals(&self.keys, epoch - 1)
                    };
                    // Every funder transaction up to this epoch's nonce (a transfer unless planned
                    // otherwise) and the other transactions due; those already applied are skipped.
                    let mut transactions: Vec<v1::Transaction> = (0..=epoch)
                        .map(|n| {
                            self.plan
                                .get(&n)
                                .cloned()
                                .unwrap_or_else(|| transfer(&self.keys, n))
                        })
                        .collect();
                    transactions.extend(
                        self.extra
                            .iter()
                            .filter(|(from, _)| *from <= epoch)
                            .map(|(_, tx)| tx.clone()),
                    );
                    let Some(engine) = self.engines[i].as_mut() else {
                        return;
                    };
                    match engine.on_value(round, reveals, transactions) {
                        Ok(more) => queue.extend(more),
                        Err(_) => {
                            self.die(i);
                            return;
                        }
                    }
                }
                Action::Committed { epoch, hash, .. } => {
                    self.commits.insert((i, epoch), hash);
                    let Some(engine) = self.engines[i].as_mut() else {
                        return;
                    };
                    if let Err(e) = engine.app().state().check_invariants() {
                        panic!("node {i} after epoch {epoch}: {e}");
                    }
                    match engine.start() {
                        Ok(more) => queue.extend(more),
                        Err(_) => {
                            self.die(i);
                            return;
                        }
                    }
                }
                Action::Behind { .. } => {}
            }
        }
    }

    /// Runs until every live node has finalized `epochs` epochs or `limit_ms` of virtual time pass.
    pub(super) fn run(&mut self, epochs: u64, limit_ms: u64) {
        while let Some(Reverse((at, seq, node))) = self.queue.pop() {
            if at > limit_ms {
                break;
            }
            self.now = at;
            let Some(event) = self.events.remove(&seq) else {
                continue;
            };
            match event {
                Event::Resend => self.resend(),
                Event::Restart(i) => {
                    if self.engines[i].is_none() {
                        self.budgets[i].store(usize::MAX, Ordering::SeqCst);
                        self.boot(i);
                    }
                }
                Event::Deliver(to, msg) => {
                    let result = match self.engines[to].as_mut() {
                        Some(engine) => engine.on_message(msg).map(|(_, a)| a),
                        None => continue,
                    };
                    self.perform(to, result);
                }
                Event::Timeout(to, timeout) => {
                    let result = match self.engines[to].as_mut() {
                        Some(engine) => engine.on_timeout(timeout),
                        None => continue,
                    };
                    self.perform(to, result);
                }
            }
            let _ = node;
            if self.engines.iter().flatten().all(|e| e.height() >= epochs)
                && self.engines.iter().all(Option::is_some)
            {
                break;
            }
        }
    }

    /// Checks that no two nodes finalized different snapshots for one epoch.
    pub(super) fn assert_agreement(&self) {
        let mut by_epoch: BTreeMap<u64, [u8; 32]> = BTreeMap::new();
        for (&(node, epoch), hash) in &self.commits {
            let first = by_epoch.entry(epoch).or_insert(*hash);
            assert_eq!(
                first, hash,
                "seed {}: node {node} finalized another snapshot for epoch {epoch}",
                self.faults.seed
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::engine::{
        MAX_FUTURE_BYTES_PER_SIGNER, MAX_FUTURE_PER_SIGNER, MAX_ROUNDS_AHEAD, Rejected, Verdict,
    };
    use super::*;
    use crate::chain::verify::verify_ledger;
    use crate::consensus::evidence::Offence;
    use crate::consensus::votes::{Vote, VoteType};
    use crate::consensus::wire::wire_vote;

    /// The snapshot and certificate `ledger` finalized for `epoch`.
    fn finalized(ledger: &dyn Store, epoch: u64) -> (v1::Snapshot, v1::Certificate) {
        let finalized = ledger.finalized(epoch).unwrap().expect("finalized");
        (finalized.snapshot.unwrap(), finalized.certificate.unwrap())
    }

    fn check_ledgers(net: &Net, epochs: u64) {
        net.assert_agreement();
        let first = net.ledger(0);
        for (i, engine) in net.engines.iter().enumerate() {
            let engine = engine.as_ref().expect("every node is up");
            assert!(
                engine.height() >= epochs,
                "node {i} is at epoch {}",
                engine.height()
            );
            let ledger = net.ledger(i);
            assert!(
                verify_ledger(ledger, NET, &net.members, economy(&net.members), EMISSION).unwrap()
                    >= epochs
            );
            let first_engine = net.engines[0].as_ref().unwrap();
            if engine.height() == first_engine.height() {
                assert_eq!(
                    engine.app().state().root(),
                    first_engine.app().state().root(),
                    "node {i}'s economy"
                );
            }
            let funder = crate::state::Key(funder().public().to_bytes());
            assert!(
                engine.app().state().account(&funder).nonce >= epochs,
                "node {i}: every epoch carried a transfer"
            );
            engine
                .app()
                .state()
                .check_invariants()
                .expect("supply conserved");
            for epoch in 0..epochs {
                assert_eq!(
                    ledger.snapshot(epoch).unwrap(),
                    first.snapshot(epoch).unwrap(),
                    "node {i} epoch {epoch}"
                );
            }
        }
    }

    #[test]
    fn four_validators_finalize_identical_ledgers_in_round_zero() {
        let mut net = Net::new(&[10, 20, 30, 40]);
        net.run(8, 60_000);
        check_ledgers(&net, 8);
        let ledger = net.ledger(0);
        for epoch in 0..8 {
            let (snapshot, cert) = finalized(ledger, epoch);
            assert_eq!(cert.round, 0, "epoch {epoch} needed round {}", cert.round);
            let expected = if epoch == 0 { 0 } else { 4 };
            assert_eq!(
                snapshot.weights.len(),
                expected,
                "epoch {epoch} carries every vector"
            );
        }
    }

    #[test]
    fn a_censoring_proposer_is_voted_down_and_others_finalize() {
        let mut net = Net::new(&[1, 1, 1, 1]);
        net.censor[2] = true;
        net.run(10, 120_000);
        check_ledgers(&net, 10);
        let ledger = net.ledger(0);
        let censor = net.keys[2].public().to_bytes().to_vec();
        let mut voted_down = 0;
        for epoch in 1..10 {
            let (snapshot, cert) = finalized(ledger, epoch);
            let header = snapshot.header.unwrap();
            assert!(
                snapshot.weights.len() == 4
                    || cert.round >= crate::chain::snapshot::OPEN_WEIGHTS_ROUND,
                "epoch {epoch}: {} vectors finalized in round {}",
                snapshot.weights.len(),
                cert.round
            );
            assert!(
                header.proposer != censor
                    || cert.round >= crate::chain::snapshot::OPEN_WEIGHTS_ROUND,
                "epoch {epoch}: the censored snapshot won in round {}",
                cert.round
            );
            voted_down += u32::from(cert.round > 0);
        }
        assert!(
            voted_down > 0,
            "the censor proposed first in some epoch and lost it"
        );
    }

    #[test]
    fn crash_at_every_wal_write_recovers_without_double_signing() {
        // Node 0 dies at its k-th write (WAL append, commit or evidence), for every k over the
        // first epochs, restarts from disk after a pause, and must rejoin: same ledgers, and no
        // message it signs after the restart differs from one it signed before (checked on send).
        let mut crash_points = 0;
        for k in 0..500 {
            let mut net = Net::on_disk(&[1, 1, 1, 1]);
            net.budgets[0].store(k, Ordering::SeqCst);
            net.run(4, 60_000);
            check_ledgers(&net, 4);
            if net.deaths == 0 {
                // Node 0 made fewer than k writes in four epochs: every write index is covered.
                break;
            }
            crash_points += 1;
        }
        println!("node 0 crashed at each of its first {crash_points} writes and recovered");
        assert!(
            crash_points >= 30,
            "only {crash_points} write indexes crashed"
        );
    }

    #[test]
    fn seeded_delays_drops_duplicates_and_crashes_keep_agreement_and_liveness() {
        // Every seed: random delays, drops and duplicates, and one random validator crashing at a
        // random write and restarting from its WAL. `MESHMIND_ENGINE_SEEDS` runs more seeds; a
        // failing seed names itself and replays identically.
        let seeds = std::env::var("MESHMIND_ENGINE_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(100u64);
        let mut lost_writes = 0;
        for seed in 0..seeds {
            let mut net = Net::new(&[10 + seed % 5, 20, 15, 30]);
            net.faults = Faults::seeded(seed);
            let victim = (net.faults.next() % 4) as usize;
            let at = (net.faults.next() % 40) as usize;
            net.budgets[victim].store(at, Ordering::SeqCst);
            // Half the seeds crash by power failure (unsynced WAL writes lost), one in five loses
            // its whole data directory (amnesia); every third cuts a seeded set of nodes off for
            // 1.5 s.
            net.faults.power_loss = seed % 2 == 0;
            net.faults.amnesia = seed % 5 == 1;
            if seed % 3 == 0 {
                net.faults.partition = Some((1 + net.faults.next() % 14, 1_500));
            }
            net.run(5, 300_000);
            net.assert_agreement();
            lost_writes += net.lost_writes;
            for (i, engine) in net.engines.iter().enumerate() {
                let height = engine.as_ref().map_or(0, Engine::height);
                assert!(
                    height >= 5,
                    "seed {seed}: node {i} stuck at epoch {height} (victim {victim} at write {at}, \
                     faults {:?})",
                    net.faults
                );
            }
        }
        // Power failures really lost something, or the seeds above never tested it.
        assert!(
            seeds < 20 || lost_writes > 0,
            "no power failure lost an unsynced write over {seeds} seeds"
        );
    }

    #[test]
    fn wal_records_of_an_already_committed_epoch_are_ignored_on_restart() {
        // As if the process died after the ledger batch but before the WAL of the epoch was gone:
        // records of a committed epoch must not be replayed, and nothing is decided twice.
        let mut net = Net::on_disk(&[1, 1, 1, 1]);
        net.run(3, 60_000);
        let engine = net.engines[0].take().expect("up");
        let head = engine.head().expect("a head");
        let stale = v1::WalEntry {
            kind: Some(v1::wal_entry::Kind::Start(head.epoch)),
        };
        net.ledger(0).wal_append(head.epoch, &stale, true).unwrap();
        drop(engine);
        net.stores[0] = None;
        net.boot(0);
        let engine = net.engines[0].as_ref().expect("up");
        assert_eq!(
            engine.head(),
            Some(head),
            "the ledger, not the WAL, says what is decided"
        );
        assert_eq!(engine.height(), head.epoch + 1);
        net.run(6, 120_000);
        check_ledgers(&net, 6);
    }

    #[test]
    fn an_equivocating_validator_leaves_evidence_in_the_ledgers_and_finality_goes_on() {
        let mut net = Net::new(&[1, 1, 1, 1]);
        net.equivocators[3] = true;
        // Reboot node 3 with its misbehaviour on.
        net.engines[3] = None;
        net.stores[3] = None;
        net.boot(3);
        net.run(6, 120_000);
        check_ledgers(&net, 6);
        let accused = net.keys[3].public().to_bytes().to_vec();
        for i in 0..3 {
            let ledger = net.ledger(i);
            // What waits is stored, what was included is forgotten; all of it accuses node 3.
            let stored = ledger.evidence().unwrap();
            assert_eq!(
                stored.len(),
                net.engines[i].as_ref().unwrap().pending_evidence().len(),
                "node {i}"
            );
            let included = (0..6).flat_map(|e| ledger.snapshot(e).unwrap().unwrap().evidence);
            for item in stored.iter().cloned().chain(included) {
                let checked = super::super::evidence::check(&item, NET, &net.members).unwrap();
                assert_eq!(checked, accused, "only the equivocator is accused");
            }
        }
        // Evidence reaches the chain: some finalized snapshot carries it, one piece per offence.
        let ledger = net.ledger(0);
        let included: Vec<_> = (0..6)
            .flat_map(|e| ledger.snapshot(e).unwrap().unwrap().evidence)
            .collect();
        assert!(!included.is_empty(), "no snapshot includes the evidence");
        let offences: std::collections::BTreeSet<_> =
            included.iter().filter_map(Offence::of).collect();
        assert_eq!(offences.len(), included.len(), "one piece per offence");
        // The snapshot that carries it jails node 3 out of the set it hands over and burns a
        // share of the stake behind it; the others finalize on without it.
        let state = net.engines[0].as_ref().unwrap().app().state();
        let own = |i: usize| {
            let key = crate::state::Key(net.keys[i].public().to_bytes());
            state.own_stake(&key, &key)
        };
        let offender = crate::state::Key(net.keys[3].public().to_bytes());
        assert!(state.finalizers[&offender].jailed_until > state.epoch);
        let honest = (0..3).map(own).min().unwrap_or(0);
        assert!(own(3) < honest, "slashed: {} against {honest}", own(3));
        let head = ledger.head().unwrap().expect("a head").epoch;
        let handed = ledger
            .snapshot(head)
            .unwrap()
            .unwrap()
            .next_validators
            .unwrap();
        assert_eq!(handed.validators.len(), 3);
        assert!(handed.validators.iter().all(|v| v.hotkey != accused));
    }

    fn vote_message(
        members: &Members,
        key: &Keypair,
        height: u64,
        round: u32,
        n: u32,
    ) -> v1::ConsensusMessage {
        let mut value = [0u8; 32];
        value[..4].copy_from_slice(&n.to_be_bytes());
        let voter = members.index_of(key.public().as_bytes()).unwrap_or(0);
        let vote = Vote {
            height,
            round,
            vote_type: VoteType::Prevote,
            value: Some(value),
            voter,
        };
        let mut wire = wire_vote(NET, members, &vote).unwrap();
        wire.validator = key.public().to_bytes().to_vec();
        if members.index_of(key.public().as_bytes()).is_none() {
            // A key outside this set speaks for another (the next) set.
            wire.valset_hash = vec![9; 32];
        }
        v1::ConsensusMessage {
            body: Some(v1::consensus_message::Body::Vote(wire.signed(key))),
        }
    }

    /// The unbounded future buffer and per-round spam: messages for later heights are held only
    /// from members with good signatures, within a byte bound per signer; rounds far ahead are
    /// dropped unlogged; a proposal from anyone but the round's proposer is refused unhashed.
    #[test]
    fn later_heights_and_far_rounds_cannot_fill_memory_or_the_log() {
        let mut net = Net::new(&[1, 1, 1, 1]);
        let member = net.keys[3].clone();
        let members = net.members.clone();
        let engine = net.engines[0].as_mut().unwrap();
        // Keys outside the set (maybe in the next one): not relayed, not held against the relay,
        // and all of them together held to one signer's share.
        for n in 0..1_000u32 {
            let stranger = Keypair::from_secret(blake3::hash(&n.to_be_bytes()).as_bytes());
            let msg = vote_message(&members, &stranger, 1, 0, n);
            let (verdict, _) = engine.check_message(msg).unwrap().unwrap();
            assert_eq!(verdict, Verdict::Ignore);
        }
        assert_eq!(engine.held_for_later().0, MAX_FUTURE_PER_SIGNER);
        // A member's bad signature is its sender's fault.
        let mut forged = vote_message(&members, &member, 1, 0, 7);
        if let Some(v1::consensus_message::Body::Vote(v)) = &mut forged.body {
            v.signature[0] ^= 1;
        }
        assert!(matches!(
            engine.check_message(forged),
            Err(Rejected::Signature(_))
        ));
        assert_eq!(engine.held_for_later().0, MAX_FUTURE_PER_SIGNER);
        // A member signing ever more votes for the next heights is held to its share.
        for n in 0..10_000u32 {
            let height = 1 + u64::from(n % 2);
            let msg = vote_message(&members, &member, height, n / 2, n);
            engine.check_message(msg).unwrap().unwrap();
        }
        let (count, bytes) = engine.held_for_later();
        assert_eq!(
            count,
            2 * MAX_FUTURE_PER_SIGNER,
            "one share for the strangers, one for the member, and no more"
        );
        assert!(bytes <= 2 * MAX_FUTURE_BYTES_PER_SIGNER, "{bytes} bytes");
        // Another member's messages still find room.
        let other = net.keys[2].clone();
        engine
            .check_message(vote_message(&members, &other, 1, 0, 1))
            .unwrap()
            .unwrap();
        assert_eq!(engine.held_for_later().0, 2 * MAX_FUTURE_PER_SIGNER + 1);
        // Far rounds of this height are dropped before any check or log entry.
        let (verdict, actions) = engine
            .check_message(vote_message(&members, &member, 0, MAX_ROUNDS_AHEAD + 1, 1))
            .unwrap()
            .unwrap();
        assert_eq!(verdict, Verdict::Ignore);
        assert!(actions.is_empty(), "{actions:?}");
        // A member that is not round 0's proposer cannot propose in it.
        let proposer = net.members.set().proposer(0, 0);
        let other = (0..4).find(|&i| i != proposer).unwrap();
        let key = net
            .keys
            .iter()
            .find(|k| net.members.index_of(k.public().as_bytes()) == Some(other))
            .unwrap()
            .clone();
        // Round 0's real proposal, on its way to the others, re-signed by another member.
        let mut msg = net
            .events
            .values()
            .find_map(|event| match event {
                Event::Deliver(_, m)
                    if matches!(m.body, Some(v1::consensus_message::Body::Proposal(_))) =>
                {
                    Some(m.clone())
                }
                _ => None,
            })
            .expect("round 0's proposal on its way");
        if let Some(v1::consensus_message::Body::Proposal(value)) = &mut msg.body {
            let proposal = value.proposal.take().expect("a proposal");
            value.proposal = Some(
                v1::Proposal {
                    proposer: key.public().to_bytes().to_vec(),
                    ..proposal
                }
                .signed(&key),
            );
        }
        let refused = net.engines[0].as_mut().unwrap().check_message(msg);
        assert!(
            matches!(refused, Err(Rejected::NotTheProposer)),
            "{refused:?}"
        );
    }

    /// Oversized snapshots: reveals of 65,536 entries from every validator are left out of a
    /// snapshot (the subnet has at most `max_uids` UIDs), a snapshot carrying them is refused,
    /// and what is built fits in one proposal.
    #[test]
    fn oversized_reveals_cannot_make_a_snapshot_undeliverable() {
        use crate::chain::snapshot::{Expect, MAX_SNAPSHOT_BYTES, build, check};
        let net = Net::new(&[1, 1, 1, 1]);
        let mut state = economy(&net.members);
        state.end_epoch(&[], EMISSION);
        let expect = Expect {
            network_id: NET,
            epoch: 1,
            parent_hash: [0; 32],
            members: &net.members,
            state: &state,
            emission: EMISSION,
        };
        let all: Vec<(u32, u16)> = (0..65_536u32).map(|uid| (uid, 1)).collect();
        let big: Vec<v1::WeightReveal> = net
            .keys
            .iter()
            .map(|k| commit(k, NET, 1, 0, &all, [1; 32]).1)
            .collect();
        let built = build(
            &expect,
            &net.keys[0].public(),
            big.clone(),
            Vec::new(),
            Vec::new(),
        );
        assert!(built.weights.is_empty(), "oversized reveals left out");
        assert!(built.encoded_len() <= MAX_SNAPSHOT_BYTES);
        let mut stuffed = built.clone();
        stuffed.weights = big;
        stuffed
            .weights
            .sort_by(|a, b| a.validator.cmp(&b.validator));
        let refused = check(&stuffed, &expect, 9).expect_err("refused");
        assert!(
            refused.to_string().contains("bytes") || refused.to_string().contains("UIDs"),
            "{refused}"
        );
    }

    /// The evidence halt: a validator signing 1,100 different prevotes in one round makes one
    /// piece of evidence (not 1,100), its later votes are not logged, the evidence is included
    /// once and forgotten, and finality goes on.
    #[test]
    fn a_flood_of_conflicting_votes_is_one_offence_and_finality_goes_on() {
        let mut net = Net::new(&[1, 1, 1, 1]);
        let byzantine = net.keys[3].clone();
        let voter = net.members.index_of(byzantine.public().as_bytes()).unwrap();
        let flood: Vec<v1::ConsensusMessage> = (0..1_100u32)
            .map(|n| {
                let mut value = [0u8; 32];
                value[..4].copy_from_slice(&n.to_be_bytes());
                let vote = Vote {
                    height: 0,
                    round: 0,
                    vote_type: VoteType::Prevote,
                    value: Some(value),
                    voter,
                };
                let wire = wire_vote(NET, &net.members, &vote)
                    .unwrap()
                    .signed(&byzantine);
                v1::ConsensusMessage {
                    body: Some(v1::consensus_message::Body::Vote(wire)),
                }
            })
            .collect();
        // Straight into node 0's engine: count what the flood makes it write.
        let (mut logged, mut stored) = (0, 0);
        for msg in flood.clone() {
            let engine = net.engines[0].as_mut().unwrap();
            let (_, actions) = engine.on_message(msg).unwrap();
            for action in &actions {
                match action {
                    Action::Persist { .. } => logged += 1,
                    Action::StoreEvidence(_) => stored += 1,
                    _ => {}
                }
            }
            net.perform(0, Ok(actions));
        }
        assert_eq!(stored, 1, "one offence, one piece of evidence");
        assert!(logged <= 2, "{logged} flood votes logged");
        // And through the network to the others.
        for msg in flood {
            for to in 1..3 {
                net.push(1, Event::Deliver(to, msg.clone()));
            }
        }
        net.run(4, 120_000);
        check_ledgers(&net, 4);
        for i in 0..4 {
            let ledger = net.ledger(i);
            let included: Vec<_> = (0..4)
                .flat_map(|e| ledger.snapshot(e).unwrap().unwrap().evidence)
                .collect();
            assert_eq!(included.len(), 1, "node {i}: the offence is included once");
            assert!(
                ledger.evidence().unwrap().is_empty(),
                "node {i}: forgotten once included"
            );
        }
        // A restart does not bring it back.
        net.engines[0] = None;
        net.stores[0] = None;
        net.boot(0);
        assert!(
            net.engines[0]
                .as_ref()
                .unwrap()
                .pending_evidence()
                .is_empty()
        );
    }

    #[test]
    fn own_signatures_are_persisted_synced_before_they_are_sent() {
        // One validator holding all the stake decides alone: its actions, in order, must write
        // every own proposal and vote to the log (synced) before broadcasting it, and store the
        // snapshot before announcing the commit. The engine itself touches no storage.
        let key = Keypair::from_secret(&[9; 32]);
        let members = Members::new(v1::ValidatorSet {
            validators: vec![v1::ValidatorEntry {
                hotkey: key.public().to_bytes().to_vec(),
                coldkey: key.public().to_bytes().to_vec(),
                stake: 1,
            }],
        })
        .unwrap();
        let config = EngineConfig {
            network_id: NET,
            genesis: members.clone(),
            timeouts: TimeoutConfig::default(),
            equivocate: false,
        };
        let chain = Chain::new(economy(&members), EMISSION);
        let (mut engine, replayed) =
            Engine::open(chain, Some(key), config, Default::default()).unwrap();
        assert!(replayed.is_empty(), "nothing to replay from an empty log");
        let mut actions = engine.start().unwrap();
        let round = actions.iter().find_map(|a| match a {
            Action::NeedValue { round, .. } => Some(*round),
            _ => None,
        });
        actions.extend(
            engine
                .on_value(round.expect("asked for a value"), Vec::new(), Vec::new())
                .unwrap(),
        );
        let mut persisted: Vec<v1::wal_entry::Kind> = Vec::new();
        let (mut sent, mut committed) = (0, false);
        for action in &actions {
            match action {
                Action::Persist { entry, sync, .. } => {
                    let kind = entry.kind.clone().expect("a record");
                    let own = matches!(
                        kind,
                        v1::wal_entry::Kind::Vote(_) | v1::wal_entry::Kind::Proposal(_)
                    );
                    assert!(*sync || !own || committed, "own signature logged unsynced");
                    persisted.push(kind);
                }
                Action::Broadcast(msg) => {
                    use v1::consensus_message::Body;
                    let written = match &msg.body {
                        Some(Body::Vote(vote)) => persisted
                            .contains(&v1::wal_entry::Kind::Vote(vote.clone())),
                        Some(Body::Proposal(value)) => persisted.iter().any(|k| {
                            matches!(k, v1::wal_entry::Kind::Proposal(p) if p.value.as_ref() == Some(value))
                        }),
                        _ => true,
                    };
                    assert!(written, "sent before it was logged: {msg:?}");
                    sent += 1;
                }
                Action::Commit { .. } => committed = true,
                Action::Committed { epoch, .. } => {
                    assert!(committed, "epoch {epoch} announced before it was stored");
                }
                _ => {}
            }
        }
        assert!(
            committed,
            "one validator with all the stake decides at once"
        );
        assert!(sent >= 3, "a proposal, a prevote and a precommit were sent");
        assert_eq!(engine.height(), 1);
    }

    /// `kind` signed by `signer` with `nonce`.
    fn signed_tx(signer: &Keypair, nonce: u64, kind: v1::transaction::Kind) -> v1::Transaction {
        crate::state::signed_tx(NET, signer, nonce, kind)
    }

    /// Whether the set `snapshot` hands over holds `key`.
    fn hands_over_to(snapshot: &v1::Snapshot, key: &Keypair) -> bool {
        let key = key.public().to_bytes();
        snapshot
            .next_validators
            .as_ref()
            .is_some_and(|set| set.validators.iter().any(|v| v.hotkey == key))
    }

    /// Sets that change under faults: an outsider registers, stakes and declares itself a
    /// finalizer and joins, a genesis validator undeclares and leaves, an equivocator is jailed
    /// out and slashed; with seeded delays, drops, duplicates and a crash, every node agrees,
    /// none double signs, all go on finalizing, and every ledger verifies across the
    /// hand-overs; a node wiped at the end catches up across them. `MESHMIND_ENGINE_SEEDS` runs
    /// more seeds.
    #[test]
    fn sets_that_change_by_joins_leaves_and_jail_keep_agreement_and_liveness() {
        let seeds = std::env::var("MESHMIND_ENGINE_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20u64);
        for seed in 0..seeds {
            let mut net = Net::with_candidates(&[10, 20, 15, 30], 1);
            let member =
                |net: &Net, i: usize| net.members.index_of(net.keys[i].public().as_bytes());
            let candidate = (0..5)
                .find(|&i| member(&net, i).is_none())
                .expect("one outsider");
            let others: Vec<usize> = (0..5).filter(|&i| i != candidate).collect();
            let (leaver, cheat) = (others[0], others[1]);
            let outsider = net.keys[candidate].clone();
            net.plan.insert(
                1,
                signed_tx(
                    &funder(),
                    1,
                    v1::transaction::Kind::Register(
                        v1::Register {
                            subnet: 1,
                            max_burn: 1_000_000,
                            ..Default::default()
                        }
                        .consented(
                            &outsider,
                            &NET.to_vec(),
                            &funder().public(),
                        ),
                    ),
                ),
            );
            net.plan.insert(
                2,
                signed_tx(
                    &funder(),
                    2,
                    v1::transaction::Kind::AddStake(v1::AddStake {
                        hotkey: outsider.public().to_bytes().to_vec(),
                        subnet: 1,
                        amount: 600_000,
                    }),
                ),
            );
            net.plan.insert(
                3,
                signed_tx(
                    &funder(),
                    3,
                    v1::transaction::Kind::DeclareFinalizer(
                        v1::DeclareFinalizer::default().consented(
                            &outsider,
                            &NET.to_vec(),
                            &funder().public(),
                        ),
                    ),
                ),
            );
            let leaving = net.keys[leaver].clone();
            net.plan.insert(
                4,
                signed_tx(
                    &funder(),
                    4,
                    v1::transaction::Kind::Transfer(v1::Transfer {
                        to: leaving.public().to_bytes().to_vec(),
                        amount: 1_000,
                    }),
                ),
            );
            net.extra.push((
                6,
                signed_tx(
                    &leaving,
                    0,
                    v1::transaction::Kind::UndeclareFinalizer(v1::UndeclareFinalizer {
                        hotkey: leaving.public().to_bytes().to_vec(),
                    }),
                ),
            ));
            net.equivocators[cheat] = true;
            net.engines[cheat] = None;
            net.stores[cheat] = None;
            net.boot(cheat);
            net.faults = Faults::seeded(seed);
            let victim = (net.faults.next() % 5) as usize;
            let at = (net.faults.next() % 40) as usize;
            net.budgets[victim].store(at, Ordering::SeqCst);
            net.faults.power_loss = seed % 2 == 0;
            net.run(14, 900_000);
            net.assert_agreement();
            for (i, engine) in net.engines.iter().enumerate() {
                let height = engine.as_ref().map_or(0, Engine::height);
                assert!(
                    height >= 14,
                    "seed {seed}: node {i} stuck at epoch {height}"
                );
            }
            let head = |net: &Net| net.engines[candidate].as_ref().expect("up").height();
            let ledger = net.ledger(candidate);
            let handed: Vec<v1::Snapshot> = (0..head(&net))
                .map(|e| ledger.snapshot(e).unwrap().expect("finalized"))
                .collect();
            let joined = handed
                .iter()
                .position(|s| hands_over_to(s, &outsider))
                .unwrap_or_else(|| panic!("seed {seed}: the outsider never joined"));
            let left = handed
                .iter()
                .position(|s| !hands_over_to(s, &leaving))
                .unwrap_or_else(|| panic!("seed {seed}: the leaver never left"));
            let last = handed.last().expect("a head");
            assert!(
                hands_over_to(last, &outsider) && !hands_over_to(last, &leaving),
                "seed {seed}: joined at {joined}, left at {left}"
            );
            assert!(
                !hands_over_to(last, &net.keys[cheat]),
                "seed {seed}: the equivocator is jailed out"
            );
            assert!(
                net.engines[candidate].as_ref().expect("up").is_validator(),
                "seed {seed}: the outsider votes"
            );
            for i in 0..5 {
                let verified = verify_ledger(
                    net.ledger(i),
                    NET,
                    &net.members,
                    economy(&net.members),
                    EMISSION,
                )
                .unwrap_or_else(|e| panic!("seed {seed}: node {i}'s ledger: {e}"));
                assert!(verified >= 14, "seed {seed}: node {i} verified {verified}");
            }
            // A certificate by a set the chain did not name at its epoch is refused, and the
            // refusal names the epoch: here the genesis set signs an epoch the outsider's set
            // decided.
            if seed == 0 {
                let at = joined as u64 + 1;
                let forged = MemStore::new();
                for epoch in 0..=at {
                    let mut finalized = ledger.finalized(epoch).unwrap().expect("finalized");
                    if epoch == at {
                        let snapshot = finalized.snapshot.as_ref().expect("a snapshot");
                        let value = crate::chain::snapshot::value_id(snapshot);
                        let votes: Vec<v1::Vote> = (0..5)
                            .filter_map(|i| member(&net, i).map(|voter| (i, voter)))
                            .map(|(i, voter)| {
                                let vote = Vote {
                                    height: at,
                                    round: 0,
                                    vote_type: VoteType::Precommit,
                                    value: Some(value),
                                    voter,
                                };
                                wire_vote(NET, &net.members, &vote)
                                    .expect("a vote")
                                    .signed(&net.keys[i])
                            })
                            .collect();
                        finalized.certificate = super::super::certificate::build(&votes);
                    }
                    forged.commit(&finalized, &[]).unwrap();
                }
                let refused =
                    verify_ledger(&forged, NET, &net.members, economy(&net.members), EMISSION)
                        .expect_err("a certificate of a set never named there");
                assert!(
                    matches!(refused, crate::chain::verify::VerifyError::Epoch { epoch, .. } if epoch == at),
                    "{refused}"
                );
            }
            // A node wiped now catches up across every hand-over since genesis.
            if seed < 3 {
                let wiped = others[2];
                net.engines[wiped] = None;
                net.stores[wiped] = None;
                net.sent.retain(|&(node, ..), _| node != wiped);
                net.wipe(wiped);
                net.boot(wiped);
                net.run(18, 1_500_000);
                net.assert_agreement();
                let verified = verify_ledger(
                    net.ledger(wiped),
                    NET,
                    &net.members,
                    economy(&net.members),
                    EMISSION,
                )
                .unwrap_or_else(|e| panic!("seed {seed}: the wiped node's ledger: {e}"));
                assert!(
                    verified >= 18,
                    "seed {seed}: the wiped node verified {verified}"
                );
            }
        }
    }

    #[test]
    fn a_wiped_node_catches_up_from_its_peers() {
        let mut net = Net::new(&[1, 1, 1, 1]);
        net.run(3, 60_000);
        // Wipe node 3: its ledger directory is replaced by an empty one. A wiped disk forgets what
        // it signed (as in any BFT system), so its earlier messages are forgotten here too; one
        // validator of four cannot break agreement, which the check below asserts.
        net.engines[3] = None;
        net.stores[3] = None;
        net.sent.retain(|&(node, ..), _| node != 3);
        net.wipe(3);
        net.boot(3);
        net.run(6, 120_000);
        check_ledgers(&net, 6);
    }
}
