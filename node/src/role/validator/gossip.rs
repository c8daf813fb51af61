//! Weight commitments and reveals on gossip: the board that checks and keeps them (every role runs
//! it as a service), and a validator's own publishing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use meshmind_p2p::{GossipMessage, NetworkError, NetworkHandle};
use meshmind_protocols::{
    DecodeError, PublicKey, SignatureError, Signed, Validate, ValidationError, decode, v1,
};
use prost::Message;

use super::weights::{RevealError, open};
use crate::clock::now_ms;
use crate::genesis::Genesis;
use crate::service::{Service, ServiceFuture};
use crate::topics::Topic;

/// Which half of commit-reveal a weights message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightKind {
    /// A commitment to a vector (epoch e).
    Commit,
    /// The vector that opens a commitment (epoch e + 1).
    Reveal,
}

impl WeightKind {
    /// The gossip topic of this kind of message on `subnet`.
    pub fn topic(self, subnet: u32) -> Topic {
        match self {
            WeightKind::Commit => Topic::WeightCommit(subnet),
            WeightKind::Reveal => Topic::WeightReveal(subnet),
        }
    }

    /// The kind carried on `topic` and its subnet, if it is a weights topic.
    pub fn of(topic: Topic) -> Option<(Self, u32)> {
        match topic {
            Topic::WeightCommit(s) => Some((WeightKind::Commit, s)),
            Topic::WeightReveal(s) => Some((WeightKind::Reveal, s)),
            _ => None,
        }
    }
}

/// Most distinct epochs of commitments held at once.
const KEEP_EPOCHS: u64 = 64;
/// Most commitments kept per epoch and subnet (one per permit holder, with room to spare).
const MAX_PER_EPOCH: usize = 4096;
/// Epochs before the current one whose commitments and reveals are kept, so a chain that lags
/// behind the clock still finds them for its snapshots.
pub const KEEP_BEHIND: u64 = 16;

/// Where a weights message arrived: the subnet whose topic carried it and the current epoch by
/// the node's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// The subnet of the topic.
    pub subnet: u32,
    /// The epoch now.
    pub epoch: u64,
}

/// Why a weights message is refused; its sender should be penalised.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WeightsError {
    /// The bytes do not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A field breaks the wire rules.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The signature or the signer is bad.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The signer may not set weights on the subnet (it holds no validator permit there, as far
    /// as this node knows).
    #[error("the signer may not set weights on this subnet")]
    NotASetter,
    /// The message names another subnet than the topic it came on.
    #[error("a message for subnet {found} on the topic of subnet {topic}")]
    WrongSubnet {
        /// The subnet in the message.
        found: u32,
        /// The subnet of the topic.
        topic: u32,
    },
    /// A commitment for an epoch other than the current or an adjacent one (dropped unpenalised:
    /// clocks differ a little).
    #[error("a commitment for epoch {epoch} at epoch {now}")]
    OutOfWindow {
        /// The commitment's epoch.
        epoch: u64,
        /// The receiver's epoch.
        now: u64,
    },
    /// The board holds commitments of as many epochs as it keeps.
    #[error("commitments of too many epochs held")]
    TooManyEpochs,
    /// The board holds as many commitments for the epoch as it keeps.
    #[error("too many commitments for one epoch")]
    TooManyInEpoch,
    /// A reveal arrived before (or without) its commitment.
    #[error("a reveal without a commitment")]
    NoCommitment,
    /// The reveal does not open its commitment.
    #[error(transparent)]
    Reveal(#[from] RevealError),
}

impl WeightsError {
    /// Whether the sender broke a rule no honest relay would (as opposed to a message that is
    /// late or early, or from a key this node does not know as a weight setter yet: sets change,
    /// and nodes learn of it at different times).
    pub fn penalise(&self) -> bool {
        !matches!(
            self,
            WeightsError::OutOfWindow { .. } | WeightsError::NotASetter
        )
    }
}

