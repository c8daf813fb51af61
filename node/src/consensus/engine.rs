//! The consensus engine of one node: the pure [`Core`] plus everything around it that needs no
//! I/O: wire messages in and out, signature checks, signing with the double-sign guard,
//! certificates, evidence, and moving from one height to the next. The values themselves belong
//! to the application ([`App`]).
//!
//! The engine never touches storage, the network or the clock: every call returns [`Action`]s in
//! the order they must be performed. Each input is followed by its [`Action::Persist`] and every
//! own signature is persisted (synced) before the [`Action::Broadcast`] that sends it, so a driver
//! that performs actions in order never speaks before it has written, and a restarted engine
//! replays its write-ahead log to the same state and re-sends the same messages.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use prost::Message as _;

use meshmind_protocols::{
    Keypair, NetworkId, SignatureError, Signed, Validate, ValidationError, v1,
};

use super::app::{App, Height, ValueInputs};
use super::certificate;
use super::core::{Core, Input, Output, Proposal, Timeout, TimeoutConfig, TimeoutStep};
use super::evidence::{self, FaultKind, Offence};
use super::members::{Members, MembersError};
use super::votes::ValueId;
use super::wire;
use crate::ledger::{Head, LedgerError};

/// Most messages held for epochs this node has not reached yet.
const MAX_FUTURE: usize = 4096;
/// Most bytes of messages for later heights held at once.
const MAX_FUTURE_BYTES: usize = 64 << 20;
/// Most bytes of messages for later heights held for one signer.
pub(super) const MAX_FUTURE_BYTES_PER_SIGNER: usize = 8 << 20;
/// Most messages for later heights held for one signer (an honest one sends a few per round).
pub(super) const MAX_FUTURE_PER_SIGNER: usize = 256;
/// Rounds past the current one whose proposals and votes are taken; later ones are dropped
/// unchecked (their senders are that far ahead only if the network is, and then a timeout
/// brings this node within reach).
pub const MAX_ROUNDS_AHEAD: u32 = 64;

/// What an engine resumes from, read from storage before it opens.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    /// The ledger head.
    pub head: Option<Head>,
    /// The validator set the head's snapshot named for the next epoch.
    pub next_validators: Option<v1::ValidatorSet>,
    /// Evidence stored so far.
    pub evidence: Vec<v1::Evidence>,
    /// The write-ahead log of the epoch after the head, in write order.
    pub wal: Vec<v1::WalEntry>,
}

/// A failure the node cannot continue past (its storage or its log), as opposed to a bad message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The ledger failed while performing the engine's actions; the engine must be rebuilt from
    /// disk.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The stored validator set is unusable.
    #[error("validator set: {0}")]
    Members(#[from] MembersError),
    /// The WAL holds something this engine cannot replay.
    #[error("wal of epoch {epoch}: {reason}")]
    Wal {
        /// Epoch.
        epoch: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Why a message from the network was refused; the sender should be penalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// A field breaks the wire rules.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Signed for another network.
    #[error("message of another network")]
    WrongNetwork,
    /// Names a validator set other than the current one.
    #[error("message names another validator set")]
    OtherSet,
    /// Signed by a key outside the current set.
    #[error("signer is not a validator of this epoch")]
    NotAMember,
    /// The proposal is signed by a member that is not the round's proposer.
    #[error("not the proposer of the round")]
    NotTheProposer,
    /// The signature does not verify.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// A proposal message without its proposal.
    #[error("proposal missing")]
    NoProposal,
    /// A proposal message without its snapshot.
    #[error("snapshot missing")]
    NoSnapshot,
    /// The snapshot carried is not the value proposed.
    #[error("the snapshot is not the proposed value")]
    NotTheProposedValue,
    /// A vote whose fields do not fit the validator set.
    #[error("vote fields do not fit the validator set")]
    VoteFields,
    /// A certificate whose value id is not 32 bytes.
    #[error("certificate value id is not 32 bytes")]
    CertificateValue,
    /// A certificate that does not prove a decision.
    #[error(transparent)]
    Certificate(#[from] certificate::CertificateError),
    /// Evidence that proves nothing.
    #[error(transparent)]
    Evidence(#[from] evidence::EvidenceError),
    /// A message with no body.
    #[error("empty message")]
    Empty,
}

/// What a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and new: forward it.
    Accept,
    /// Harmless but useless (old, duplicate, or held for later): do not forward.
    Ignore,
}

// Actions live for one driver step; boxing would only add an allocation per message.
/// What the driver must do, in order.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Append `entry` to the write-ahead log of `epoch` (synced to disk when `sync`) before
    /// performing any later action.
    Persist {
        /// The epoch whose log it joins.
        epoch: u64,
        /// The record.
        entry: v1::WalEntry,
        /// Whether it must reach the disk first (own signatures).
        sync: bool,
    },
    /// Store new evidence.
    StoreEvidence(v1::Evidence),
    /// Delete stored evidence that a finalized snapshot carried or that grew too old.
    ForgetEvidence(Vec<v1::Evidence>),
    /// Store a finalized snapshot as the new head, with the application state after it, in one
    /// synced write.
    Commit {
        /// The snapshot and its certificate.
        finalized: v1::FinalizedSnapshot,
        /// The application state after it, encoded.
        state: Vec<u8>,
    },
    /// Send to the other validators.
    Broadcast(v1::ConsensusMessage),
    /// Call [`Engine::on_timeout`] with this after `after_ms`.
    Schedule {
        /// Which timeout.
        timeout: Timeout,
        /// Delay.
        after_ms: u64,
    },
    /// Call [`Engine::on_value`] with what this node holds for the epoch's value.
    NeedValue {
        /// Epoch.
        epoch: u64,
        /// Round.
        round: u32,
    },
    /// An epoch was finalized (after its [`Action::Commit`]).
    Committed {
        /// Epoch.
        epoch: u64,
        /// The round it was decided in.
        round: u32,
        /// Its header hash.
        hash: [u8; 32],
    },
    /// Peers are ahead: fetch finalized snapshots from `epoch` on.
    Behind {
        /// The first epoch missing here.
        epoch: u64,
    },
}

/// Configuration of an engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The network.
    pub network_id: NetworkId,
    /// The validators of epoch 0.
    pub genesis: Members,
    /// Step timeouts.
    pub timeouts: TimeoutConfig,
    /// Test-only misbehaviour: with every vote for a value, also sign and send a nil vote for the
    /// same step (an equivocation the others must turn into evidence). Never set it on a real node.
    pub equivocate: bool,
}

