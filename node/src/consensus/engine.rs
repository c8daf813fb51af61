//! The consensus engine of one node: the pure [`Core`] plus everything around it that is still
//! free of I/O timing: wire messages in and out, signatures, the write-ahead log, the signer's
//! double-sign guard, certificates, evidence, and moving the ledger head.
//!
//! Every input is logged before the core sees it, and every own signature is synced to the log
//! before the message is handed out, so a restarted engine replays to the same state and re-sends
//! the same messages. The async driver only moves bytes and fires timers.

use std::collections::{BTreeMap, HashMap, HashSet};

use meshmind_protocols::{Keypair, Signed, Validate, hash, v1};

use super::certificate;
use super::core::{Core, Input, Output, Proposal, Timeout, TimeoutConfig, TimeoutStep};
use super::evidence;
use super::members::{Members, MembersError};
use super::votes::ValueId;
use super::wire;
use crate::chain::snapshot::{self, Expect};
use crate::chain::verify::{Extends, check_finalized};
use crate::ledger::{Head, Ledger, LedgerError};
use crate::state::State;

/// Most messages held for epochs this node has not reached yet.
const MAX_FUTURE: usize = 4096;

/// The persistence the engine needs; [`Ledger`] is the real one, tests wrap it to crash.
pub trait Store {
    /// See [`Ledger::wal_append`].
    fn wal_append(&self, epoch: u64, entry: &v1::WalEntry, sync: bool) -> Result<(), LedgerError>;
    /// See [`Ledger::commit`].
    fn commit(&self, finalized: &v1::FinalizedSnapshot, economy: &[u8]) -> Result<(), LedgerError>;
    /// See [`Ledger::add_evidence`].
    fn add_evidence(&self, evidence: &v1::Evidence) -> Result<bool, LedgerError>;
    /// The ledger underneath, for reads.
    fn ledger(&self) -> &Ledger;
}

impl Store for Ledger {
    fn wal_append(&self, epoch: u64, entry: &v1::WalEntry, sync: bool) -> Result<(), LedgerError> {
        Ledger::wal_append(self, epoch, entry, sync)
    }
    fn commit(&self, finalized: &v1::FinalizedSnapshot, economy: &[u8]) -> Result<(), LedgerError> {
        Ledger::commit(self, finalized, economy)
    }
    fn add_evidence(&self, evidence: &v1::Evidence) -> Result<bool, LedgerError> {
        Ledger::add_evidence(self, evidence)
    }
    fn ledger(&self) -> &Ledger {
        self
    }
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn wal_append(&self, epoch: u64, entry: &v1::WalEntry, sync: bool) -> Result<(), LedgerError> {
        (**self).wal_append(epoch, entry, sync)
    }
    fn commit(&self, finalized: &v1::FinalizedSnapshot, economy: &[u8]) -> Result<(), LedgerError> {
        (**self).commit(finalized, economy)
    }
    fn add_evidence(&self, evidence: &v1::Evidence) -> Result<bool, LedgerError> {
        (**self).add_evidence(evidence)
    }
    fn ledger(&self) -> &Ledger {
        (**self).ledger()
    }
}

/// A failure the node cannot continue past (the store), as opposed to a bad message.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The ledger failed; the engine must be rebuilt from disk.
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
#[error("{0}")]
pub struct Rejected(pub String);

/// What a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and new: forward it.
    Accept,
    /// Harmless but useless (old, duplicate, or held for later): do not forward.
    Ignore,
}

