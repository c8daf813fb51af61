//! Evidence of misbehaviour: building it from conflicting signed messages and checking it.

use meshmind_protocols::{NetworkId, Signed, v1};

use super::members::Members;

/// Why evidence does not prove misbehaviour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("evidence: {0}")]
pub struct EvidenceError(pub String);

fn bad(reason: &str) -> EvidenceError {
    EvidenceError(reason.to_string())
}

/// Epochs either side of the current one within which evidence is taken and included; older
/// evidence is dropped.
pub const MAX_EVIDENCE_AGE: u64 = 64;

/// Most pieces of evidence one snapshot carries; the rest wait for the next.
pub const MAX_SNAPSHOT_EVIDENCE: usize = 64;

/// The kinds of fault evidence proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// Two votes for one slot.
    DuplicateVote,
    /// Two proposals for one round.
    DuplicateProposal,
    /// Two weight commitments for one epoch.
    DuplicateWeightCommit,
}

/// What a piece of evidence accuses: one offender, of one kind of fault, at one epoch. A node
/// keeps, and a snapshot carries, at most one piece of evidence per offence.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Offence {
    /// The offender's hotkey bytes.
    pub offender: Vec<u8>,
    /// The epoch of the conflicting messages.
    pub epoch: u64,
    /// The fault.
    pub kind: FaultKind,
}

impl Offence {
    /// The offence `evidence` names, read from its first message (not checked: see [`check`]).
    pub fn of(evidence: &v1::Evidence) -> Option<Self> {
        use v1::evidence::Kind;
        let (offender, epoch, kind) = match evidence.kind.as_ref()? {
            Kind::DuplicateVote(d) => d
                .first
                .as_ref()
                .map(|v| (&v.validator, v.epoch, FaultKind::DuplicateVote))?,
            Kind::DuplicateProposal(d) => d
                .first
                .as_ref()
                .map(|p| (&p.proposer, p.epoch, FaultKind::DuplicateProposal))?,
            Kind::DuplicateWeightCommit(d) => d
                .first
                .as_ref()
                .map(|c| (&c.validator, c.epoch, FaultKind::DuplicateWeightCommit))?,
        };
        Some(Self {
            offender: offender.clone(),
            epoch,
            kind,
        })
    }

    /// Whether the offence is recent enough to be taken or included at `epoch`.
    pub fn is_fresh_at(&self, epoch: u64) -> bool {
        self.epoch.abs_diff(epoch) <= MAX_EVIDENCE_AGE
    }
}

/// Evidence of two different votes for one slot.
pub fn duplicate_vote(first: v1::Vote, second: v1::Vote) -> v1::Evidence {
    v1::Evidence {
        kind: Some(v1::evidence::Kind::DuplicateVote(v1::DuplicateVote {
            first: Some(first),
            second: Some(second),
        })),
    }
}

/// Evidence of two different proposals for one round.
pub fn duplicate_proposal(first: v1::Proposal, second: v1::Proposal) -> v1::Evidence {
    v1::Evidence {
        kind: Some(v1::evidence::Kind::DuplicateProposal(
            v1::DuplicateProposal {
                first: Some(first),
                second: Some(second),
            },
        )),
    }
}

fn pair<'a, M>(
    first: &'a Option<M>,
    second: &'a Option<M>,
) -> Result<(&'a M, &'a M), EvidenceError> {
    match (first, second) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(bad("both messages are required")),
    }
}

fn signed_by_member<M: Signed>(
    message: &M,
    accountable: &dyn Fn(&[u8]) -> bool,
    network_id: &NetworkId,
    message_network: &[u8],
) -> Result<(), EvidenceError> {
    if !network_id.is(message_network) {
        return Err(bad("message of another network"));
    }
    if !accountable(message.signer_bytes()) {
        return Err(bad(
            "signer is neither in the validator set nor a bonded finalizer",
        ));
    }
    message
        .verify_signature()
        .map_err(|e| EvidenceError(e.to_string()))
}

/// The hotkey the evidence accuses, after checking that it proves a fault by a member of `members`.
pub fn check(
    evidence: &v1::Evidence,
    network_id: NetworkId,
    members: &Members,
) -> Result<Vec<u8>, EvidenceError> {
    check_accountable(evidence, network_id, &|key| members.index_of(key).is_some())
}

/// The hotkey the evidence accuses, after checking that it proves a fault by a hotkey
/// `accountable` names (the set's members, and finalizers whose stake is still bonded).
pub fn check_accountable(
    evidence: &v1::Evidence,
    network_id: NetworkId,
    accountable: &dyn Fn(&[u8]) -> bool,
) -> Result<Vec<u8>, EvidenceError> {
    use v1::evidence::Kind;
    match &evidence.kind {
        None => Err(bad("empty")),
        Some(Kind::DuplicateVote(d)) => {
            let (a, b) = pair(&d.first, &d.second)?;
            if (a.epoch, a.round, a.vote_type, &a.validator, &a.valset_hash)
                != (b.epoch, b.round, b.vote_type, &b.validator, &b.valset_hash)
                || a.value_id == b.value_id
            {
                return Err(bad("the votes are not two values for one slot"));
            }
            signed_by_member(a, accountable, &network_id, &a.network_id)?;
            signed_by_member(b, accountable, &network_id, &b.network_id)?;
            Ok(a.validator.clone())
        }
        Some(Kind::DuplicateProposal(d)) => {
            let (a, b) = pair(&d.first, &d.second)?;
            if (a.epoch, a.round, &a.proposer) != (b.epoch, b.round, &b.proposer) || a == b {
                return Err(bad("the proposals are not two for one round"));
            }
            signed_by_member(a, accountable, &network_id, &a.network_id)?;
            signed_by_member(b, accountable, &network_id, &b.network_id)?;
            Ok(a.proposer.clone())
        }
        Some(Kind::DuplicateWeightCommit(d)) => {
            let (a, b) = pair(&d.first, &d.second)?;
            if (a.subnet, a.epoch, &a.validator) != (b.subnet, b.epoch, &b.validator)
                || a.commit_hash == b.commit_hash
            {
                return Err(bad("the commitments are not two for one epoch"));
            }
            signed_by_member(a, accountable, &network_id, &a.network_id)?;
            signed_by_member(b, accountable, &network_id, &b.network_id)?;
            Ok(a.validator.clone())
        }
    }
}