/// Weight vectors seen on the network, by epoch, subnet and validator, opened against their
/// commitments.
///
/// Only keys allowed to set weights (the validator permit holders of each subnet) are kept, one
/// vector per subnet each, only for the current epoch and its neighbours, and only for
/// [`KEEP_BEHIND`] epochs, so the board is bounded by the permits of the subnets followed.
#[derive(Debug, Default)]
pub struct WeightBoard {
    /// The keys allowed to set weights.
    setters: Setters,
    commits: BTreeMap<u64, BTreeMap<(u32, PublicKey), v1::WeightCommit>>,
    revealed: BTreeMap<u64, BTreeMap<(u32, PublicKey), v1::WeightReveal>>,
    /// This validator's own reveal waiting for the next epoch.
    own_pending: Option<v1::WeightReveal>,
    /// Subnets whose owner turned commit-reveal off: vectors come without commitments.
    open: BTreeSet<u32>,
}

/// What a gossip message on a weights topic did.
#[derive(Debug, PartialEq)]
pub enum WeightsEvent {
    /// A commitment was stored.
    Committed,
    /// A validator signed a second, different commitment for one epoch: the first stays, and
    /// this is the evidence.
    Equivocated(Box<v1::Evidence>),
    /// A reveal opened its commitment; the vector is now visible.
    Revealed,
}

/// Who may set weights.
#[derive(Debug)]
enum Setters {
    /// These keys, on any subnet (before the finalized economy is known).
    Anywhere(BTreeSet<PublicKey>),
    /// The validator permit holders of each subnet.
    Permits(BTreeMap<u32, BTreeSet<PublicKey>>),
}

impl Default for Setters {
    fn default() -> Self {
        Setters::Anywhere(BTreeSet::new())
    }
}

impl Setters {
    fn allows(&self, subnet: u32, key: &PublicKey) -> bool {
        match self {
            Setters::Anywhere(keys) => keys.contains(key),
            Setters::Permits(by_subnet) => by_subnet.get(&subnet).is_some_and(|k| k.contains(key)),
        }
    }
}

impl WeightBoard {
    /// An empty board that takes weights from `setters` on any subnet.
    pub fn new(setters: impl IntoIterator<Item = PublicKey>) -> Self {
        Self {
            setters: Setters::Anywhere(setters.into_iter().collect()),
            ..Self::default()
        }
    }

    /// Takes weights only from the holders of a validator permit on each subnet, as the
    /// finalized economy grants them (after each finalized epoch).
    pub fn set_permits(&mut self, permits: &BTreeMap<u32, BTreeSet<crate::state::Key>>) {
        let keys = |holders: &BTreeSet<crate::state::Key>| {
            holders
                .iter()
                .filter_map(|k| PublicKey::from_bytes(&k.0).ok())
                .collect()
        };
        self.setters = Setters::Permits(
            permits
                .iter()
                .map(|(&subnet, holders)| (subnet, keys(holders)))
                .collect(),
        );
    }

    /// Takes weights as the finalized `state` allows: from each subnet's permit holders, and
    /// without a commitment on the subnets whose owner turned commit-reveal off.
    pub fn follow(&mut self, state: &crate::state::State) {
        self.set_permits(&state.permit_holders());
        self.open = state
            .subnets
            .iter()
            .filter(|(_, s)| !s.params.commit_reveal)
            .map(|(&id, _)| id)
            .collect();
    }

