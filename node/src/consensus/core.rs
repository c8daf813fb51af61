//! The Tendermint state machine for one height ("The latest gossip on BFT consensus", Algorithm 1).
//!
//! Pure: no clock, no I/O, no randomness. Each call to [`Core::handle`] applies one input and returns
//! what the driver must do, in order. The driver signs and persists every [`Output::Propose`] and
//! [`Output::Vote`] before it leaves the node.

use std::collections::{HashMap, HashSet};

use super::valset::{ValidatorIndex, ValidatorSet};
use super::votes::{Added, ValueId, Vote, VoteKeeper, VoteType};

/// A proposal of a value for (height, round).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    /// Height (epoch).
    pub height: u64,
    /// Round.
    pub round: u32,
    /// The proposed value's id.
    pub value: ValueId,
    /// The round of the proof of lock the proposer carries, if any.
    pub pol_round: Option<u32>,
    /// The proposer.
    pub proposer: ValidatorIndex,
}

/// Which step a timeout guards (ordered as a round runs them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimeoutStep {
    /// Waiting for a proposal.
    Propose,
    /// Waiting for prevotes to agree.
    Prevote,
    /// Waiting for precommits to agree.
    Precommit,
}

/// A timeout for (height, round, step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeout {
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Step.
    pub step: TimeoutStep,
}

/// Timeout lengths; each grows by `delta_ms` per round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutConfig {
    /// Propose step, round 0.
    pub propose_ms: u64,
    /// Prevote step, round 0.
    pub prevote_ms: u64,
    /// Precommit step, round 0.
    pub precommit_ms: u64,
    /// Added per round.
    pub delta_ms: u64,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            propose_ms: 300,
            prevote_ms: 150,
            precommit_ms: 150,
            delta_ms: 100,
        }
    }
}

/// What the core is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Begin the height at round 0.
    Start,
    /// A proposal, with whether its value passed validation.
    Proposal {
        /// The proposal.
        proposal: Proposal,
        /// Whether the proposed snapshot is valid.
        valid: bool,
    },
    /// A vote.
    Vote(Vote),
    /// A scheduled timeout fired.
    Timeout(Timeout),
    /// The value this node proposes, answering [`Output::GetValue`].
    Value {
        /// Round asked for.
        round: u32,
        /// The value's id.
        value: ValueId,
    },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Sign, persist and broadcast this proposal (with its value).
    Propose(Proposal),
    /// Sign, persist and broadcast this vote.
    Vote(Vote),
    /// Fire this timeout after the given time.
    ScheduleTimeout {
        /// Which timeout.
        timeout: Timeout,
        /// After how long.
        after_ms: u64,
    },
    /// Build a value to propose in this round and hand it back as [`Input::Value`].
    GetValue {
        /// Round.
        round: u32,
    },
    /// The height is decided.
    Decided {
        /// Round of the decision.
        round: u32,
        /// The decided value.
        value: ValueId,
        /// More than 2/3 of the stake's precommits for it: the certificate.
        precommits: Vec<Vote>,
    },
    /// A validator signed two different votes for one slot.
    DuplicateVote(Vote, Vote),
    /// A proposer signed two different proposals for one round.
    DuplicateProposal(Proposal, Proposal),
}

/// Where a round is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Waiting for the proposal.
    Propose,
    /// Prevoted.
    Prevote,
    /// Precommitted.
    Precommit,
}

/// The consensus state of one node for one height.
#[derive(Debug, Clone)]
pub struct Core {
    me: Option<ValidatorIndex>,
    height: u64,
    round: u32,
    step: Step,
    started: bool,
    locked: Option<(ValueId, u32)>,
    valid: Option<(ValueId, u32)>,
    votes: VoteKeeper,
    /// Proposals by round, first received first; a byzantine proposer may send several.
    proposals: HashMap<u32, Vec<(Proposal, bool)>>,
    decided: Option<ValueId>,
    timeouts: TimeoutConfig,
    proposed_in: HashSet<u32>,
    prevote_timeout_set: HashSet<u32>,
    precommit_timeout_set: HashSet<u32>,
    polka_seen: HashSet<u32>,
}

