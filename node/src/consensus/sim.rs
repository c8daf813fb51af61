//! Seeded, deterministic simulation of many consensus cores over a faulty network.
//!
//! Every node runs the real [`Core`]; the network delays, duplicates and reorders messages, and
//! partitions that later heal hold messages back. Time is simulated. After every step the checks
//! run: no two nodes decide differently for a height (agreement), and no node emits two different
//! votes for one (height, round, type). Liveness: once the network heals, every height decides.

use std::collections::{BTreeMap, BinaryHeap, HashMap};

use super::core::{Core, Input, Output, Proposal, Timeout, TimeoutConfig};
use super::valset::ValidatorSet;
use super::votes::{ValueId, Vote, VoteType};

/// A small deterministic random source (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Message {
    Proposal(Proposal),
    Vote(Vote),
}

impl Message {
    fn height(&self) -> u64 {
        match self {
            Message::Proposal(p) => p.height,
            Message::Vote(v) => v.height,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Deliver { to: usize, message: Message },
    Timer { node: usize, timeout: Timeout },
}

/// An event at a time; ordered for a min-heap by (time, sequence).
#[derive(Debug, PartialEq, Eq)]
struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Faults of one simulation.
#[derive(Debug, Clone, Copy)]
pub(super) struct Faults {
    /// Largest extra delay of a message, in ms.
    pub max_delay_ms: u64,
    /// Percentage of messages delivered twice.
    pub duplicate_percent: u64,
    /// The nodes of a bit mask (bit i: node i) are cut off from the rest until `heal_at_ms`
    /// (messages across wait).
    pub partition: Option<(u64, u64)>,
    /// Whether agreement must hold (byzantine stake under 1/3); otherwise conflicts are recorded.
    pub expect_safety: bool,
    /// The last this many nodes are byzantine: they send one value to even-numbered peers and a
    /// conflicting one to odd-numbered peers, for both proposals and votes, and both to node 0 (as
    /// gossip relaying would), so equivocation can be seen.
    pub byzantine: usize,
    /// What the byzantine nodes do.
    pub attack: Attack,
}

/// The misbehaviour of the byzantine nodes of a simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attack {
    /// Send conflicting proposals and votes to the two halves (see [`Faults::byzantine`]).
    Equivocate,
    /// Forget everything (locks, votes, round) at a third of their timeouts and start the height afresh, so
    /// they vote against their own earlier locks; they tell everyone the same thing.
    Amnesia,
    /// Send their own proposals and votes only to one half of the peers and nothing to the rest.
    Withhold,
}

struct Node {
    core: Core,
    /// Messages already seen, so each is relayed once.
    seen: std::collections::HashSet<(u64, u32, u8, usize, Option<ValueId>)>,
    byzantine: bool,
    evidence: std::collections::BTreeSet<usize>,
    decided: BTreeMap<u64, ValueId>,
    future: Vec<Message>,
    signed: HashMap<(u64, u32, VoteType), Option<ValueId>>,
}

/// The outcome of a run.
#[derive(Debug)]
pub(super) struct Report {
    /// Per height, the value each node decided.
    pub decisions: BTreeMap<u64, Vec<Option<ValueId>>>,
    /// Simulated time when the run ended.
    pub ended_at_ms: u64,
    /// Validators that correct nodes hold equivocation evidence against.
    pub evidence: std::collections::BTreeSet<usize>,
    /// Heights at which correct nodes decided differently (only when safety was not expected).
    pub conflicts: std::collections::BTreeSet<u64>,
}

struct Sim {
    seed: u64,
    rng: Rng,
    set: ValidatorSet,
    faults: Faults,
    nodes: Vec<Node>,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    now: u64,
    heights: u64,
    conflicts: std::collections::BTreeSet<u64>,
}

fn value_for(height: u64, round: u32, proposer: usize) -> ValueId {
    let mut value = [0u8; 32];
    value[..8].copy_from_slice(&height.to_be_bytes());
    value[8..12].copy_from_slice(&round.to_be_bytes());
    value[12] = proposer as u8;
    value
}

impl Sim {
    fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
    }

