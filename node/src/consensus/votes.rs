//! Vote counting for one height: one vote per validator per (round, type), tallies by value, and
//! equivocation detection.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::valset::{ValidatorIndex, ValidatorSet};

/// A value's identifier: the hash of the proposed snapshot header.
pub type ValueId = [u8; 32];

/// Prevote or precommit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VoteType {
    /// First voting step.
    Prevote,
    /// Second voting step.
    Precommit,
}

/// A validator's vote; `value: None` is a vote for nil.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vote {
    /// Height (epoch).
    pub height: u64,
    /// Round within the height.
    pub round: u32,
    /// Step.
    pub vote_type: VoteType,
    /// The value voted for, or nil.
    pub value: Option<ValueId>,
    /// Who voted.
    pub voter: ValidatorIndex,
}

/// What adding a vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Counted.
    New,
    /// Already counted; ignored.
    Duplicate,
    /// A second, different vote for the same slot: evidence, not weight.
    Equivocation(Vote, Vote),
    /// From a validator outside the set, or with no stake.
    Unknown,
}

#[derive(Debug, Default, Clone)]
struct Tally {
    /// Each validator's first vote.
    first: HashMap<ValidatorIndex, Vote>,
    /// Every (validator, value) pair counted, so no validator adds weight twice to one value.
    counted: HashSet<(ValidatorIndex, Option<ValueId>)>,
    by_value: HashMap<Option<ValueId>, u128>,
    /// Stake of distinct voters.
    total: u128,
}

/// Every vote of one height.
#[derive(Debug, Clone)]
pub struct VoteKeeper {
    set: ValidatorSet,
    tallies: BTreeMap<(u32, VoteType), Tally>,
    /// Validators heard from in each round, for the round-skip rule.
    heard: BTreeMap<u32, HashSet<ValidatorIndex>>,
}

impl VoteKeeper {
    /// An empty keeper for `set`.
    pub fn new(set: ValidatorSet) -> Self {
        Self {
            set,
            tallies: BTreeMap::new(),
            heard: BTreeMap::new(),
        }
    }

    /// The validator set.
    pub fn set(&self) -> &ValidatorSet {
        &self.set
    }

    /// Adds a vote.
    pub fn add(&mut self, vote: Vote) -> Added {
        let power = self.set.power(vote.voter);
        if power == 0 {
            return Added::Unknown;
        }
        let tally = self
            .tallies
            .entry((vote.round, vote.vote_type))
            .or_default();
        if !tally.counted.insert((vote.voter, vote.value)) {
            return Added::Duplicate;
        }
        // A validator weighs at most once for any one value, and once in the round's total; a second,
        // different vote is evidence. It still counts toward its own value, as other nodes may have
        // received only that one: two quorums for different values would need more than 1/3 of the
        // stake to equivocate.
        *tally.by_value.entry(vote.value).or_default() += power;
        if let Some(first) = tally.first.get(&vote.voter) {
            return Added::Equivocation(*first, vote);
        }
        tally.first.insert(vote.voter, vote);
        tally.total += power;
        self.heard.entry(vote.round).or_default().insert(vote.voter);
        Added::New
    }

    /// Notes that a validator sent a proposal in `round` (counts for round skipping).
    pub fn heard_from(&mut self, round: u32, who: ValidatorIndex) {
        if self.set.power(who) > 0 {
            self.heard.entry(round).or_default().insert(who);
        }
    }

    /// Stake that voted `value` in (round, type).
    pub fn power_for(&self, round: u32, vote_type: VoteType, value: Option<ValueId>) -> u128 {
        self.tallies
            .get(&(round, vote_type))
            .and_then(|t| t.by_value.get(&value).copied())
            .unwrap_or(0)
    }

    /// Stake that voted anything in (round, type).
    pub fn power_any(&self, round: u32, vote_type: VoteType) -> u128 {
        self.tallies.get(&(round, vote_type)).map_or(0, |t| t.total)
    }

    /// Whether more than 2/3 voted `value` in (round, type).
    pub fn has_quorum_for(&self, round: u32, vote_type: VoteType, value: Option<ValueId>) -> bool {
        self.set.is_quorum(self.power_for(round, vote_type, value))
    }

    /// Whether more than 2/3 voted at all in (round, type).
    pub fn has_quorum_any(&self, round: u32, vote_type: VoteType) -> bool {
        self.set.is_quorum(self.power_any(round, vote_type))
    }