// Actions live for one step of the driver; boxing would only add an allocation per message.
// Actions live for one driver step; boxing would only add an allocation per message.
/// What the driver must do.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send to the other validators.
    Broadcast(v1::ConsensusMessage),
    /// Call [`Engine::on_timeout`] with this after `after_ms`.
    Schedule {
        /// Which timeout.
        timeout: Timeout,
        /// Delay.
        after_ms: u64,
    },
    /// Call [`Engine::on_value`] with the weight reveals this node holds for the epoch.
    NeedValue {
        /// Epoch.
        epoch: u64,
        /// Round.
        round: u32,
    },
    /// An epoch was finalized and stored.
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
    pub network_id: [u8; 32],
    /// The validators of epoch 0.
    pub genesis: Members,
    /// Step timeouts.
    pub timeouts: TimeoutConfig,
    /// Test-only misbehaviour: with every vote for a value, also sign and send a nil vote for the
    /// same step (an equivocation the others must turn into evidence). Never set it on a real node.
    pub equivocate: bool,
    /// The economy at genesis.
    pub economy: State,
    /// Emission of one epoch.
    pub emission: u64,
}

/// The consensus engine of one node (a validator when it has a key in the set, else a follower).
pub struct Engine<S: Store> {
    store: S,
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
    /// Own signatures of this height: (round, step) -> digest.
    signed: HashMap<(u32, TimeoutStep), [u8; 32]>,
    /// Own signed messages of this height, for rebroadcast.
    own: Vec<v1::ConsensusMessage>,
    /// Rounds whose value this node already chose.
    valued: HashSet<u32>,
    /// Evidence not yet in a finalized snapshot.
    pending_evidence: Vec<v1::Evidence>,
    /// The economy after the head.
    economy: State,
    future: BTreeMap<u64, Vec<v1::ConsensusMessage>>,
    future_len: usize,
    replaying: bool,
}

fn message(body: v1::consensus_message::Body) -> v1::ConsensusMessage {
    v1::ConsensusMessage { body: Some(body) }
}

fn entry(kind: v1::wal_entry::Kind) -> v1::WalEntry {
    v1::WalEntry { kind: Some(kind) }
}

impl<S: Store> Engine<S> {
    /// Opens the engine at the epoch after the ledger head and replays that epoch's WAL.
    pub fn open(
        store: S,
        keypair: Option<Keypair>,
        config: EngineConfig,
    ) -> Result<(Self, Vec<Action>), EngineError> {
        let ledger = store.ledger();
        let head = ledger.head()?;
        let members = match ledger.next_validators()? {
            Some(set) if head.is_some() => Members::new(set)?,
            _ => config.genesis.clone(),
        };
        let height = head.map_or(0, |h| h.epoch + 1);
        let parent = head.map_or(config.network_id, |h| h.hash);
        let pending_evidence = ledger.evidence()?;
        let economy = load_economy(ledger, &config, head)?;
        let core = Core::new(None, height, members.set().clone(), config.timeouts);
        let mut engine = Self {
            store,
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
            signed: HashMap::new(),
            own: Vec::new(),
            valued: HashSet::new(),
            pending_evidence,
            economy,
            future: BTreeMap::new(),
            future_len: 0,
            replaying: false,
        };
        engine.reset_core();
        let actions = engine.replay()?;
        Ok((engine, actions))
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
        self.signed.clear();
        self.own.clear();
        self.valued.clear();
    }