impl Core {
    /// A core for `height`, voting as `me` (or only following, if `None`).
    pub fn new(
        me: Option<ValidatorIndex>,
        height: u64,
        set: ValidatorSet,
        timeouts: TimeoutConfig,
    ) -> Self {
        Self {
            me,
            height,
            round: 0,
            step: Step::Propose,
            started: false,
            locked: None,
            valid: None,
            votes: VoteKeeper::new(set),
            proposals: HashMap::new(),
            decided: None,
            timeouts,
            proposed_in: HashSet::new(),
            prevote_timeout_set: HashSet::new(),
            precommit_timeout_set: HashSet::new(),
            polka_seen: HashSet::new(),
        }
    }

    /// The height.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The current round.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// The current step.
    pub fn step(&self) -> Step {
        self.step
    }

    /// The decided value, once there is one.
    pub fn decided(&self) -> Option<ValueId> {
        self.decided
    }

    /// The locked value and round.
    pub fn locked(&self) -> Option<(ValueId, u32)> {
        self.locked
    }

    /// The latest value seen with a polka, and its round: what this node proposes when it may.
    pub fn valid(&self) -> Option<(ValueId, u32)> {
        self.valid
    }

    fn after(&self, base: u64, round: u32) -> u64 {
        base.saturating_add(self.timeouts.delta_ms.saturating_mul(u64::from(round)))
    }