/// The consensus engine of one node (a validator when it has a key in the set, else a follower).
pub struct Engine<A: App> {
    app: A,
    keypair: Option<Keypair>,
    config: EngineConfig,
    members: Members,
    height: u64,
    parent: [u8; 32],
    core: Core,
    started: bool,
    /// Snapshot bodies of this height's proposals, by value id.
    bodies: HashMap<ValueId, v1::Snapshot>,
    /// Signed proposals of this height, by round, first first.
    proposals: HashMap<u32, Vec<v1::Proposal>>,
    /// The first signed vote of each slot (round, type, validator) of this height.
    votes: HashMap<(u32, i32, Vec<u8>), v1::Vote>,
    /// The one conflicting vote taken for a slot: it counts toward its own value (a validator that
    /// lost its log signs again, and a proof-of-lock may rest on either vote); any further one is
    /// dropped unchecked.
    conflicting: HashMap<(u32, i32, Vec<u8>), v1::Vote>,
    /// Own signatures of this height: (round, step) -> digest.
    signed: HashMap<(u32, TimeoutStep), [u8; 32]>,
    /// Own signed messages of this height, for rebroadcast.
    own: Vec<v1::ConsensusMessage>,
    /// Rounds whose value this node already chose.
    valued: HashSet<u32>,
    /// Evidence not yet in a finalized snapshot, one piece per offence, oldest first.
    pending_evidence: Vec<v1::Evidence>,
    /// The offences evidence was taken for, within [`evidence::MAX_EVIDENCE_AGE`] epochs.
    known_offences: BTreeSet<Offence>,
    /// What the caller must do, in order, since the last call returned.
    actions: Vec<Action>,
    future: BTreeMap<u64, Vec<v1::ConsensusMessage>>,
    future_len: usize,
    /// Bytes held in `future`, in all; and (messages, bytes) by signer.
    future_bytes: usize,
    future_by_signer: HashMap<Vec<u8>, (usize, usize)>,
    replaying: bool,
}

/// The signer named by a held proposal or vote.
fn future_signer(msg: &v1::ConsensusMessage) -> Option<Vec<u8>> {
    use v1::consensus_message::Body;
    match &msg.body {
        Some(Body::Proposal(value)) => value.proposal.as_ref().map(|p| p.proposer.clone()),
        Some(Body::Vote(v)) => Some(v.validator.clone()),
        _ => None,
    }
}

/// Whether `message` carries exactly `vote`.
fn is_vote(message: &v1::ConsensusMessage, vote: &v1::Vote) -> bool {
    matches!(&message.body, Some(v1::consensus_message::Body::Vote(v)) if v == vote)
}

fn message(body: v1::consensus_message::Body) -> v1::ConsensusMessage {
    v1::ConsensusMessage { body: Some(body) }
}

fn entry(kind: v1::wal_entry::Kind) -> v1::WalEntry {
    v1::WalEntry { kind: Some(kind) }
}

impl<A: App> Engine<A> {
    /// Opens the engine at the epoch after `restored`'s head over `app` (the application state
    /// after that head) and replays that epoch's WAL.
    pub fn open(
        app: A,
        keypair: Option<Keypair>,
        config: EngineConfig,
        restored: Restored,
    ) -> Result<(Self, Vec<Action>), EngineError> {
        let Restored {
            head,
            next_validators,
            evidence,
            wal,
        } = restored;
        let members = match next_validators {
            Some(set) if head.is_some() => Members::new(set)?,
            _ => config.genesis.clone(),
        };
        let height = head.map_or(0, |h| h.epoch + 1);
        let parent = head.map_or(*config.network_id.as_bytes(), |h| h.hash);
        let core = Core::new(None, height, members.set().clone(), config.timeouts);
        let mut engine = Self {
            app,
            keypair,
            config,
            members,
            height,
            parent,
            core,
            started: false,
            bodies: HashMap::new(),
            proposals: HashMap::new(),
            votes: HashMap::new(),
            conflicting: HashMap::new(),
            signed: HashMap::new(),
            own: Vec::new(),
            valued: HashSet::new(),
            pending_evidence: Vec::new(),
            known_offences: BTreeSet::new(),
            actions: Vec::new(),
            future: BTreeMap::new(),
            future_len: 0,
            future_bytes: 0,
            future_by_signer: HashMap::new(),
            replaying: false,
        };
        engine.reset_core();
        // Stored evidence waits again, one piece per offence; what grew too old is forgotten.
        let mut stale = Vec::new();
        for item in evidence {
            match Offence::of(&item) {
                Some(o) if o.is_fresh_at(height) && engine.known_offences.insert(o.clone()) => {
                    engine.pending_evidence.push(item);
                }
                _ => stale.push(item),
            }
        }
        if !stale.is_empty() {
            engine.actions.push(Action::ForgetEvidence(stale));
        }
        engine.replay(wal)?;
        let actions = engine.take_actions();
        Ok((engine, actions))
    }