    /// Replays the WAL of the current height through the core; own signatures found in it guard
    /// against signing anything different after the restart.
    fn replay(&mut self) -> Result<Vec<Action>, EngineError> {
        let wal = self.store.ledger().wal(self.height)?;
        if wal.is_empty() {
            return Ok(Vec::new());
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
        let mut actions = Vec::new();
        let result = (|| {
            for item in wal {
                let epoch = self.height;
                let kind = item.kind.ok_or(EngineError::Wal {
                    epoch,
                    reason: "empty record".into(),
                })?;
                match kind {
                    v1::wal_entry::Kind::Start(_) => actions.extend(self.start()?),
                    v1::wal_entry::Kind::Proposal(p) => {
                        let value = p.value.ok_or(EngineError::Wal {
                            epoch,
                            reason: "proposal record without value".into(),
                        })?;
                        actions.extend(self.take_proposal(value, Some(p.valid))?);
                    }
                    v1::wal_entry::Kind::Vote(vote) => {
                        actions.extend(self.take_vote(vote)?);
                    }
                    v1::wal_entry::Kind::Timeout(t) => {
                        let step = TimeoutStep::from_wire(t.step).ok_or(EngineError::Wal {
                            epoch,
                            reason: format!("timeout step {}", t.step),
                        })?;
                        actions.extend(self.on_timeout(Timeout {
                            height: epoch,
                            round: t.round,
                            step,
                        })?);
                    }
                    v1::wal_entry::Kind::Value(v) => {
                        let snapshot = v.snapshot.ok_or(EngineError::Wal {
                            epoch,
                            reason: "value record without snapshot".into(),
                        })?;
                        actions.extend(self.use_value(v.round, snapshot)?);
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
        actions.retain(|a| !matches!(a, Action::NeedValue { round, .. } if valued.contains(round)));
        tracing::info!(
            epoch = self.height,
            round = self.core.round(),
            "replayed the consensus WAL"
        );
        Ok(actions)
    }

    fn log(&self, kind: v1::wal_entry::Kind, sync: bool) -> Result<(), EngineError> {
        if self.replaying {
            return Ok(());
        }
        self.store.wal_append(self.height, &entry(kind), sync)?;
        Ok(())
    }

    /// What a snapshot of the current epoch must chain to (the next validator set follows from the
    /// stakes after it).
    fn expect(&self) -> Expect<'_> {
        Expect {
            network_id: self.config.network_id,
            epoch: self.height,
            parent_hash: self.parent,
            members: &self.members,
            state: &self.economy,
            emission: self.config.emission,
        }
    }

    /// The economy after the head.
    pub fn economy(&self) -> &State {
        &self.economy
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

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Starts deciding the current epoch (once it has ended).
    pub fn start(&mut self) -> Result<Vec<Action>, EngineError> {
        if self.started {
            return Ok(Vec::new());
        }
        self.log(v1::wal_entry::Kind::Start(self.height), false)?;
        self.started = true;
        let mut actions = Vec::new();
        let outputs = self.core.handle(Input::Start);
        self.perform(outputs, &mut actions)?;
        // Messages that arrived before the start count now.
        Ok(actions)
    }

    /// A timeout the driver scheduled fired.
    pub fn on_timeout(&mut self, timeout: Timeout) -> Result<Vec<Action>, EngineError> {
        if timeout.height != self.height || !self.started {
            return Ok(Vec::new());
        }
        tracing::debug!(epoch = self.height, round = timeout.round, step = ?timeout.step, "timeout");
        self.log(
            v1::wal_entry::Kind::Timeout(v1::WalTimeout {
                round: timeout.round,
                step: timeout.step.to_wire(),
            }),
            false,
        )?;
        let mut actions = Vec::new();
        let outputs = self.core.handle(Input::Timeout(timeout));
        self.perform(outputs, &mut actions)?;
        Ok(actions)
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
        let expect = self.expect();
        let snapshot = snapshot::build(
            &expect,
            &keypair.public(),
            reveals,
            self.pending_evidence.clone(),
            transactions,
        );
        // Never propose what this node would refuse (for example, too few weight vectors before
        // the round from which fewer are allowed): the round times out and a later one proposes.
        if let Err(e) = snapshot::check(&snapshot, &expect, round) {
            tracing::info!(epoch = self.height, round, reason = %e, "no valid snapshot to propose in this round");
            return Ok(Vec::new());
        }
        self.use_value(round, snapshot)
    }

    fn use_value(
        &mut self,
        round: u32,
        snapshot: v1::Snapshot,
    ) -> Result<Vec<Action>, EngineError> {
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
        )?;
        self.valued.insert(round);
        let value = snapshot::value_id(&snapshot);
        self.bodies.insert(value, snapshot);
        let mut actions = Vec::new();
        let outputs = self.core.handle(Input::Value { round, value });
        self.perform(outputs, &mut actions)?;
        Ok(actions)
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
        use v1::consensus_message::Body;
        msg.validate().map_err(|e| Rejected(e.to_string()))?;
        let network = self.config.network_id;
        let epoch = match &msg.body {
            Some(Body::Proposal(p)) => p.proposal.as_ref().map_or(0, |p| p.epoch),
            Some(Body::Vote(v)) => v.epoch,
            Some(Body::Certificate(c)) => c.epoch,
            Some(Body::Evidence(_)) | None => self.height,
        };
        if epoch < self.height {
            return Ok(Ok((Verdict::Ignore, Vec::new())));
        }
        if epoch > self.height {
            // Handled when the height is reached; a certificate from ahead means this node is behind.
            // Messages signed by the current set are forwarded meanwhile: in a large mesh, peers a
            // few hops away depend on this node passing on the next epoch's votes.
            let verdict = if self.signed_by_current_set(&msg)? {
                Verdict::Accept
            } else {
                Verdict::Ignore
            };
            let behind = matches!(msg.body, Some(Body::Certificate(_)));
            if self.future_len < MAX_FUTURE && epoch <= self.height + 2 && !behind {
                self.future.entry(epoch).or_default().push(msg);
                self.future_len += 1;
            }
            let actions = if behind || epoch > self.height + 1 {
                vec![Action::Behind { epoch: self.height }]
            } else {
                Vec::new()
            };
            return Ok(Ok((verdict, actions)));
        }
        match msg.body {
            Some(Body::Proposal(value)) => {
                let proposal = value
                    .proposal
                    .as_ref()
                    .ok_or_else(|| Rejected("proposal missing".into()))?;
                // An exact repeat is dropped before any signature check or hashing.
                if self
                    .proposals
                    .get(&proposal.round)
                    .is_some_and(|known| known.contains(proposal))
                {
                    return Ok(Ok((Verdict::Ignore, Vec::new())));
                }
                self.check_signed(proposal, &proposal.network_id, &proposal.valset_hash)?;
                let snapshot = value
                    .snapshot
                    .as_ref()
                    .ok_or_else(|| Rejected("snapshot missing".into()))?;
                if snapshot::value_id(snapshot) != proposal.value_id.as_slice() {
                    return Err(Rejected("the snapshot is not the proposed value".into()));
                }
                Ok(self
                    .take_proposal(value, None)
                    .map(|a| (Verdict::Accept, a)))
            }
            Some(Body::Vote(vote)) => {
                // An exact repeat (gossip and resends deliver many) costs no signature check.
                let slot = (vote.round, vote.vote_type, vote.validator.clone());
                if self.votes.get(&slot) == Some(&vote) {
                    return Ok(Ok((Verdict::Ignore, Vec::new())));
                }
                self.check_signed(&vote, &vote.network_id, &vote.valset_hash)?;
                if wire::core_vote(&self.members, &vote).is_none() {
                    return Err(Rejected("vote fields do not fit the validator set".into()));
                }
                Ok(self.take_vote(vote).map(|a| (Verdict::Accept, a)))
            }
            Some(Body::Certificate(cert)) => {
                let Ok(value) = <[u8; 32]>::try_from(cert.value_id.as_slice()) else {
                    return Err(Rejected("certificate value id is not 32 bytes".into()));
                };
                certificate::verify(&cert, network, &self.members, self.height, &value)
                    .map_err(|e| Rejected(e.to_string()))?;
                match self.bodies.get(&value).cloned() {
                    Some(snapshot) => {
                        let finalized = v1::FinalizedSnapshot {
                            snapshot: Some(snapshot),
                            certificate: Some(cert),
                        };
                        Ok(self
                            .apply_finalized(finalized)
                            .map(|a| (Verdict::Accept, a)))
                    }
                    None => Ok(Ok((
                        Verdict::Accept,
                        vec![Action::Behind { epoch: self.height }],
                    ))),
                }
            }
            Some(Body::Evidence(item)) => {
                evidence::check(&item, network, &self.members)
                    .map_err(|e| Rejected(e.to_string()))?;
                Ok(self.add_evidence(item).map(|fresh| {
                    let verdict = if fresh {
                        Verdict::Accept
                    } else {
                        Verdict::Ignore
                    };
                    (verdict, Vec::new())
                }))
            }
            None => Err(Rejected("empty message".into())),
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
                    .map_err(|_| Rejected("certificate value id is not 32 bytes".into()))?;
                certificate::verify(c, self.config.network_id, &self.members, c.epoch, &value)
                    .map(|()| true)
                    .map_err(|e| Rejected(e.to_string()))
            }
            _ => Ok(false),
        }
    }

    fn check_signed<M: Signed>(
        &self,
        message: &M,
        network_id: &[u8],
        valset_hash: &[u8],
    ) -> Result<(), Rejected> {
        if network_id != self.config.network_id {
            return Err(Rejected("message of another network".into()));
        }
        if valset_hash != self.members.hash() {
            return Err(Rejected("message names another validator set".into()));
        }
        if self.members.index_of(message.signer_bytes()).is_none() {
            return Err(Rejected("signer is not a validator of this epoch".into()));
        }
        message
            .verify_signature()
            .map_err(|e| Rejected(e.to_string()))
    }

    fn add_evidence(&mut self, item: v1::Evidence) -> Result<bool, EngineError> {
        let fresh = self.store.add_evidence(&item)?;
        if fresh {
            tracing::warn!(evidence = %hex::encode(hash(&item).as_bytes()), "evidence of misbehaviour stored");
            self.pending_evidence.push(item);
        }
        Ok(fresh)
    }

    /// Logs and feeds a checked proposal; `valid` is known only when replaying.
    fn take_proposal(
        &mut self,
        value: v1::ProposedValue,
        valid: Option<bool>,
    ) -> Result<Vec<Action>, EngineError> {
        let (Some(proposal), Some(snapshot)) = (value.proposal.clone(), value.snapshot.clone())
        else {
            return Ok(Vec::new());
        };
        let valid = match valid {
            Some(valid) => valid,
            None => {
                let expect = self.expect();
                match snapshot::check(&snapshot, &expect, proposal.round) {
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
                }
            }
        };
        self.log(
            v1::wal_entry::Kind::Proposal(v1::WalProposal {
                value: Some(value),
                valid,
            }),
            false,
        )?;
        let Some(core_proposal) = wire::core_proposal(&self.members, &proposal) else {
            return Ok(Vec::new());
        };
        let value_id = core_proposal.value;
        self.bodies.entry(value_id).or_insert(snapshot);
        self.proposals
            .entry(proposal.round)
            .or_default()
            .push(proposal);
        let mut actions = Vec::new();
        let outputs = self.core.handle(Input::Proposal {
            proposal: core_proposal,
            valid,
        });
        self.perform(outputs, &mut actions)?;
        Ok(actions)
    }

    fn take_vote(&mut self, vote: v1::Vote) -> Result<Vec<Action>, EngineError> {
        let Some(core_vote) = wire::core_vote(&self.members, &vote) else {
            return Ok(Vec::new());
        };
        self.log(v1::wal_entry::Kind::Vote(vote.clone()), false)?;
        let slot = (vote.round, vote.vote_type, vote.validator.clone());
        let first = self
            .votes
            .entry(slot)
            .or_insert_with(|| vote.clone())
            .clone();
        let mut actions = Vec::new();
        let outputs = self.core.handle(Input::Vote(core_vote));
        for output in &outputs {
            if let Output::DuplicateVote(..) = output
                && first != vote
            {
                let item = evidence::duplicate_vote(first.clone(), vote.clone());
                if self.add_evidence(item.clone())? && !self.replaying {
                    actions.push(Action::Broadcast(message(
                        v1::consensus_message::Body::Evidence(item),
                    )));
                }
            }
        }
        self.perform(outputs, &mut actions)?;
        Ok(actions)
    }

    /// Signs `message` unless a different one was signed for the same (round, step); logs it synced.
    fn sign_guarded<M: Signed>(&mut self, slot: (u32, TimeoutStep), mut msg: M) -> Option<M> {
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
        self.signed.insert(slot, digest);
        msg.sign(keypair);
        Some(msg)
    }

    fn perform(
        &mut self,
        outputs: Vec<Output>,
        actions: &mut Vec<Action>,
    ) -> Result<(), EngineError> {
        for output in outputs {
            match output {
                Output::Propose(proposal) => self.propose(proposal, actions)?,
                Output::Vote(vote) => {
                    let Some(wire) = wire::wire_vote(self.config.network_id, &self.members, &vote)
                    else {
                        continue;
                    };
                    let step = TimeoutStep::of_vote(wire.vote_type);
                    let Some(signed) = self.sign_guarded((vote.round, step), wire) else {
                        continue;
                    };
                    self.log(v1::wal_entry::Kind::Vote(signed.clone()), true)?;
                    self.votes
                        .entry((signed.round, signed.vote_type, signed.validator.clone()))
                        .or_insert_with(|| signed.clone());
                    if self.config.equivocate && !signed.value_id.is_empty() {
                        actions.push(Action::Broadcast(self.equivocation(&signed)));
                    }
                    let msg = message(v1::consensus_message::Body::Vote(signed));
                    self.own.push(msg.clone());
                    actions.push(Action::Broadcast(msg));
                }
                Output::ScheduleTimeout { timeout, after_ms } => {
                    actions.push(Action::Schedule { timeout, after_ms });
                }
                Output::GetValue { round } => actions.push(Action::NeedValue {
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
                    if self.me() == Some(self.members.set().proposer(self.height, round)) {
                        actions.push(Action::Broadcast(message(
                            v1::consensus_message::Body::Certificate(cert),
                        )));
                    }
                    actions.extend(self.apply_finalized(finalized)?);
                    return Ok(());
                }
                Output::DuplicateVote(..) => {}
                Output::DuplicateProposal(first, second) => {
                    let (Some(a), Some(b)) =
                        (self.find_proposal(&first), self.find_proposal(&second))
                    else {
                        continue;
                    };
                    let item = evidence::duplicate_proposal(a, b);
                    if self.add_evidence(item.clone())? && !self.replaying {
                        actions.push(Action::Broadcast(message(
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

    fn propose(
        &mut self,
        proposal: Proposal,
        actions: &mut Vec<Action>,
    ) -> Result<(), EngineError> {
        let Some(snapshot) = self.bodies.get(&proposal.value).cloned() else {
            tracing::error!(
                epoch = self.height,
                round = proposal.round,
                "no body for own proposal"
            );
            return Ok(());
        };
        let Some(wire) = wire::wire_proposal(self.config.network_id, &self.members, &proposal)
        else {
            return Ok(());
        };
        let Some(signed) = self.sign_guarded((proposal.round, TimeoutStep::Propose), wire) else {
            return Ok(());
        };
        let value = v1::ProposedValue {
            proposal: Some(signed.clone()),
            snapshot: Some(snapshot),
        };
        self.log(
            v1::wal_entry::Kind::Proposal(v1::WalProposal {
                value: Some(value.clone()),
                valid: true,
            }),
            true,
        )?;
        let known = self.proposals.entry(proposal.round).or_default();
        if !known.contains(&signed) {
            known.push(signed);
        }
        let msg = message(v1::consensus_message::Body::Proposal(value));
        self.own.push(msg.clone());
        actions.push(Action::Broadcast(msg));
        Ok(())
    }

    /// Stores a finalized snapshot of the current epoch (decided here or fetched from a peer) after
    /// checking it, and moves to the next epoch.
    pub fn apply_finalized(
        &mut self,
        finalized: v1::FinalizedSnapshot,
    ) -> Result<Vec<Action>, EngineError> {
        let economy = match self.check_finalized(&finalized) {
            Ok(economy) => economy,
            Err(reason) => {
                tracing::warn!(epoch = self.height, %reason, "finalized snapshot refused");
                return Ok(Vec::new());
            }
        };
        let (Some(snapshot), Some(cert)) = (&finalized.snapshot, &finalized.certificate) else {
            return Ok(Vec::new());
        };
        if let Err(e) = economy.check_invariants() {
            tracing::error!(epoch = self.height, error = %e, "the economy after this snapshot breaks an invariant");
        }
        self.store.commit(&finalized, &economy.to_bytes())?;
        self.economy = economy;
        let epoch = self.height;
        let round = cert.round;
        let hash = snapshot::value_id(snapshot);
        let next = snapshot
            .next_validators
            .clone()
            .map(Members::new)
            .transpose()?
            .unwrap_or_else(|| self.members.clone());
        let included: HashSet<_> = snapshot.evidence.iter().map(hash_of).collect();
        self.pending_evidence
            .retain(|e| !included.contains(&hash_of(e)));
        self.height += 1;
        self.parent = hash;
        self.members = next;
        self.reset_core();
        let mut actions = vec![Action::Committed { epoch, round, hash }];
        // Messages held for the new height.
        let held = self.future.remove(&self.height).unwrap_or_default();
        self.future.retain(|&e, _| e > self.height);
        self.future_len = self.future.values().map(Vec::len).sum();
        for msg in held {
            if let Ok(Ok((_, more))) = self.check_message(msg) {
                actions.extend(more);
            }
        }
        Ok(actions)
    }

    fn check_finalized(&self, finalized: &v1::FinalizedSnapshot) -> Result<State, String> {
        let at = Extends {
            network_id: self.config.network_id,
            epoch: self.height,
            parent: self.parent,
            members: &self.members,
            state: &self.economy,
            emission: self.config.emission,
        };
        check_finalized(finalized, &at).map(|(_, state)| state)
    }

    /// Own messages of this epoch (votes, and the proposal when this node proposed), to send again
    /// to peers that may have missed them. Only own ones: resending everyone's votes, or every
    /// proposal received, multiplies the traffic by the size of the set (64 validators sharing two
    /// cores never got past epoch 2 that way).
    pub fn rebroadcast(&self) -> Vec<v1::ConsensusMessage> {
        if !self.started {
            return Vec::new();
        }
        self.own.clone()
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

/// The economy after `head`: as stored beside it, or, when missing or unreadable (a ledger written
/// before the economy existed), rebuilt by replaying every finalized snapshot from genesis.
fn load_economy(
    ledger: &Ledger,
    config: &EngineConfig,
    head: Option<Head>,
) -> Result<State, EngineError> {
    let Some(head) = head else {
        return Ok(config.economy.clone());
    };
    if let Some(bytes) = ledger.economy()? {
        match State::from_bytes(&bytes) {
            Ok(state) if state.epoch == head.epoch + 1 => return Ok(state),
            Ok(state) => {
                tracing::warn!(
                    stored = state.epoch,
                    head = head.epoch,
                    "stored economy is not at the head; rebuilding"
                )
            }
            Err(e) => tracing::warn!(error = %e, "stored economy unreadable; rebuilding"),
        }
    }
    let mut state = config.economy.clone();
    for epoch in 0..=head.epoch {
        let Some(snapshot) = ledger.snapshot(epoch)? else {
            break;
        };
        for (i, tx) in snapshot.transactions.iter().enumerate() {
            if let Err(e) = state.apply(tx) {
                tracing::warn!(epoch, transaction = i, error = %e, "replaying the economy: transaction refused");
            }
        }
        state.end_epoch(&snapshot.weights, config.emission);
    }
    Ok(state)
}

fn hash_of(e: &v1::Evidence) -> [u8; 32] {
    *hash(e).as_bytes()
}