    /// When a message from `a` to `b` may cross, if a partition holds it back. Byzantine nodes sit
    /// on both sides of every partition.
    fn cut(&self, a: usize, b: usize) -> Option<u64> {
        let (side, heal) = self.faults.partition?;
        if self.nodes[a].byzantine || self.nodes[b].byzantine {
            return None;
        }
        (on(side, a) != on(side, b) && self.now < heal).then_some(heal)
    }

    /// Whether a byzantine sender gives `to` the twin: the far side of the partition if there is
    /// one, else odd-numbered peers.
    fn gets_twin(&self, to: usize) -> bool {
        match self.faults.partition {
            Some((side, _)) => !on(side, to),
            None => to % 2 == 1,
        }
    }

    /// The conflicting twin a byzantine node sends to odd-numbered peers.
    fn twin(message: Message) -> Message {
        let flip = |mut value: ValueId| {
            value[31] ^= 0xff;
            value
        };
        match message {
            Message::Proposal(mut p) => {
                p.value = flip(p.value);
                Message::Proposal(p)
            }
            Message::Vote(mut v) => {
                v.value = Some(v.value.map_or([0xee; 32], flip));
                Message::Vote(v)
            }
        }
    }

    /// Forwards a received message unchanged to every other node.
    fn relay(&mut self, from: usize, message: Message) {
        for to in 0..self.nodes.len() {
            if to != from {
                let base = self.cut(from, to).unwrap_or(self.now);
                let at = base + 1 + self.rng.below(self.faults.max_delay_ms);
                self.push(at, Event::Deliver { to, message });
            }
        }
    }

    fn broadcast(&mut self, from: usize, message: Message) {
        let byzantine = self.nodes[from].byzantine;
        for to in 0..self.nodes.len() {
            if to == from {
                continue;
            }
            if byzantine && self.faults.attack == Attack::Withhold && self.gets_twin(to) {
                continue;
            }
            if byzantine
                && self.faults.attack == Attack::Equivocate
                && to == 0
                && self.faults.partition.is_none()
            {
                let twin = Self::twin(message);
                let at = self.now + 1 + self.rng.below(self.faults.max_delay_ms);
                self.push(at, Event::Deliver { to, message: twin });
            }
            let message =
                if byzantine && self.faults.attack == Attack::Equivocate && self.gets_twin(to) {
                    Self::twin(message)
                } else {
                    message
                };
            let base = self.cut(from, to).unwrap_or(self.now);
            let delay = 1 + self.rng.below(self.faults.max_delay_ms);
            self.push(base + delay, Event::Deliver { to, message });
            if self.rng.chance(self.faults.duplicate_percent) {
                let again = 1 + self.rng.below(self.faults.max_delay_ms * 2);
                self.push(base + again, Event::Deliver { to, message });
            }
        }
    }

    fn apply(&mut self, node: usize, input: Input) {
        let outputs = self.nodes[node].core.handle(input);
        for output in outputs {
            match output {
                Output::Propose(proposal) => self.broadcast(node, Message::Proposal(proposal)),
                Output::Vote(vote) => {
                    let key = (vote.height, vote.round, vote.vote_type);
                    if let Some(previous) = self.nodes[node].signed.insert(key, vote.value)
                        && !self.nodes[node].byzantine
                    {
                        assert_eq!(
                            previous, vote.value,
                            "seed {}: node {node} signed twice for {key:?}",
                            self.seed
                        );
                    }
                    self.broadcast(node, Message::Vote(vote));
                }
                Output::ScheduleTimeout { timeout, after_ms } => {
                    self.push(self.now + after_ms, Event::Timer { node, timeout });
                }
                Output::GetValue { round } => {
                    let height = self.nodes[node].core.height();
                    let value = value_for(height, round, node);
                    self.apply(node, Input::Value { round, value });
                }
                Output::Decided {
                    value, precommits, ..
                } => {
                    let height = self.nodes[node].core.height();
                    let power: u128 = precommits.iter().map(|v| self.set.power(v.voter)).sum();
                    assert!(
                        self.set.is_quorum(power),
                        "seed {}: node {node} decided without a quorum certificate",
                        self.seed
                    );
                    self.nodes[node].decided.insert(height, value);
                    self.check_agreement(height);
                    if height + 1 < self.heights {
                        self.next_height(node, height + 1);
                    }
                }
                Output::DuplicateVote(first, _) => {
                    self.nodes[node].evidence.insert(first.voter);
                }
                Output::DuplicateProposal(first, _) => {
                    self.nodes[node].evidence.insert(first.proposer);
                }
            }
        }
    }