    /// Handles a commitment or reveal from gossip; see [`WeightsError::penalise`] for which
    /// errors are the sender's fault.
    pub fn on_message(
        &mut self,
        kind: WeightKind,
        data: &[u8],
        at: Arrival,
    ) -> Result<WeightsEvent, WeightsError> {
        if kind == WeightKind::Commit {
            let commitment: v1::WeightCommit = decode(data)?;
            commitment.validate()?;
            if commitment.subnet != at.subnet {
                return Err(WeightsError::WrongSubnet {
                    found: commitment.subnet,
                    topic: at.subnet,
                });
            }
            let key = commitment.signer()?;
            if !self.setters.allows(commitment.subnet, &key) {
                return Err(WeightsError::NotASetter);
            }
            let epoch = commitment.epoch;
            if epoch.abs_diff(at.epoch) > 1 {
                return Err(WeightsError::OutOfWindow {
                    epoch,
                    now: at.epoch,
                });
            }
            commitment.verify_signature()?;
            if self.commits.len() >= KEEP_EPOCHS as usize && !self.commits.contains_key(&epoch) {
                return Err(WeightsError::TooManyEpochs);
            }
            let slot = (commitment.subnet, key);
            let by_key = self.commits.entry(epoch).or_default();
            if !by_key.contains_key(&slot)
                && by_key
                    .keys()
                    .filter(|(s, _)| *s == commitment.subnet)
                    .count()
                    >= MAX_PER_EPOCH
            {
                return Err(WeightsError::TooManyInEpoch);
            }
            if let Some(first) = by_key.get(&slot) {
                if *first == commitment {
                    return Ok(WeightsEvent::Committed);
                }
                if first.commit_hash != commitment.commit_hash {
                    let evidence = v1::Evidence {
                        kind: Some(v1::evidence::Kind::DuplicateWeightCommit(
                            v1::DuplicateWeightCommit {
                                first: Some(first.clone()),
                                second: Some(commitment),
                            },
                        )),
                    };
                    return Ok(WeightsEvent::Equivocated(Box::new(evidence)));
                }
            }
            by_key.insert(slot, commitment);
            Ok(WeightsEvent::Committed)
        } else {
            let reveal: v1::WeightReveal = decode(data)?;
            if reveal.subnet != at.subnet {
                return Err(WeightsError::WrongSubnet {
                    found: reveal.subnet,
                    topic: at.subnet,
                });
            }
            let slot = (reveal.subnet, reveal.signer()?);
            match self
                .commits
                .get(&reveal.epoch)
                .and_then(|by_key| by_key.get(&slot))
            {
                Some(commitment) => open(commitment, &reveal)?,
                None if self.open.contains(&reveal.subnet) => {
                    self.check_open_reveal(&reveal, &slot, at)?;
                }
                None => return Err(WeightsError::NoCommitment),
            }
            self.revealed
                .entry(reveal.epoch)
                .or_default()
                .entry(slot)
                .or_insert(reveal);
            Ok(WeightsEvent::Revealed)
        }
    }

    /// Checks a vector sent without a commitment on a subnet without commit-reveal, as a
    /// commitment is checked: from a setter, for an epoch next to now, within the board's bounds,
    /// signed. The first vector of a validator for an epoch stays.
    fn check_open_reveal(
        &self,
        reveal: &v1::WeightReveal,
        slot: &(u32, PublicKey),
        at: Arrival,
    ) -> Result<(), WeightsError> {
        reveal.validate()?;
        if !self.setters.allows(reveal.subnet, &slot.1) {
            return Err(WeightsError::NotASetter);
        }
        if reveal.epoch.abs_diff(at.epoch) > 1 {
            return Err(WeightsError::OutOfWindow {
                epoch: reveal.epoch,
                now: at.epoch,
            });
        }
        let held = self.revealed.get(&reveal.epoch);
        if held.is_none() && self.revealed.len() >= KEEP_EPOCHS as usize {
            return Err(WeightsError::TooManyEpochs);
        }
        let in_epoch = held.map_or(0, |by_key| {
            by_key.keys().filter(|(s, _)| *s == reveal.subnet).count()
        });
        if !held.is_some_and(|by_key| by_key.contains_key(slot)) && in_epoch >= MAX_PER_EPOCH {
            return Err(WeightsError::TooManyInEpoch);
        }
        reveal.verify_signature()?;
        Ok(())
    }

    /// The revealed vectors of `epoch` on `subnet`: validator -> (uid, weight) pairs.
    pub fn revealed(&self, epoch: u64, subnet: u32) -> BTreeMap<PublicKey, Vec<(u32, u16)>> {
        self.revealed
            .get(&epoch)
            .into_iter()
            .flatten()
            .filter(|((s, _), _)| *s == subnet)
            .map(|((_, key), reveal)| {
                let pairs = reveal
                    .uids
                    .iter()
                    .zip(&reveal.weights)
                    .map(|(&uid, &w)| (uid, u16::try_from(w).unwrap_or(u16::MAX)))
                    .collect();
                (*key, pairs)
            })
            .collect()
    }