    /// The actions of this call so far, handed to the caller.
    fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    fn me(&self) -> Option<usize> {
        let key = self.keypair.as_ref()?.public();
        self.members.index_of(key.as_bytes())
    }

    fn reset_core(&mut self) {
        self.core = Core::new(
            self.me(),
            self.height,
            self.members.set().clone(),
            self.config.timeouts,
        );
        self.started = false;
        self.bodies.clear();
        self.proposals.clear();
        self.votes.clear();
        self.conflicting.clear();
        self.signed.clear();
        self.own.clear();
        self.valued.clear();
    }

    /// Replays the WAL of the current height through the core; own signatures found in it guard
    /// against signing anything different after the restart.
    fn replay(&mut self, wal: Vec<v1::WalEntry>) -> Result<(), EngineError> {
        if wal.is_empty() {
            return Ok(());
        }
        let me = self
            .keypair
            .as_ref()
            .map(|k| k.public().to_bytes().to_vec());
        // First learn every own signature, so the guard knows them before the core re-derives.
        for item in &wal {
            match &item.kind {
                Some(v1::wal_entry::Kind::Vote(vote)) if Some(&vote.validator) == me.as_ref() => {
                    self.signed.insert(
                        (vote.round, TimeoutStep::of_vote(vote.vote_type)),
                        vote.signing_digest(),
                    );
                }
                Some(v1::wal_entry::Kind::Proposal(p)) => {
                    if let Some(proposal) = p.value.as_ref().and_then(|v| v.proposal.as_ref())
                        && Some(&proposal.proposer) == me.as_ref()
                    {
                        self.signed.insert(
                            (proposal.round, TimeoutStep::Propose),
                            proposal.signing_digest(),
                        );
                    }
                }
                _ => {}
            }
        }
        self.replaying = true;
        let result = (|| {
            for item in wal {
                let epoch = self.height;
                let kind = item.kind.ok_or(EngineError::Wal {
                    epoch,
                    reason: "empty record".into(),
                })?;
                match kind {
                    v1::wal_entry::Kind::Start(_) => self.begin()?,
                    v1::wal_entry::Kind::Proposal(p) => {
                        let value = p.value.ok_or(EngineError::Wal {
                            epoch,
                            reason: "proposal record without value".into(),
                        })?;
                        self.take_proposal(value, Some(p.valid))?;
                    }
                    v1::wal_entry::Kind::Vote(vote) => self.take_vote(vote)?,
                    v1::wal_entry::Kind::Timeout(t) => {
                        let step = TimeoutStep::from_wire(t.step).ok_or(EngineError::Wal {
                            epoch,
                            reason: format!("timeout step {}", t.step),
                        })?;
                        self.timeout(Timeout {
                            height: epoch,
                            round: t.round,
                            step,
                        })?;
                    }
                    v1::wal_entry::Kind::Value(v) => {
                        let snapshot = v.snapshot.ok_or(EngineError::Wal {
                            epoch,
                            reason: "value record without snapshot".into(),
                        })?;
                        self.use_value(v.round, snapshot)?;
                    }
                }
                if self.height != epoch {
                    break;
                }
            }
            Ok::<_, EngineError>(())
        })();
        self.replaying = false;
        result?;
        let valued = self.valued.clone();
        self.actions
            .retain(|a| !matches!(a, Action::NeedValue { round, .. } if valued.contains(round)));
        tracing::info!(
            epoch = self.height,
            round = self.core.round(),
            "replayed the consensus WAL"
        );
        Ok(())
    }

    /// Asks for `kind` to be logged before anything that follows (not while replaying the log).
    fn log(&mut self, kind: v1::wal_entry::Kind, sync: bool) {
        if self.replaying {
            return;
        }
        self.persist(kind, sync);
    }

    /// Asks for an own signature to be logged, synced, before it is sent: also while replaying, if
    /// the log did not hold it yet (it was first derived from records written unsynced).
    fn log_own(&mut self, kind: v1::wal_entry::Kind, logged: bool) {
        if self.replaying && logged {
            return;
        }
        self.persist(kind, true);
    }

    fn persist(&mut self, kind: v1::wal_entry::Kind, sync: bool) {
        self.actions.push(Action::Persist {
            epoch: self.height,
            entry: entry(kind),
            sync,
        });
    }