    /// Asserts that correct nodes agree on `height`, unless the faults exceed what BFT tolerates;
    /// then a disagreement is recorded for the caller to check against the evidence.
    fn check_agreement(&mut self, height: u64) {
        let mut decided = self
            .nodes
            .iter()
            .filter(|n| !n.byzantine)
            .filter_map(|n| n.decided.get(&height));
        if let Some(first) = decided.next()
            && decided.any(|other| other != first)
        {
            assert!(
                !self.faults.expect_safety,
                "seed {}: two nodes decided differently at height {height} (replay: simulate({}, ..))",
                self.seed, self.seed
            );
            self.conflicts.insert(height);
        }
    }

    /// Gives `node` a fresh core at `height` (no locks, no votes, round 0) and starts it.
    fn start_afresh(&mut self, node: usize, height: u64) {
        self.nodes[node].core = Core::new(
            Some(node),
            height,
            self.set.clone(),
            TimeoutConfig::default(),
        );
        self.apply(node, Input::Start);
    }

    fn next_height(&mut self, node: usize, height: u64) {
        self.start_afresh(node, height);
        let future = std::mem::take(&mut self.nodes[node].future);
        for message in future {
            self.process(node, message);
        }
    }

    fn deliver(&mut self, to: usize, message: Message) {
        // Gossip: a correct node relays every message the first time it sees it.
        let key = match message {
            Message::Proposal(p) => (p.height, p.round, 0, p.proposer, Some(p.value)),
            Message::Vote(v) => (v.height, v.round, 1 + v.vote_type as u8, v.voter, v.value),
        };
        if !self.nodes[to].seen.insert(key) {
            return;
        }
        if !self.nodes[to].byzantine {
            self.relay(to, message);
        }
        self.process(to, message);
    }

    /// Hands a message to the node's core, or keeps it until the node reaches its height.
    fn process(&mut self, to: usize, message: Message) {
        let height = self.nodes[to].core.height();
        if message.height() > height {
            self.nodes[to].future.push(message);
            return;
        }
        if message.height() < height {
            return;
        }
        let input = match message {
            // Every proposed value is valid in this simulation.
            Message::Proposal(proposal) => Input::Proposal {
                proposal,
                valid: true,
            },
            Message::Vote(vote) => Input::Vote(vote),
        };
        self.apply(to, input);
    }

    fn run(mut self, limit_ms: u64) -> Report {
        for node in 0..self.nodes.len() {
            self.apply(node, Input::Start);
        }
        while let Some(Scheduled { at, event, .. }) = self.queue.pop() {
            if at > limit_ms {
                break;
            }
            self.now = at;
            match event {
                Event::Deliver { to, message } => self.deliver(to, message),
                Event::Timer { node, timeout } => {
                    let height = self.nodes[node].core.height();
                    if timeout.height != height {
                        continue;
                    }
                    if self.nodes[node].byzantine
                        && self.faults.attack == Attack::Amnesia
                        && self.rng.chance(30)
                    {
                        // Forgets its locks and votes, and starts the height over.
                        self.start_afresh(node, height);
                    } else {
                        self.apply(node, Input::Timeout(timeout));
                    }
                }
            }
            if self
                .nodes
                .iter()
                .filter(|n| !n.byzantine)
                .all(|n| n.decided.len() as u64 == self.heights)
            {
                break;
            }
        }
        let mut decisions = BTreeMap::new();
        for height in 0..self.heights {
            decisions.insert(
                height,
                self.nodes
                    .iter()
                    .filter(|n| !n.byzantine)
                    .map(|n| n.decided.get(&height).copied())
                    .collect(),
            );
        }
        Report {
            decisions,
            ended_at_ms: self.now,
            evidence: self
                .nodes
                .iter()
                .filter(|n| !n.byzantine)
                .flat_map(|n| n.evidence.iter().copied())
                .collect(),
            conflicts: self.conflicts.clone(),
        }
    }
}

