//! Conversions between the consensus wire types (`v1::Vote`, `v1::Proposal`, WAL records) and the
//! core's, in one place.

use meshmind_protocols::{NetworkId, v1};

use super::core::{Proposal, TimeoutStep};
use super::members::Members;
use super::votes::{ValueId, Vote, VoteType};

impl TimeoutStep {
    /// The step's code in WAL timeout records (0 propose, 1 prevote, 2 precommit).
    pub fn to_wire(self) -> u32 {
        match self {
            TimeoutStep::Propose => 0,
            TimeoutStep::Prevote => 1,
            TimeoutStep::Precommit => 2,
        }
    }

    /// The step of a WAL timeout record's code, if it names one.
    pub fn from_wire(code: u32) -> Option<Self> {
        match code {
            0 => Some(TimeoutStep::Propose),
            1 => Some(TimeoutStep::Prevote),
            2 => Some(TimeoutStep::Precommit),
            _ => None,
        }
    }

    /// The step at which a wire vote of `vote_type` is signed (anything not a prevote counts as a
    /// precommit, the stricter slot).
    pub fn of_vote(vote_type: i32) -> Self {
        if vote_type == v1::VoteType::Prevote as i32 {
            TimeoutStep::Prevote
        } else {
            TimeoutStep::Precommit
        }
    }
}

fn wire_type(vote_type: VoteType) -> v1::VoteType {
    match vote_type {
        VoteType::Prevote => v1::VoteType::Prevote,
        VoteType::Precommit => v1::VoteType::Precommit,
    }
}

/// The unsigned wire form of a core vote.
pub fn wire_vote(network_id: NetworkId, members: &Members, vote: &Vote) -> Option<v1::Vote> {
    Some(v1::Vote {
        network_id: network_id.to_vec(),
        epoch: vote.height,
        round: vote.round,
        vote_type: wire_type(vote.vote_type) as i32,
        value_id: vote.value.map(|v| v.to_vec()).unwrap_or_default(),
        valset_hash: members.hash().to_vec(),
        validator: members.key(vote.voter)?.to_bytes().to_vec(),
        signature: Vec::new(),
    })
}

/// The core form of a wire vote from a member, or `None` if the voter is unknown or fields are bad.
pub fn core_vote(members: &Members, vote: &v1::Vote) -> Option<Vote> {
    let vote_type = match v1::VoteType::try_from(vote.vote_type).ok()? {
        v1::VoteType::Prevote => VoteType::Prevote,
        v1::VoteType::Precommit => VoteType::Precommit,
        v1::VoteType::Unspecified => return None,
    };
    let value = if vote.value_id.is_empty() {
        None
    } else {
        Some(ValueId::try_from(vote.value_id.as_slice()).ok()?)
    };
    Some(Vote {
        height: vote.epoch,
        round: vote.round,
        vote_type,
        value,
        voter: members.index_of(&vote.validator)?,
    })
}

/// The unsigned wire form of a core proposal.
pub fn wire_proposal(
    network_id: NetworkId,
    members: &Members,
    proposal: &Proposal,
) -> Option<v1::Proposal> {
    Some(v1::Proposal {
        network_id: network_id.to_vec(),
        epoch: proposal.height,
        round: proposal.round,
        pol_round: proposal.pol_round,
        value_id: proposal.value.to_vec(),
        valset_hash: members.hash().to_vec(),
        proposer: members.key(proposal.proposer)?.to_bytes().to_vec(),
        signature: Vec::new(),
    })
}

/// The core form of a wire proposal from a member.
pub fn core_proposal(members: &Members, proposal: &v1::Proposal) -> Option<Proposal> {
    Some(Proposal {
        height: proposal.epoch,
        round: proposal.round,
        value: ValueId::try_from(proposal.value_id.as_slice()).ok()?,
        pol_round: proposal.pol_round,
        proposer: members.index_of(&proposal.proposer)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_codes_round_trip_and_unknown_codes_are_refused() {
        for step in [
            TimeoutStep::Propose,
            TimeoutStep::Prevote,
            TimeoutStep::Precommit,
        ] {
            assert_eq!(TimeoutStep::from_wire(step.to_wire()), Some(step));
        }
        assert_eq!(TimeoutStep::from_wire(3), None);
        assert_eq!(
            TimeoutStep::of_vote(v1::VoteType::Prevote as i32),
            TimeoutStep::Prevote
        );
        assert_eq!(
            TimeoutStep::of_vote(v1::VoteType::Precommit as i32),
            TimeoutStep::Precommit
        );
    }
}