    /// Applies one input.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        if self.decided.is_some() {
            return out;
        }
        match input {
            Input::Start => {
                if !self.started {
                    self.started = true;
                    self.start_round(0, &mut out);
                }
            }
            Input::Proposal { proposal, valid } => self.on_proposal(proposal, valid, &mut out),
            Input::Vote(vote) => self.on_vote(vote, &mut out),
            Input::Timeout(timeout) => self.on_timeout(timeout, &mut out),
            Input::Value { round, value } => self.on_value(round, value, &mut out),
        }
        if self.started {
            self.process(&mut out);
        }
        out
    }

    fn is_proposer(&self, round: u32) -> bool {
        self.me == Some(self.votes.set().proposer(self.height, round))
    }

    fn start_round(&mut self, round: u32, out: &mut Vec<Output>) {
        self.round = round;
        self.step = Step::Propose;
        let timeout = Output::ScheduleTimeout {
            timeout: Timeout {
                height: self.height,
                round,
                step: TimeoutStep::Propose,
            },
            after_ms: self.after(self.timeouts.propose_ms, round),
        };
        if self.is_proposer(round) {
            match self.valid {
                Some((value, valid_round)) => self.propose(round, value, Some(valid_round), out),
                None => {
                    // The application may have no valid value this round; then the round moves
                    // on by its timeout like anyone else's.
                    out.push(Output::GetValue { round });
                    out.push(timeout);
                }
            }
        } else {
            out.push(timeout);
        }
    }

    fn propose(
        &mut self,
        round: u32,
        value: ValueId,
        pol_round: Option<u32>,
        out: &mut Vec<Output>,
    ) {
        let Some(me) = self.me else { return };
        if !self.proposed_in.insert(round) {
            return;
        }
        let proposal = Proposal {
            height: self.height,
            round,
            value,
            pol_round,
            proposer: me,
        };
        self.proposals
            .entry(round)
            .or_default()
            .push((proposal, true));
        self.votes.heard_from(round, me);
        out.push(Output::Propose(proposal));
    }

    fn on_value(&mut self, round: u32, value: ValueId, out: &mut Vec<Output>) {
        if round == self.round && self.step == Step::Propose && self.is_proposer(round) {
            self.propose(round, value, None, out);
        }
    }

    fn on_proposal(&mut self, proposal: Proposal, valid: bool, out: &mut Vec<Output>) {
        if proposal.height != self.height
            || proposal.proposer != self.votes.set().proposer(self.height, proposal.round)
            || proposal.pol_round.is_some_and(|pol| pol >= proposal.round)
        {
            return;
        }
        let known = self.proposals.entry(proposal.round).or_default();
        if known.iter().any(|(p, _)| *p == proposal) {
            return;
        }
        if let Some((first, _)) = known.first() {
            out.push(Output::DuplicateProposal(*first, proposal));
        }
        // Kept even when conflicting: other nodes may decide it, and deciding needs the proposal.
        known.push((proposal, valid));
        self.votes.heard_from(proposal.round, proposal.proposer);
    }

    fn on_vote(&mut self, vote: Vote, out: &mut Vec<Output>) {
        if vote.height != self.height {
            return;
        }
        if let Added::Equivocation(first, second) = self.votes.add(vote) {
            out.push(Output::DuplicateVote(first, second));
        }
    }

    fn on_timeout(&mut self, timeout: Timeout, out: &mut Vec<Output>) {
        if timeout.height != self.height || timeout.round != self.round {
            return;
        }
        match timeout.step {
            TimeoutStep::Propose if self.step == Step::Propose => {
                self.cast(VoteType::Prevote, None, out);
                self.step = Step::Prevote;
            }
            TimeoutStep::Prevote if self.step == Step::Prevote => {
                self.cast(VoteType::Precommit, None, out);
                self.step = Step::Precommit;
            }
            TimeoutStep::Precommit => self.start_round(self.round + 1, out),
            _ => {}
        }
    }

    /// Emits and counts this node's own vote.
    fn cast(&mut self, vote_type: VoteType, value: Option<ValueId>, out: &mut Vec<Output>) {
        let Some(me) = self.me else { return };
        let vote = Vote {
            height: self.height,
            round: self.round,
            vote_type,
            value,
            voter: me,
        };
        if self.votes.add(vote) == Added::New {
            out.push(Output::Vote(vote));
        }
    }

    fn schedule(&mut self, step: TimeoutStep, out: &mut Vec<Output>) {
        let base = match step {
            TimeoutStep::Propose => self.timeouts.propose_ms,
            TimeoutStep::Prevote => self.timeouts.prevote_ms,
            TimeoutStep::Precommit => self.timeouts.precommit_ms,
        };
        out.push(Output::ScheduleTimeout {
            timeout: Timeout {
                height: self.height,
                round: self.round,
                step,
            },
            after_ms: self.after(base, self.round),
        });
    }

    /// Applies every rule whose condition now holds, until none does.
    fn process(&mut self, out: &mut Vec<Output>) {
        loop {
            if self.decided.is_some() {
                return;
            }
            // Decide: a valid proposal of some round with more than 2/3 precommits for it.
            let decision = self.proposals.iter().find_map(|(&round, known)| {
                known.iter().find_map(|&(proposal, valid)| {
                    (valid
                        && self.votes.has_quorum_for(
                            round,
                            VoteType::Precommit,
                            Some(proposal.value),
                        ))
                    .then_some((round, proposal.value))
                })
            });
            if let Some((round, value)) = decision {
                self.decided = Some(value);
                out.push(Output::Decided {
                    round,
                    value,
                    precommits: self.votes.precommits_for(round, value),
                });
                return;
            }
            // Skip ahead when more than 1/3 of the stake is in a later round.
            if let Some(round) = self.votes.skip_round(self.round) {
                self.start_round(round, out);
                continue;
            }
            let round = self.round;
            let proposal = self.proposals.get(&round).and_then(|k| k.first()).copied();
            // The proposal of this round with more than 2/3 prevotes (a polka), if any.
            let polka = self.proposals.get(&round).and_then(|known| {
                known
                    .iter()
                    .find(|(p, valid)| {
                        *valid
                            && self
                                .votes
                                .has_quorum_for(round, VoteType::Prevote, Some(p.value))
                    })
                    .map(|(p, _)| *p)
            });
            if self.step == Step::Propose
                && let Some((proposal, valid)) = proposal
            {
                let value = proposal.value;
                let acceptable = match proposal.pol_round {
                    None => Some(
                        valid
                            && match self.locked {
                                None => true,
                                Some((locked, _)) => locked == value,
                            },
                    ),
                    Some(pol)
                        if self
                            .votes
                            .has_quorum_for(pol, VoteType::Prevote, Some(value)) =>
                    {
                        Some(
                            valid
                                && match self.locked {
                                    None => true,
                                    Some((locked, locked_round)) => {
                                        locked_round <= pol || locked == value
                                    }
                                },
                        )
                    }
                    Some(_) => None,
                };
                if let Some(acceptable) = acceptable {
                    self.cast(VoteType::Prevote, acceptable.then_some(value), out);
                    self.step = Step::Prevote;
                    continue;
                }
            }
            if self.step == Step::Prevote
                && self.votes.has_quorum_any(round, VoteType::Prevote)
                && self.prevote_timeout_set.insert(round)
            {
                self.schedule(TimeoutStep::Prevote, out);
            }
            if self.step >= Step::Prevote
                && let Some(proposal) = polka
                && self.polka_seen.insert(round)
            {
                if self.step == Step::Prevote {
                    self.locked = Some((proposal.value, round));
                    self.cast(VoteType::Precommit, Some(proposal.value), out);
                    self.step = Step::Precommit;
                }
                self.valid = Some((proposal.value, round));
                continue;
            }
            if self.step == Step::Prevote
                && self.votes.has_quorum_for(round, VoteType::Prevote, None)
            {
                self.cast(VoteType::Precommit, None, out);
                self.step = Step::Precommit;
                continue;
            }
            if self.votes.has_quorum_any(round, VoteType::Precommit)
                && self.precommit_timeout_set.insert(round)
            {
                self.schedule(TimeoutStep::Precommit, out);
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ValueId = [0xaa; 32];
    const B: ValueId = [0xbb; 32];

    fn four() -> ValidatorSet {
        ValidatorSet::new(vec![1, 1, 1, 1])
    }

    fn core(me: usize) -> Core {
        let mut core = Core::new(Some(me), 1, four(), TimeoutConfig::default());
        core.handle(Input::Start);
        core
    }

    fn vote(voter: usize, round: u32, vote_type: VoteType, value: Option<ValueId>) -> Input {
        Input::Vote(Vote {
            height: 1,
            round,
            vote_type,
            value,
            voter,
        })
    }

    fn proposal(c: &Core, round: u32, value: ValueId, pol_round: Option<u32>) -> Input {
        Input::Proposal {
            proposal: Proposal {
                height: 1,
                round,
                value,
                pol_round,
                proposer: c.votes.set().proposer(1, round),
            },
            valid: true,
        }
    }

    fn votes_of(outputs: &[Output]) -> Vec<Vote> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Vote(v) => Some(*v),
                _ => None,
            })
            .collect()
    }

    /// A node that proposes none of rounds 0, 1 and 2 (with four validators there always is one).
    fn follower() -> usize {
        let set = four();
        (0..4)
            .find(|&i| (0..3).all(|round| set.proposer(1, round) != i))
            .expect("some validator proposes none of three rounds")
    }

    #[test]
    fn decides_with_a_quorum_of_precommits_and_the_proposal() {
        let me = follower();
        let mut c = core(me);
        let out = c.handle(proposal(&c, 0, A, None));
        assert_eq!(
            votes_of(&out)[0].value,
            Some(A),
            "prevotes the valid proposal"
        );
        let others: Vec<usize> = (0..4).filter(|&i| i != me).collect();
        let mut out = Vec::new();
        for &v in &others[..2] {
            out.extend(c.handle(vote(v, 0, VoteType::Prevote, Some(A))));
        }
        assert!(
            votes_of(&out)
                .iter()
                .any(|v| v.vote_type == VoteType::Precommit && v.value == Some(A))
        );
        assert_eq!(c.locked(), Some((A, 0)));
        let mut out = c.handle(vote(others[0], 0, VoteType::Precommit, Some(A)));
        assert!(c.decided().is_none(), "2 of 4 precommits is not a quorum");
        out.extend(c.handle(vote(others[1], 0, VoteType::Precommit, Some(A))));
        let decided = out.iter().find_map(|o| match o {
            Output::Decided {
                value, precommits, ..
            } => Some((*value, precommits.len())),
            _ => None,
        });
        assert_eq!(decided, Some((A, 3)));
    }

    #[test]
    fn an_invalid_proposal_gets_a_nil_prevote() {
        let me = follower();
        let mut c = core(me);
        let Input::Proposal { proposal, .. } = proposal(&c, 0, A, None) else {
            unreachable!()
        };
        let out = c.handle(Input::Proposal {
            proposal,
            valid: false,
        });
        assert_eq!(votes_of(&out)[0].value, None);
    }

    /// A follower that saw a polka for A in round 0 (and locked on it), whose round 0 then failed
    /// with nil precommits; it is now in round 1. Returns the core and the other validators.
    fn locked_on_a_in_round_1() -> (Core, Vec<usize>) {
        let me = follower();
        let others: Vec<usize> = (0..4).filter(|&i| i != me).collect();
        let mut c = core(me);
        c.handle(proposal(&c, 0, A, None));
        for &v in &others[..2] {
            c.handle(vote(v, 0, VoteType::Prevote, Some(A)));
        }
        assert_eq!(c.locked(), Some((A, 0)));
        for &v in &others {
            c.handle(vote(v, 0, VoteType::Precommit, None));
        }
        c.handle(Input::Timeout(Timeout {
            height: 1,
            round: 0,
            step: TimeoutStep::Precommit,
        }));
        assert_eq!(c.round(), 1);
        (c, others)
    }

    #[test]
    fn a_locked_node_prevotes_nil_for_another_value_without_a_newer_polka() {
        let (mut c, _) = locked_on_a_in_round_1();
        // Round 1 proposes B with no proof of lock: the locked node prevotes nil.
        let out = c.handle(proposal(&c, 1, B, None));
        assert_eq!(votes_of(&out)[0].value, None, "safety: stays locked on A");
    }

    #[test]
    fn a_newer_polka_unlocks() {
        let (mut c, others) = locked_on_a_in_round_1();
        // The others prevoted B in round 1 (a polka this node missed); round 2 re-proposes B with
        // pol_round 1. Jump to round 2 first by hearing from the others there.
        for &v in &others {
            c.handle(vote(v, 1, VoteType::Prevote, Some(B)));
        }
        for &v in &others {
            c.handle(vote(v, 2, VoteType::Prevote, None));
        }
        assert_eq!(c.round(), 2);
        let out = c.handle(proposal(&c, 2, B, Some(1)));
        let prevote = votes_of(&out)
            .into_iter()
            .find(|v| v.round == 2 && v.vote_type == VoteType::Prevote);
        assert_eq!(
            prevote.map(|v| v.value),
            Some(Some(B)),
            "a polka in round 1 > lock round 0 unlocks"
        );
    }

    #[test]
    fn equivocation_is_evidence_and_not_weight() {
        let me = follower();
        let others: Vec<usize> = (0..4).filter(|&i| i != me).collect();
        let mut c = core(me);
        c.handle(proposal(&c, 0, A, None));
        c.handle(vote(others[0], 0, VoteType::Prevote, Some(A)));
        let out = c.handle(vote(others[0], 0, VoteType::Prevote, Some(B)));
        assert!(out.iter().any(|o| matches!(o, Output::DuplicateVote(_, _))));
        // me + others[0] = 2 of 4 for A: no precommit yet, the second vote added nothing.
        assert_eq!(c.step(), Step::Prevote);
        assert_eq!(c.locked(), None);
    }

    #[test]
    fn timeouts_move_through_the_steps() {
        let me = follower();
        let mut c = core(me);
        let out = c.handle(Input::Timeout(Timeout {
            height: 1,
            round: 0,
            step: TimeoutStep::Propose,
        }));
        assert_eq!(votes_of(&out)[0].value, None);
        assert_eq!(c.step(), Step::Prevote);
        // A stale timeout of another round does nothing.
        let out = c.handle(Input::Timeout(Timeout {
            height: 1,
            round: 5,
            step: TimeoutStep::Prevote,
        }));
        assert!(out.is_empty());
    }

    #[test]
    fn the_proposer_asks_for_a_value_and_proposes_it_once() {
        let set = four();
        let proposer = set.proposer(1, 0);
        let mut c = Core::new(Some(proposer), 1, set, TimeoutConfig::default());
        let out = c.handle(Input::Start);
        assert_eq!(out[0], Output::GetValue { round: 0 });
        assert!(
            matches!(out[1], Output::ScheduleTimeout { timeout, .. } if timeout.step == TimeoutStep::Propose),
            "a proposer without a value moves on by the propose timeout: {out:?}"
        );
        let out = c.handle(Input::Value { round: 0, value: A });
        assert!(matches!(out[0], Output::Propose(p) if p.value == A && p.pol_round.is_none()));
        assert_eq!(
            votes_of(&out)[0].value,
            Some(A),
            "and prevotes its own proposal"
        );
        let again = c.handle(Input::Value { round: 0, value: B });
        assert!(
            !again.iter().any(|o| matches!(o, Output::Propose(_))),
            "never proposes twice"
        );
        // Having proposed and prevoted, the propose timeout changes nothing.
        let late = c.handle(Input::Timeout(Timeout {
            height: 1,
            round: 0,
            step: TimeoutStep::Propose,
        }));
        assert!(votes_of(&late).is_empty(), "{late:?}");
    }

    #[test]
    fn a_proposer_with_no_value_prevotes_nil_at_the_propose_timeout() {
        let set = four();
        let proposer = set.proposer(1, 0);
        let mut c = Core::new(Some(proposer), 1, set, TimeoutConfig::default());
        c.handle(Input::Start);
        let out = c.handle(Input::Timeout(Timeout {
            height: 1,
            round: 0,
            step: TimeoutStep::Propose,
        }));
        assert_eq!(votes_of(&out).len(), 1);
        assert_eq!(votes_of(&out)[0].value, None, "a nil prevote");
    }
}