/// Whether node `i` is in the node set `mask`.
fn on(mask: u64, i: usize) -> bool {
    i < 64 && mask & (1 << i) != 0
}

/// The node set `0..k`, as a mask.
#[cfg(test)]
fn first(k: usize) -> u64 {
    (1u64 << k) - 1
}

/// Runs `heights` heights among validators of `powers` under `faults`, from `seed`.
pub(super) fn simulate(seed: u64, powers: Vec<u64>, heights: u64, faults: Faults) -> Report {
    let set = ValidatorSet::new(powers);
    let n = set.len();
    let nodes = (0..n)
        .map(|i| Node {
            core: Core::new(Some(i), 0, set.clone(), TimeoutConfig::default()),
            seen: std::collections::HashSet::new(),
            byzantine: i + faults.byzantine >= n,
            evidence: std::collections::BTreeSet::new(),
            decided: BTreeMap::new(),
            future: Vec::new(),
            signed: HashMap::new(),
        })
        .collect();
    let sim = Sim {
        seed,
        rng: Rng(seed),
        set,
        faults,
        nodes,
        queue: BinaryHeap::new(),
        seq: 0,
        now: 0,
        heights,
        conflicts: std::collections::BTreeSet::new(),
    };
    sim.run(600_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many seeds a run covers; `MESHMIND_SIM_SEEDS` raises it.
    fn seeds() -> u64 {
        std::env::var("MESHMIND_SIM_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(500)
    }

    fn assert_all_decided(seed: u64, report: &Report) {
        for (height, values) in &report.decisions {
            assert!(
                values.iter().all(|v| v.is_some()),
                "seed {seed}: height {height} not decided by every node: {values:?} \
                 (replay: simulate({seed}, ..))"
            );
        }
    }

    #[test]
    fn agreement_and_liveness_over_seeds_with_delays_duplicates_and_reordering() {
        for seed in 0..seeds() {
            let powers = vec![10 + seed % 7, 20, 15, 30 + seed % 11, 12];
            // Delays from far below to far above the timeouts, so many heights take several rounds;
            // every third seed also splits the set until 3 s.
            let faults = Faults {
                max_delay_ms: 1 + (seed * 37) % 1_500,
                duplicate_percent: 10,
                // Any proper, non-empty subset of the five (masks 1..=30), so some partitions
                // leave no side with a quorum.
                partition: (seed % 3 == 0).then_some((1 + (seed / 3) % 30, 3_000)),
                byzantine: 0,
                expect_safety: true,
                attack: Attack::Equivocate,
            };
            let report = simulate(seed, powers, 3, faults);
            assert_all_decided(seed, &report);
        }
    }

    #[test]
    fn a_partition_that_heals_halts_then_resumes_finality() {
        /// Every way to split four nodes two and two.
        const PAIRS: [u64; 6] = [0b0011, 0b0101, 0b1001, 0b0110, 0b1010, 0b1100];
        for seed in 0..seeds() / 5 {
            // 2/2 split of equal stake: neither side has a quorum until the heal at 5 s.
            let faults = Faults {
                max_delay_ms: 30,
                duplicate_percent: 5,
                partition: Some((PAIRS[seed as usize % PAIRS.len()], 5_000)),
                byzantine: 0,
                expect_safety: true,
                attack: Attack::Equivocate,
            };
            let report = simulate(seed, vec![1, 1, 1, 1], 2, faults);
            assert_all_decided(seed, &report);
            assert!(
                report.ended_at_ms >= 5_000,
                "seed {seed}: decided during the partition"
            );
        }
    }

    #[test]
    fn byzantine_equivocators_under_one_third_cannot_break_agreement() {
        for seed in 0..seeds() {
            // Seven validators of equal stake, two byzantine (2/7 < 1/3).
            let faults = Faults {
                max_delay_ms: 1 + (seed * 53) % 900,
                duplicate_percent: 5,
                partition: (seed % 2 == 0).then_some((first(3), 2_000)),
                byzantine: 2,
                expect_safety: true,
                attack: Attack::Equivocate,
            };
            let report = simulate(seed, vec![1; 7], 3, faults);
            assert_all_decided(seed, &report);
        }
    }

    #[test]
    fn amnesic_and_withholding_byzantine_nodes_under_one_third_cannot_break_agreement() {
        for seed in 0..seeds() {
            // Seven validators of equal stake, two byzantine (2/7 < 1/3), every correct node set
            // possibly cut off for 2 s.
            let attack = if seed % 2 == 0 {
                Attack::Amnesia
            } else {
                Attack::Withhold
            };
            let faults = Faults {
                max_delay_ms: 1 + (seed * 41) % 900,
                duplicate_percent: 5,
                partition: (seed % 3 == 0).then_some((1 + (seed / 3) % 30, 2_000)),
                byzantine: 2,
                attack,
                expect_safety: true,
            };
            let report = simulate(seed, vec![1; 7], 3, faults);
            assert_all_decided(seed, &report);
        }
    }

    #[test]
    fn equivocation_is_detected() {
        let faults = Faults {
            max_delay_ms: 50,
            duplicate_percent: 0,
            partition: None,
            byzantine: 1,
            expect_safety: true,
            attack: Attack::Equivocate,
        };
        let report = simulate(7, vec![1; 4], 2, faults);
        assert_all_decided(7, &report);
        assert!(
            !report.evidence.is_empty(),
            "node 0 saw both twins and reported nothing"
        );
    }

    #[test]
    fn byzantine_stake_over_one_third_leaves_evidence_against_over_one_third() {
        let mut conflicting_runs = 0;
        for seed in 0..seeds() / 5 {
            // Seven validators, the last three byzantine with over 1/3 of the stake; the correct
            // ones split 2/2 for 4 s; the byzantine nodes talk to both sides and tell each a
            // different story. Stakes vary with the seed, and so do the proposers.
            let byzantine_power = 10 + seed % 7;
            let powers = vec![
                10 + seed % 3,
                10,
                10,
                10 + seed % 2,
                byzantine_power,
                byzantine_power,
                byzantine_power,
            ];
            let total: u64 = powers.iter().sum();
            let faults = Faults {
                max_delay_ms: 1 + seed % 40,
                duplicate_percent: 0,
                partition: Some((first(2), 4_000)),
                byzantine: 3,
                expect_safety: false,
                attack: Attack::Equivocate,
            };
            let report = simulate(seed, powers.clone(), 2, faults);
            if !report.conflicts.is_empty() {
                conflicting_runs += 1;
                let stake: u64 = report.evidence.iter().map(|&i| powers[i]).sum();
                assert!(
                    3 * stake > total,
                    "seed {seed}: conflicting decisions with evidence against only {:?}",
                    report.evidence
                );
            }
        }
        // The attack must actually work sometimes, or this test proves nothing.
        assert!(
            conflicting_runs > 0,
            "no run produced conflicting decisions"
        );
    }

    #[test]
    fn runs_replay_identically() {
        let faults = Faults {
            max_delay_ms: 80,
            duplicate_percent: 20,
            partition: Some((first(1), 2_000)),
            byzantine: 1,
            expect_safety: true,
            attack: Attack::Equivocate,
        };
        let a = simulate(42, vec![5, 7, 9, 11, 13], 3, faults);
        let b = simulate(42, vec![5, 7, 9, 11, 13], 3, faults);
        assert_eq!(a.decisions, b.decisions);
        assert_eq!(a.ended_at_ms, b.ended_at_ms);
    }
}