    /// The value (not nil) with a quorum in (round, type), if any.
    pub fn quorum_value(&self, round: u32, vote_type: VoteType) -> Option<ValueId> {
        let tally = self.tallies.get(&(round, vote_type))?;
        tally
            .by_value
            .iter()
            .find(|(value, power)| value.is_some() && self.set.is_quorum(**power))
            .and_then(|(value, _)| *value)
    }

    /// The smallest round above `round` from which more than 1/3 of the stake has been heard.
    pub fn skip_round(&self, round: u32) -> Option<u32> {
        self.heard
            .range(round.saturating_add(1)..)
            .find(|(_, who)| {
                let power: u128 = who.iter().map(|&v| self.set.power(v)).sum();
                self.set.is_one_third(power)
            })
            .map(|(r, _)| *r)
    }

    /// The precommits for `value` in `round`, for a certificate.
    pub fn precommits_for(&self, round: u32, value: ValueId) -> Vec<Vote> {
        let mut votes: Vec<Vote> = self
            .tallies
            .get(&(round, VoteType::Precommit))
            .map(|t| {
                t.counted
                    .iter()
                    .filter(|(_, v)| *v == Some(value))
                    .map(|&(voter, _)| Vote {
                        height: t.first.get(&voter).map_or(0, |v| v.height),
                        round,
                        vote_type: VoteType::Precommit,
                        value: Some(value),
                        voter,
                    })
                    .collect()
            })
            .unwrap_or_default();
        votes.sort_by_key(|v| v.voter);
        votes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(voter: usize, value: Option<u8>) -> Vote {
        Vote {
            height: 1,
            round: 0,
            vote_type: VoteType::Prevote,
            value: value.map(|v| [v; 32]),
            voter,
        }
    }

    #[test]
    fn an_equivocating_validator_counts_once_per_value_and_once_in_total() {
        let mut keeper = VoteKeeper::new(ValidatorSet::new(vec![1, 1, 1, 1]));
        assert_eq!(keeper.add(vote(0, Some(1))), Added::New);
        assert_eq!(keeper.add(vote(0, Some(1))), Added::Duplicate);
        assert!(matches!(
            keeper.add(vote(0, Some(2))),
            Added::Equivocation(_, _)
        ));
        assert_eq!(keeper.add(vote(0, Some(2))), Added::Duplicate);
        assert_eq!(keeper.power_for(0, VoteType::Prevote, Some([1; 32])), 1);
        assert_eq!(keeper.power_for(0, VoteType::Prevote, Some([2; 32])), 1);
        assert_eq!(
            keeper.power_any(0, VoteType::Prevote),
            1,
            "one voter, whatever it sent"
        );
        // The equivocator plus two honest votes for one value are 3 of 4: a quorum; but no
        // second value can then also reach 3 without another equivocator.
        keeper.add(vote(1, Some(1)));
        assert!(!keeper.has_quorum_for(0, VoteType::Prevote, Some([1; 32])));
        keeper.add(vote(2, Some(1)));
        assert!(keeper.has_quorum_for(0, VoteType::Prevote, Some([1; 32])));
        keeper.add(vote(3, Some(2)));
        assert!(!keeper.has_quorum_for(0, VoteType::Prevote, Some([2; 32])));
    }

    #[test]
    fn quorum_at_the_boundary() {
        // Stakes 2, 2, 2: two votes are exactly 2/3 and do not make a quorum; three do.
        let mut keeper = VoteKeeper::new(ValidatorSet::new(vec![2, 2, 2]));
        keeper.add(vote(0, Some(1)));
        keeper.add(vote(1, Some(1)));
        assert!(!keeper.has_quorum_for(0, VoteType::Prevote, Some([1; 32])));
        assert_eq!(keeper.quorum_value(0, VoteType::Prevote), None);
        keeper.add(vote(2, Some(1)));
        assert!(keeper.has_quorum_for(0, VoteType::Prevote, Some([1; 32])));
        assert_eq!(keeper.quorum_value(0, VoteType::Prevote), Some([1; 32]));
    }

    #[test]
    fn unknown_voters_and_round_skipping() {
        let mut keeper = VoteKeeper::new(ValidatorSet::new(vec![1, 1, 1, 1]));
        assert_eq!(keeper.add(vote(9, Some(1))), Added::Unknown);
        let mut later = vote(1, None);
        later.round = 3;
        keeper.add(later);
        assert_eq!(keeper.skip_round(0), None, "1 of 4 is not more than 1/3");
        keeper.heard_from(3, 2);
        assert_eq!(keeper.skip_round(0), Some(3));
        assert_eq!(keeper.skip_round(3), None);
    }
}