    /// The signed reveals of commitments made in `epoch`, on every subnet, as a snapshot carries
    /// them.
    pub fn reveals(&self, epoch: u64) -> Vec<v1::WeightReveal> {
        self.revealed
            .get(&epoch)
            .map(|by_key| by_key.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Publishes the reveal kept from this validator's last commitment, if any (in an epoch it
    /// makes no new vector).
    pub async fn flush(
        &mut self,
        network: &NetworkHandle,
        subnet: u32,
    ) -> Result<(), NetworkError> {
        let Some(pending) = self.own_pending.take() else {
            return Ok(());
        };
        let topic = WeightKind::Reveal.topic(subnet).to_string();
        if let Err(e) = network.publish(&topic, pending.encode_to_vec()).await {
            self.own_pending = Some(pending);
            return Err(e);
        }
        Ok(())
    }

    /// Publishes this validator's vector at once, without a commitment (its subnet has
    /// commit-reveal off), after any reveal still kept from a commitment made before.
    pub async fn publish_open(
        &mut self,
        network: &NetworkHandle,
        subnet: u32,
        reveal: v1::WeightReveal,
    ) -> Result<(), NetworkError> {
        self.flush(network, subnet).await?;
        let topic = WeightKind::Reveal.topic(subnet).to_string();
        network.publish(&topic, reveal.encode_to_vec()).await
    }

    /// Forgets what is more than [`KEEP_BEHIND`] epochs older than `epoch`, the current one.
    pub fn advance_to(&mut self, epoch: u64) {
        self.prune_before(epoch.saturating_sub(KEEP_BEHIND));
    }

    /// Forgets commitments and reveals of epochs before `epoch` (once they can no longer be used).
    pub fn prune_before(&mut self, epoch: u64) {
        self.commits.retain(|&e, _| e >= epoch);
        self.revealed.retain(|&e, _| e >= epoch);
    }

    /// Publishes this validator's epoch: the reveal kept from the previous call, then `commitment`;
    /// `reveal` (made with it by [`super::weights::commit`]) is kept for the next call.
    pub async fn publish_epoch(
        &mut self,
        network: &NetworkHandle,
        subnet: u32,
        commitment: v1::WeightCommit,
        reveal: v1::WeightReveal,
    ) -> Result<(), NetworkError> {
        if let Some(pending) = self.own_pending.take()
            && let Err(e) = network
                .publish(
                    &WeightKind::Reveal.topic(subnet).to_string(),
                    pending.encode_to_vec(),
                )
                .await
        {
            // Kept for the next attempt.
            self.own_pending = Some(pending);
            return Err(e);
        }
        network
            .publish(
                &WeightKind::Commit.topic(subnet).to_string(),
                commitment.encode_to_vec(),
            )
            .await?;
        self.own_pending = Some(reveal);
        Ok(())
    }

    /// Handles a gossip message of `kind` and reports the verdict to the network, after
    /// forgetting epochs more than [`KEEP_BEHIND`] old.
    pub fn handle_gossip(
        &mut self,
        kind: WeightKind,
        message: GossipMessage,
        at: Arrival,
    ) -> Option<WeightsEvent> {
        self.advance_to(at.epoch);
        match self.on_message(kind, &message.data, at) {
            Ok(event) => {
                message.validation.accept();
                Some(event)
            }
            Err(reason) if reason.penalise() => {
                tracing::debug!(topic = %message.topic, %reason, "weights message rejected");
                message.validation.reject();
                None
            }
            Err(reason) => {
                tracing::debug!(topic = %message.topic, %reason, "weights message dropped");
                message.validation.ignore();
                None
            }
        }
    }
}

/// Where evidence of an equivocating weight commitment goes (consensus, on nodes that keep a
/// ledger).
pub type EvidenceSink = Box<dyn Fn(v1::Evidence) + Send + Sync>;

/// The commit-reveal gossip of some subnets, checked into a shared [`WeightBoard`], as one service
/// of a node (every role runs it, so every node forwards only valid weight messages).
pub struct WeightsService {
    board: Arc<Mutex<WeightBoard>>,
    subnets: Mutex<BTreeSet<u32>>,
    genesis: Genesis,
    evidence: Option<EvidenceSink>,
    /// On nodes that keep the ledger: the finalized economy, whose subnets created later are
    /// followed too, and where their topics are subscribed.
    follow: Option<(Arc<Mutex<crate::state::State>>, NetworkHandle)>,
}

impl WeightsService {
    /// Weights of `subnets` into `board`, epochs counted from `genesis`; equivocations go to
    /// `evidence`, if given.
    pub fn new(
        board: Arc<Mutex<WeightBoard>>,
        subnets: impl IntoIterator<Item = u32>,
        genesis: Genesis,
        evidence: Option<EvidenceSink>,
    ) -> Self {
        Self {
            board,
            subnets: Mutex::new(subnets.into_iter().collect()),
            genesis,
            evidence,
            follow: None,
        }
    }

    /// Also follows every subnet the finalized `economy` gains later, subscribing its weight
    /// topics on `network`.
    pub fn following(
        mut self,
        economy: Arc<Mutex<crate::state::State>>,
        network: meshmind_p2p::NetworkHandle,
    ) -> Self {
        self.follow = Some((economy, network));
        self
    }

    fn followed(&self) -> std::sync::MutexGuard<'_, BTreeSet<u32>> {
        self.subnets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes the weight topics of the economy's subnets not followed yet.
    async fn take_up(&self) {
        let Some((economy, network)) = &self.follow else {
            return;
        };
        let subnets: Vec<u32> = economy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .subnets
            .keys()
            .copied()
            .collect();
        for subnet in subnets {
            if self.followed().contains(&subnet) {
                continue;
            }
            let mut joined = true;
            for kind in [WeightKind::Commit, WeightKind::Reveal] {
                if let Err(e) = network.subscribe(&kind.topic(subnet).to_string()).await {
                    tracing::warn!(subnet, error = %e, "cannot follow a new subnet's weights");
                    joined = false;
                }
            }
            if joined {
                tracing::info!(subnet, "following a subnet created since start");
                self.followed().insert(subnet);
            }
        }
    }
}

impl Service for WeightsService {
    fn name(&self) -> &'static str {
        "weights"
    }

    fn topics(&self) -> Vec<Topic> {
        self.followed()
            .iter()
            .flat_map(|&s| [WeightKind::Commit.topic(s), WeightKind::Reveal.topic(s)])
            .collect()
    }

    fn topic_kinds(&self) -> Vec<crate::topics::TopicKind> {
        match self.follow {
            Some(_) => vec![
                crate::topics::TopicKind::WeightCommit,
                crate::topics::TopicKind::WeightReveal,
            ],
            None => Vec::new(),
        }
    }

    fn run(self: Arc<Self>, cancel: tokio_util::sync::CancellationToken) -> ServiceFuture {
        Box::pin(async move {
            if self.follow.is_none() {
                return cancel.cancelled().await;
            }
            let mut every = tokio::time::interval(super::node::FOLLOW_EVERY);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = every.tick() => self.take_up().await,
                }
            }
        })
    }

    fn on_gossip(&self, topic: Topic, message: GossipMessage) {
        let Some((kind, subnet)) =
            WeightKind::of(topic).filter(|(_, s)| self.followed().contains(s))
        else {
            message.validation.ignore();
            return;
        };
        let event = self
            .board
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .handle_gossip(
                kind,
                message,
                Arrival {
                    subnet,
                    epoch: self.genesis.epoch_at(now_ms()),
                },
            );
        if let (Some(WeightsEvent::Equivocated(evidence)), Some(sink)) = (event, &self.evidence) {
            sink(*evidence);
        }
    }
}