    /// The height being decided, for the application.
    fn at(&self) -> Height<'_> {
        Height {
            network_id: self.config.network_id,
            epoch: self.height,
            parent: self.parent,
            members: &self.members,
        }
    }

    /// The application (the chain after the head).
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The epoch being decided.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The current round.
    pub fn round(&self) -> u32 {
        self.core.round()
    }

    /// Whether the current epoch's consensus has started.
    pub fn started(&self) -> bool {
        self.started
    }

    /// The validators of the current epoch.
    pub fn members(&self) -> &Members {
        &self.members
    }

    /// The ledger head.
    pub fn head(&self) -> Option<Head> {
        self.height.checked_sub(1).map(|epoch| Head {
            epoch,
            hash: self.parent,
        })
    }

    /// Runs `work` and hands over the actions it left, or nothing if it failed.
    fn call(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<(), EngineError>,
    ) -> Result<Vec<Action>, EngineError> {
        let result = work(self);
        let actions = self.take_actions();
        result.map(|()| actions)
    }

    /// Starts deciding the current epoch (once it has ended).
    pub fn start(&mut self) -> Result<Vec<Action>, EngineError> {
        self.call(Self::begin)
    }

    fn begin(&mut self) -> Result<(), EngineError> {
        if self.started {
            return Ok(());
        }
        self.log(v1::wal_entry::Kind::Start(self.height), false);
        self.started = true;
        let outputs = self.core.handle(Input::Start);
        self.perform(outputs)
    }

    /// A timeout the driver scheduled fired.
    pub fn on_timeout(&mut self, timeout: Timeout) -> Result<Vec<Action>, EngineError> {
        self.call(|engine| engine.timeout(timeout))
    }

    fn timeout(&mut self, timeout: Timeout) -> Result<(), EngineError> {
        if timeout.height != self.height || !self.started {
            return Ok(());
        }
        tracing::debug!(epoch = self.height, round = timeout.round, step = ?timeout.step, "timeout");
        self.log(
            v1::wal_entry::Kind::Timeout(v1::WalTimeout {
                round: timeout.round,
                step: timeout.step.to_wire(),
            }),
            false,
        );
        let outputs = self.core.handle(Input::Timeout(timeout));
        self.perform(outputs)
    }

    /// Answers [`Action::NeedValue`]: builds this node's snapshot from the weight reveals and the
    /// pending transactions it holds.
    pub fn on_value(
        &mut self,
        round: u32,
        reveals: Vec<v1::WeightReveal>,
        transactions: Vec<v1::Transaction>,
    ) -> Result<Vec<Action>, EngineError> {
        let Some(keypair) = &self.keypair else {
            return Ok(Vec::new());
        };
        if self.valued.contains(&round) || round != self.core.round() {
            return Ok(Vec::new());
        }
        let inputs = ValueInputs {
            reveals,
            evidence: self.pending_evidence.clone(),
            transactions,
        };
        let at = self.at();
        let snapshot = self.app.build_value(&at, &keypair.public(), inputs);
        // Never propose what this node would refuse (for example, too few weight vectors before
        // the round from which fewer are allowed): the round times out and a later one proposes.
        if let Err(e) = self.app.check_value(&at, &snapshot, round) {
            tracing::info!(epoch = self.height, round, reason = %e, "no valid snapshot to propose in this round");
            return Ok(Vec::new());
        }
        self.call(|engine| engine.use_value(round, snapshot))
    }

    fn use_value(&mut self, round: u32, snapshot: v1::Snapshot) -> Result<(), EngineError> {
        tracing::debug!(
            epoch = self.height,
            round,
            weights = snapshot.weights.len(),
            "proposing"
        );
        self.log(
            v1::wal_entry::Kind::Value(v1::WalValue {
                round,
                snapshot: Some(snapshot.clone()),
            }),
            false,
        );
        self.valued.insert(round);
        let value = self.app.value_id(&snapshot);
        self.bodies.insert(value, snapshot);
        let outputs = self.core.handle(Input::Value { round, value });
        self.perform(outputs)
    }

    /// Handles a consensus message from the network.
    pub fn on_message(
        &mut self,
        msg: v1::ConsensusMessage,
    ) -> Result<(Verdict, Vec<Action>), EngineError> {
        match self.check_message(msg) {
            Ok(result) => result,
            Err(rejected) => {
                tracing::debug!(reason = %rejected, "consensus message rejected");
                Ok((Verdict::Ignore, vec![]))
            }
        }
    }

    /// Like [`Engine::on_message`], but tells a bad message apart so its sender can be penalised.
    pub fn check_message(
        &mut self,
        msg: v1::ConsensusMessage,
    ) -> Result<Result<(Verdict, Vec<Action>), EngineError>, Rejected> {
        let checked = self.check(msg);
        let actions = self.take_actions();
        checked.map(|result| result.map(|verdict| (verdict, actions)))
    }

    fn check(
        &mut self,
        msg: v1::ConsensusMessage,
    ) -> Result<Result<Verdict, EngineError>, Rejected> {
        use v1::consensus_message::Body;
        msg.validate()?;
        let network = self.config.network_id;
        let epoch = match &msg.body {
            Some(Body::Proposal(p)) => p.proposal.as_ref().map_or(0, |p| p.epoch),
            Some(Body::Vote(v)) => v.epoch,
            Some(Body::Certificate(c)) => c.epoch,
            Some(Body::Evidence(_)) | None => self.height,
        };
        if epoch < self.height {
            return Ok(Ok(Verdict::Ignore));
        }
        if epoch > self.height {
            // Handled when the height is reached; a certificate from ahead means this node is behind.
            // Messages signed by the current set are forwarded meanwhile: in a large mesh, peers a
            // few hops away depend on this node passing on the next epoch's votes.
            let current = self.signed_by_current_set(&msg)?;
            let verdict = if current {
                Verdict::Accept
            } else {
                Verdict::Ignore
            };
            let behind = matches!(msg.body, Some(Body::Certificate(_)));
            if epoch <= self.height + 2 && !behind {
                // Held only when a member signed it, within the bounds of all and of its signer.
                // A signer outside the current set may be in the next one: its messages share
                // one bucket, unpenalised; a member's bad signature is its sender's fault.
                let signer = match current {
                    true => future_signer(&msg),
                    false => match self.member_signature(&msg) {
                        Ok(signer) => signer,
                        Err(Rejected::NotAMember) => Some(Vec::new()),
                        Err(e) => return Err(e),
                    },
                };
                self.hold_future(epoch, signer, msg);
            }
            if behind || epoch > self.height + 1 {
                self.actions.push(Action::Behind { epoch: self.height });
            }
            return Ok(Ok(verdict));
        }
        let round = match &msg.body {
            Some(Body::Proposal(p)) => p.proposal.as_ref().map(|p| p.round),
            Some(Body::Vote(v)) => Some(v.round),
            _ => None,
        };
        if round.is_some_and(|r| r > self.core.round().saturating_add(MAX_ROUNDS_AHEAD)) {
            return Ok(Ok(Verdict::Ignore));
        }
        match msg.body {
            Some(Body::Proposal(value)) => {
                let proposal = value.proposal.as_ref().ok_or(Rejected::NoProposal)?;
                // An exact repeat is dropped before any signature check or hashing.
                if self
                    .proposals
                    .get(&proposal.round)
                    .is_some_and(|known| known.contains(proposal))
                {
                    return Ok(Ok(Verdict::Ignore));
                }
                // Likewise a proposer proven to equivocate at this height.
                if self
                    .proposals
                    .get(&proposal.round)
                    .is_some_and(|known| known.iter().any(|p| p.proposer == proposal.proposer))
                    && self.knows(&Offence {
                        offender: proposal.proposer.clone(),
                        epoch: self.height,
                        kind: FaultKind::DuplicateProposal,
                    })
                {
                    return Ok(Ok(Verdict::Ignore));
                }
                // The round's proposer, checked before its signature and its snapshot's hash.
                let proposer = self.members.set().proposer(self.height, proposal.round);
                if self.members.index_of(&proposal.proposer) != Some(proposer) {
                    return Err(Rejected::NotTheProposer);
                }
                self.check_signed(proposal, &proposal.network_id, &proposal.valset_hash)?;
                let snapshot = value.snapshot.as_ref().ok_or(Rejected::NoSnapshot)?;
                if self.app.value_id(snapshot) != proposal.value_id.as_slice() {
                    return Err(Rejected::NotTheProposedValue);
                }
                Ok(self.take_proposal(value, None).map(|()| Verdict::Accept))
            }
            Some(Body::Vote(vote)) => {
                // An exact repeat (gossip and resends deliver many) costs no signature check.
                let slot = (vote.round, vote.vote_type, vote.validator.clone());
                if self.votes.get(&slot) == Some(&vote) {
                    return Ok(Ok(Verdict::Ignore));
                }
                // One conflicting vote per slot is taken (and is evidence); any further ones
                // are dropped unchecked and unlogged.
                if self.conflicting.contains_key(&slot) {
                    return Ok(Ok(Verdict::Ignore));
                }
                self.check_signed(&vote, &vote.network_id, &vote.valset_hash)?;
                if wire::core_vote(&self.members, &vote).is_none() {
                    return Err(Rejected::VoteFields);
                }
                Ok(self.take_vote(vote).map(|()| Verdict::Accept))
            }
            Some(Body::Certificate(cert)) => {
                let Ok(value) = <[u8; 32]>::try_from(cert.value_id.as_slice()) else {
                    return Err(Rejected::CertificateValue);
                };
                certificate::verify(&cert, network, &self.members, self.height, &value)
                    .map_err(Rejected::from)?;
                match self.bodies.get(&value).cloned() {
                    Some(snapshot) => {
                        let finalized = v1::FinalizedSnapshot {
                            snapshot: Some(snapshot),
                            certificate: Some(cert),
                        };
                        Ok(self.finalize(finalized, false).map(|()| Verdict::Accept))
                    }
                    None => {
                        self.actions.push(Action::Behind { epoch: self.height });
                        Ok(Ok(Verdict::Accept))
                    }
                }
            }
            Some(Body::Evidence(item)) => {
                let (members, app) = (&self.members, &self.app);
                let accountable =
                    |key: &[u8]| members.index_of(key).is_some() || app.accountable(key);
                evidence::check_accountable(&item, network, &accountable)
                    .map_err(Rejected::from)?;
                Ok(Ok(match self.add_evidence(item) {
                    true => Verdict::Accept,
                    false => Verdict::Ignore,
                }))
            }
            None => Err(Rejected::Empty),
        }
    }

    /// For a message of a later epoch: whether it is signed by a member of the current set (then
    /// it may be forwarded). A message naming another set cannot be checked here (`false`); one
    /// naming this set with a bad signature is refused.
    fn signed_by_current_set(&self, msg: &v1::ConsensusMessage) -> Result<bool, Rejected> {
        use v1::consensus_message::Body;
        let hash = self.members.hash();
        match &msg.body {
            Some(Body::Proposal(value)) => match &value.proposal {
                Some(p) if p.valset_hash == hash => self
                    .check_signed(p, &p.network_id, &p.valset_hash)
                    .map(|()| true),
                _ => Ok(false),
            },
            Some(Body::Vote(v)) if v.valset_hash == hash => self
                .check_signed(v, &v.network_id, &v.valset_hash)
                .map(|()| true),
            Some(Body::Certificate(c)) if c.valset_hash == hash => {
                let value = <[u8; 32]>::try_from(c.value_id.as_slice())
                    .map_err(|_| Rejected::CertificateValue)?;
                certificate::verify(c, self.config.network_id, &self.members, c.epoch, &value)
                    .map(|()| true)
                    .map_err(Rejected::from)
            }
            _ => Ok(false),
        }
    }

    /// The signer of a proposal or vote for a later height, once it is a member of the current
    /// set with a good signature (the set it names may be the next one, so only the key is
    /// checked); `None` for other messages.
    fn member_signature(&self, msg: &v1::ConsensusMessage) -> Result<Option<Vec<u8>>, Rejected> {
        use v1::consensus_message::Body;
        fn check<M: Signed>(
            members: &Members,
            network: NetworkId,
            message: &M,
            network_id: &[u8],
        ) -> Result<Option<Vec<u8>>, Rejected> {
            if !network.is(network_id) {
                return Err(Rejected::WrongNetwork);
            }
            if members.index_of(message.signer_bytes()).is_none() {
                return Err(Rejected::NotAMember);
            }
            message.verify_signature()?;
            Ok(Some(message.signer_bytes().to_vec()))
        }
        let network = self.config.network_id;
        match &msg.body {
            Some(Body::Proposal(value)) => match &value.proposal {
                Some(p) => check(&self.members, network, p, &p.network_id),
                None => Err(Rejected::NoProposal),
            },
            Some(Body::Vote(v)) => check(&self.members, network, v, &v.network_id),
            _ => Ok(None),
        }
    }

    /// Keeps `msg` for `epoch` if the buffer and `signer`'s share of it have room.
    fn hold_future(&mut self, epoch: u64, signer: Option<Vec<u8>>, msg: v1::ConsensusMessage) {
        let Some(signer) = signer else {
            return;
        };
        let size = msg.encoded_len();
        let (count, bytes) = self
            .future_by_signer
            .get(&signer)
            .copied()
            .unwrap_or((0, 0));
        if self.future_len >= MAX_FUTURE
            || self.future_bytes + size > MAX_FUTURE_BYTES
            || count >= MAX_FUTURE_PER_SIGNER
            || bytes + size > MAX_FUTURE_BYTES_PER_SIGNER
        {
            return;
        }
        self.future_len += 1;
        self.future_bytes += size;
        self.future_by_signer
            .insert(signer, (count + 1, bytes + size));
        self.future.entry(epoch).or_default().push(msg);
    }

    fn check_signed<M: Signed>(
        &self,
        message: &M,
        network_id: &[u8],
        valset_hash: &[u8],
    ) -> Result<(), Rejected> {
        if !self.config.network_id.is(network_id) {
            return Err(Rejected::WrongNetwork);
        }
        if valset_hash != self.members.hash() {
            return Err(Rejected::OtherSet);
        }
        if self.members.index_of(message.signer_bytes()).is_none() {
            return Err(Rejected::NotAMember);
        }
        message.verify_signature().map_err(Rejected::from)
    }

    /// Takes in evidence; `true` if it proves an offence not known yet within the age window
    /// (then it is stored and later included). Further evidence of a known offence is dropped.
    fn add_evidence(&mut self, item: v1::Evidence) -> bool {
        let Some(offence) = Offence::of(&item).filter(|o| o.is_fresh_at(self.height)) else {
            return false;
        };
        if !self.known_offences.insert(offence.clone()) {
            return false;
        }
        tracing::warn!(
            offender = %hex::encode(&offence.offender),
            epoch = offence.epoch,
            kind = ?offence.kind,
            "evidence of misbehaviour found"
        );
        self.actions.push(Action::StoreEvidence(item.clone()));
        self.pending_evidence.push(item);
        true
    }

    /// Whether evidence of `offence` is held already.
    fn knows(&self, offence: &Offence) -> bool {
        self.known_offences.contains(offence)
    }

    /// Logs and feeds a checked proposal; `valid` is known only when replaying.
    fn take_proposal(
        &mut self,
        value: v1::ProposedValue,
        valid: Option<bool>,
    ) -> Result<(), EngineError> {
        let (Some(proposal), Some(snapshot)) = (value.proposal.clone(), value.snapshot.clone())
        else {
            return Ok(());
        };
        let valid = match valid {
            Some(valid) => valid,
            None => match self.app.check_value(&self.at(), &snapshot, proposal.round) {
                Ok(_) => {
                    tracing::debug!(
                        epoch = self.height,
                        round = proposal.round,
                        "valid proposal"
                    );
                    true
                }
                Err(e) => {
                    tracing::info!(epoch = self.height, round = proposal.round, error = %e, "invalid snapshot proposed");
                    false
                }
            },
        };
        self.log(
            v1::wal_entry::Kind::Proposal(v1::WalProposal {
                value: Some(value),
                valid,
            }),
            false,
        );
        let Some(core_proposal) = wire::core_proposal(&self.members, &proposal) else {
            return Ok(());
        };
        let value_id = core_proposal.value;
        self.bodies.entry(value_id).or_insert(snapshot);
        self.proposals
            .entry(proposal.round)
            .or_default()
            .push(proposal);
        let outputs = self.core.handle(Input::Proposal {
            proposal: core_proposal,
            valid,
        });
        self.perform(outputs)
    }

    fn take_vote(&mut self, vote: v1::Vote) -> Result<(), EngineError> {
        let Some(core_vote) = wire::core_vote(&self.members, &vote) else {
            return Ok(());
        };
        self.log(v1::wal_entry::Kind::Vote(vote.clone()), false);
        let slot = (vote.round, vote.vote_type, vote.validator.clone());
        let first = self
            .votes
            .entry(slot.clone())
            .or_insert_with(|| vote.clone())
            .clone();
        if first != vote {
            self.conflicting.entry(slot).or_insert_with(|| vote.clone());
        }
        let outputs = self.core.handle(Input::Vote(core_vote));
        for output in &outputs {
            if let Output::DuplicateVote(..) = output
                && first != vote
            {
                let item = evidence::duplicate_vote(first.clone(), vote.clone());
                if self.add_evidence(item.clone()) && !self.replaying {
                    self.actions.push(Action::Broadcast(message(
                        v1::consensus_message::Body::Evidence(item),
                    )));
                }
            }
        }
        self.perform(outputs)
    }

    /// Signs `message` unless a different one was signed for the same (round, step); also says
    /// whether this very message was signed before (then the log holds it).
    fn sign_guarded<M: Signed>(
        &mut self,
        slot: (u32, TimeoutStep),
        mut msg: M,
    ) -> Option<(M, bool)> {
        let keypair = self.keypair.as_ref()?;
        msg.set_signer(&keypair.public());
        msg.signature_mut().clear();
        let digest = msg.signing_digest();
        match self.signed.get(&slot) {
            Some(previous) if *previous != digest => {
                tracing::error!(
                    epoch = self.height,
                    round = slot.0,
                    step = ?slot.1,
                    "refusing to sign a second, different message for one step"
                );
                return None;
            }
            _ => {}
        }
        let before = self.signed.insert(slot, digest).is_some();
        msg.sign(keypair);
        Some((msg, before))
    }

    fn perform(&mut self, outputs: Vec<Output>) -> Result<(), EngineError> {
        for output in outputs {
            match output {
                Output::Propose(proposal) => self.propose(proposal),
                Output::Vote(vote) => {
                    let Some(wire) = wire::wire_vote(self.config.network_id, &self.members, &vote)
                    else {
                        continue;
                    };
                    let step = TimeoutStep::of_vote(wire.vote_type);
                    let Some((signed, logged)) = self.sign_guarded((vote.round, step), wire) else {
                        continue;
                    };
                    self.log_own(v1::wal_entry::Kind::Vote(signed.clone()), logged);
                    self.votes
                        .entry((signed.round, signed.vote_type, signed.validator.clone()))
                        .or_insert_with(|| signed.clone());
                    if self.config.equivocate && !signed.value_id.is_empty() {
                        let twin = self.equivocation(&signed);
                        self.actions.push(Action::Broadcast(twin));
                    }
                    let msg = message(v1::consensus_message::Body::Vote(signed));
                    self.own.push(msg.clone());
                    self.actions.push(Action::Broadcast(msg));
                }
                Output::ScheduleTimeout { timeout, after_ms } => {
                    self.actions.push(Action::Schedule { timeout, after_ms });
                }
                Output::GetValue { round } => self.actions.push(Action::NeedValue {
                    epoch: self.height,
                    round,
                }),
                Output::Decided {
                    round,
                    value,
                    precommits,
                } => {
                    let wire: Vec<v1::Vote> = precommits
                        .iter()
                        .filter_map(|p| {
                            let key = self.members.key(p.voter)?.to_bytes().to_vec();
                            self.votes
                                .get(&(round, v1::VoteType::Precommit as i32, key))
                                .filter(|v| v.value_id == value)
                                .cloned()
                        })
                        .collect();
                    let (Some(cert), Some(snapshot)) =
                        (certificate::build(&wire), self.bodies.get(&value).cloned())
                    else {
                        return Err(EngineError::Wal {
                            epoch: self.height,
                            reason: "decided without the value or its precommits".into(),
                        });
                    };
                    let finalized = v1::FinalizedSnapshot {
                        snapshot: Some(snapshot),
                        certificate: Some(cert.clone()),
                    };
                    // Every validator that saw the precommits decides by itself; the round's
                    // proposer alone gossips the certificate, for followers and late nodes (the
                    // same bytes from several deciders would only be duplicates).
                    let announce =
                        self.me() == Some(self.members.set().proposer(self.height, round));
                    return self.finalize(finalized, announce);
                }
                Output::DuplicateVote(..) => {}
                Output::DuplicateProposal(first, second) => {
                    let (Some(a), Some(b)) =
                        (self.find_proposal(&first), self.find_proposal(&second))
                    else {
                        continue;
                    };
                    let item = evidence::duplicate_proposal(a, b);
                    if self.add_evidence(item.clone()) && !self.replaying {
                        self.actions.push(Action::Broadcast(message(
                            v1::consensus_message::Body::Evidence(item),
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// A nil vote for the same step as `vote`, signed past the guard (test-only misbehaviour).
    fn equivocation(&self, vote: &v1::Vote) -> v1::ConsensusMessage {
        let mut twin = vote.clone();
        twin.value_id.clear();
        twin.signature.clear();
        if let Some(keypair) = &self.keypair {
            twin.sign(keypair);
        }
        tracing::warn!(
            epoch = vote.epoch,
            round = vote.round,
            "test mode: equivocating"
        );
        message(v1::consensus_message::Body::Vote(twin))
    }

    fn find_proposal(&self, proposal: &Proposal) -> Option<v1::Proposal> {
        self.proposals
            .get(&proposal.round)?
            .iter()
            .find(|p| p.value_id == proposal.value && p.pol_round == proposal.pol_round)
            .cloned()
    }

    fn propose(&mut self, proposal: Proposal) {
        let Some(snapshot) = self.bodies.get(&proposal.value).cloned() else {
            tracing::error!(
                epoch = self.height,
                round = proposal.round,
                "no body for own proposal"
            );
            return;
        };
        let Some(wire) = wire::wire_proposal(self.config.network_id, &self.members, &proposal)
        else {
            return;
        };
        let Some((signed, logged)) =
            self.sign_guarded((proposal.round, TimeoutStep::Propose), wire)
        else {
            return;
        };
        let value = v1::ProposedValue {
            proposal: Some(signed.clone()),
            snapshot: Some(snapshot),
        };
        self.log_own(
            v1::wal_entry::Kind::Proposal(v1::WalProposal {
                value: Some(value.clone()),
                valid: true,
            }),
            logged,
        );
        let known = self.proposals.entry(proposal.round).or_default();
        if !known.contains(&signed) {
            known.push(signed);
        }
        let msg = message(v1::consensus_message::Body::Proposal(value));
        self.own.push(msg.clone());
        self.actions.push(Action::Broadcast(msg));
    }

    /// Takes a finalized snapshot of the current epoch (decided here or fetched from a peer):
    /// checks and applies it, asks for it to be stored, and moves to the next epoch. A snapshot
    /// that does not check is refused (no actions).
    pub fn apply_finalized(
        &mut self,
        finalized: v1::FinalizedSnapshot,
    ) -> Result<Vec<Action>, EngineError> {
        self.call(|engine| engine.finalize(finalized, false))
    }

    /// Like [`Engine::apply_finalized`]; with `announce`, the certificate is also gossiped once it
    /// is stored.
    fn finalize(
        &mut self,
        finalized: v1::FinalizedSnapshot,
        announce: bool,
    ) -> Result<(), EngineError> {
        let (Some(snapshot), Some(cert)) = (&finalized.snapshot, &finalized.certificate) else {
            return Ok(());
        };
        let epoch = self.height;
        let round = cert.round;
        let hash = self.app.value_id(snapshot);
        let next = self.app.next_validators(snapshot);
        let included: BTreeSet<Offence> =
            snapshot.evidence.iter().filter_map(Offence::of).collect();
        let at = Height {
            network_id: self.config.network_id,
            epoch: self.height,
            parent: self.parent,
            members: &self.members,
        };
        let state = match self.app.commit(&at, &finalized) {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(epoch, reason = %e, "finalized snapshot refused");
                return Ok(());
            }
        };
        let next = next
            .map(Members::new)
            .transpose()?
            .unwrap_or_else(|| self.members.clone());
        let certificate = announce.then(|| cert.clone());
        self.actions.push(Action::Commit { finalized, state });
        if let Some(cert) = certificate {
            self.actions.push(Action::Broadcast(message(
                v1::consensus_message::Body::Certificate(cert),
            )));
        }
        self.height += 1;
        // Evidence of offences the snapshot punished, and evidence too old to include, is done.
        let height = self.height;
        let (done, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_evidence)
            .into_iter()
            .partition(|e| {
                Offence::of(e).is_none_or(|o| included.contains(&o) || !o.is_fresh_at(height))
            });
        self.pending_evidence = kept;
        self.known_offences.extend(included);
        self.known_offences.retain(|o| o.is_fresh_at(height));
        if !done.is_empty() {
            self.actions.push(Action::ForgetEvidence(done));
        }
        self.parent = hash;
        self.members = next;
        self.reset_core();
        self.actions.push(Action::Committed { epoch, round, hash });
        // Messages held for the new height.
        let held = self.future.remove(&self.height).unwrap_or_default();
        self.future.retain(|&e, _| e > self.height);
        self.future_len = self.future.values().map(Vec::len).sum();
        self.future_bytes = 0;
        self.future_by_signer.clear();
        let still: Vec<(Option<Vec<u8>>, usize)> = self
            .future
            .values()
            .flatten()
            .map(|m| (future_signer(m), m.encoded_len()))
            .collect();
        for (signer, size) in still {
            self.future_bytes += size;
            if let Some(signer) = signer {
                let (count, bytes) = self.future_by_signer.entry(signer).or_default();
                *count += 1;
                *bytes += size;
            }
        }
        for msg in held {
            if let Ok(Err(e)) = self.check(msg) {
                tracing::warn!(epoch = self.height, error = %e, "a held message failed");
            }
        }
        Ok(())
    }

    /// Messages held for later heights: how many, and their bytes.
    pub fn held_for_later(&self) -> (usize, usize) {
        (self.future_len, self.future_bytes)
    }

    /// Own messages of this epoch (votes, and the proposal when this node proposed), to send again
    /// to peers that may have missed them. Only own ones: resending everyone's votes, or every
    /// proposal received, multiplies the traffic by the size of the set (64 validators sharing two
    /// cores never got past epoch 2 that way).
    ///
    /// Also the prevotes of the polka behind this node's valid value, if it has one: a validator
    /// that restarted without its log, or missed that round, cannot accept the value re-proposed
    /// on that proof without them (its own lost prevote may be among them), and without it the
    /// others may never reach a quorum again.
    pub fn rebroadcast(&self) -> Vec<v1::ConsensusMessage> {
        if !self.started {
            return Vec::new();
        }
        let mut out = self.own.clone();
        if let Some((value, round)) = self.core.valid() {
            let proof = self
                .votes
                .values()
                .chain(self.conflicting.values())
                .filter(|v| {
                    v.round == round
                        && v.vote_type == v1::VoteType::Prevote as i32
                        && v.value_id.as_slice() == value.as_slice()
                })
                .filter(|v| !out.iter().any(|m| is_vote(m, v)));
            let proof: Vec<v1::ConsensusMessage> = proof
                .map(|v| message(v1::consensus_message::Body::Vote(v.clone())))
                .collect();
            out.extend(proof);
        }
        out
    }

    /// Evidence not yet included in a finalized snapshot.
    pub fn pending_evidence(&self) -> &[v1::Evidence] {
        &self.pending_evidence
    }

    /// Whether this node holds a key of the current validator set.
    pub fn is_validator(&self) -> bool {
        self.me().is_some()
    }
}
