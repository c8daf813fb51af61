//! The async driver of the consensus engine over the chain: starts each epoch when it ends, feeds
//! the engine from gossip, direct batches and timers, performs its actions in order (log and
//! ledger writes, gossip, timers, values from the weight board and the mempool), resends to the
//! finalizing set, and catches up from peers over `/sync/1`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshmind_p2p::{GossipMessage, NetworkHandle, PeerId};
use meshmind_protocols::{decode, v1};
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::app::Chain;
use super::sources::{BAN, SyncSources};
use super::sync::SYNC_BATCH;
use crate::consensus::core::{Timeout, TimeoutStep};
use crate::consensus::engine::{Action, Engine, EngineError, Verdict};
use crate::genesis::Genesis;
use crate::ledger::Ledger;
use crate::role::validator::gossip::WeightBoard;
use crate::state::{Mempool, PoolError, State};
use crate::topics::Topic;

/// Most transactions waiting for a snapshot.
const MEMPOOL_CAPACITY: usize = 8192;
/// Transactions per second taken from one gossip peer (what it relays included), and its burst.
const TX_RATE_PER_PEER: (u32, u32) = (100, 400);

// Inputs move through the inbox once; boxing would only add an allocation per message.
/// Something for the driver from the network.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum DriverInput {
    /// A message on the consensus or evidence topic, awaiting a verdict.
    Gossip(Topic, GossipMessage),
    /// A batch sent straight to this node.
    Direct(PeerId, Vec<v1::ConsensusMessage>),
    /// Something this node found itself (e.g. evidence from the weights topics).
    Local(v1::ConsensusMessage),
    /// A transaction on the tx topic, awaiting a verdict.
    Transaction(GossipMessage),
    /// A transaction submitted here (API), gossiped if the pool takes it; the reply says whether it
    /// is new.
    Submit(v1::Transaction, oneshot::Sender<Result<bool, PoolError>>),
}

/// The gossip topic a consensus message travels on.
fn topic_of(msg: &v1::ConsensusMessage) -> Topic {
    match msg.body {
        Some(v1::consensus_message::Body::Evidence(_)) => Topic::Evidence,
        _ => Topic::Consensus,
    }
}

/// Longest single wait for an epoch to end before the driver looks at the clock again.
const MAX_WAIT_MS: u64 = 60 * 60 * 1000;

/// A catch-up under way: the head to reach, and where and when it began.
#[derive(Debug, Clone, Copy)]
struct CatchUp {
    target: u64,
    from: u64,
    started: Instant,
}

/// What the API shows of consensus.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ChainStatus {
    /// The newest finalized epoch.
    pub finalized_epoch: Option<u64>,
    /// Its header hash (hex).
    pub finalized_hash: Option<String>,
    /// The epoch being decided.
    pub deciding_epoch: u64,
    /// The current round of it.
    pub round: u32,
    /// Whether this node votes.
    pub voting: bool,
    /// Epochs decided in round 0 since start.
    pub decided_round0: u64,
    /// Epochs committed since start (decided here or fetched).
    pub committed: u64,
    /// From the end of the last committed epoch to its certificate persisted, in ms.
    pub last_finality_ms: Option<u64>,
    /// The latest [`RECENT_FINALITY`] epochs committed here: (epoch, round, finality in ms).
    #[serde(default)]
    pub recent_finality: std::collections::VecDeque<(u64, u32, u64)>,
    /// Evidence the latest finalized snapshots carried (the newest [`RECENT_EVIDENCE`] pieces):
    /// once included it leaves the store, and the API still shows it.
    #[serde(skip)]
    pub recent_evidence: std::collections::VecDeque<v1::Evidence>,
}

/// Pieces of included evidence [`ChainStatus`] remembers.
pub const RECENT_EVIDENCE: usize = 256;

/// Committed epochs whose finality [`ChainStatus`] shows.
pub const RECENT_FINALITY: usize = 120;

/// An epoch committed by this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// Epoch.
    pub epoch: u64,
    /// Round it was decided in.
    pub round: u32,
    /// From the end of the epoch to the certificate persisted, in ms.
    pub latency_ms: u64,
}

/// Driver settings.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Resend period while undecided.
    pub rebroadcast: Duration,
    /// Start an epoch this long after it ends.
    pub start_delay_ms: u64,
}

enum Internal {
    Status(PeerId, v1::LedgerStatus),
    Synced(PeerId, Vec<v1::FinalizedSnapshot>),
    SyncFailed(PeerId),
}

/// Runs the engine until the inbox closes or the store fails.
pub struct Driver {
    engine: Engine<Chain>,
    ledger: Arc<Ledger>,
    network: NetworkHandle,
    board: Arc<Mutex<WeightBoard>>,
    genesis: Genesis,
    config: DriverConfig,
    status: Arc<Mutex<ChainStatus>>,
    timers: BinaryHeap<Reverse<(Instant, u64, u32, TimeoutStep)>>,
    internal_tx: mpsc::Sender<Internal>,
    internal_rx: mpsc::Receiver<Internal>,
    syncing: bool,
    /// The highest head a peer has reported while this node was behind, and when catching up
    /// to it began (at which height), for progress reports.
    catch_up: Option<CatchUp>,
    sources: SyncSources,
    last_sweep: Option<Instant>,
    commits: Option<mpsc::UnboundedSender<Commit>>,
    mempool: Mempool,
    economy: Arc<Mutex<State>>,
    tx_limiter: meshmind_p2p::RateLimiter<PeerId>,
}

impl Driver {
    /// A driver for `engine`, performing its storage actions on `ledger`.
    pub fn new(
        engine: Engine<Chain>,
        ledger: Arc<Ledger>,
        network: NetworkHandle,
        board: Arc<Mutex<WeightBoard>>,
        genesis: Genesis,
        config: DriverConfig,
        status: Arc<Mutex<ChainStatus>>,
    ) -> Self {
        let (internal_tx, internal_rx) = mpsc::channel(256);
        let economy = Arc::new(Mutex::new(engine.app().state().clone()));
        Self {
            ledger,
            mempool: Mempool::new(MEMPOOL_CAPACITY),
            economy,
            tx_limiter: meshmind_p2p::RateLimiter::new(TX_RATE_PER_PEER.0, TX_RATE_PER_PEER.1),
            engine,
            network,
            board,
            genesis,
            config,
            status,
            timers: BinaryHeap::new(),
            internal_tx,
            internal_rx,
            syncing: false,
            catch_up: None,
            sources: SyncSources::default(),
            last_sweep: None,
            commits: None,
        }
    }

    /// The economy after the head, kept current for readers such as the API.
    pub fn economy(&self) -> Arc<Mutex<State>> {
        self.economy.clone()
    }

    /// Sends every commit to `listener`.
    pub fn with_commit_listener(mut self, listener: mpsc::UnboundedSender<Commit>) -> Self {
        self.commits = Some(listener);
        self
    }

    fn epoch_end_ms(&self, epoch: u64) -> u64 {
        let g = &self.genesis.message;
        g.genesis_time_ms
            .saturating_add(epoch.saturating_add(1).saturating_mul(g.epoch_ms))
            .saturating_add(self.config.start_delay_ms)
    }

    fn publish_status(&self) {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let head = self.engine.head();
        status.finalized_epoch = head.map(|h| h.epoch);
        status.finalized_hash = head.map(|h| hex::encode(h.hash));
        status.deciding_epoch = self.engine.height();
        status.round = self.engine.round();
        status.voting = self.engine.is_validator();
    }

    /// Runs until `inbox` closes or `stop` is cancelled; returns an error only if the ledger failed.
    /// `votes` carries consensus gossip only and is read first, so floods of transactions or
    /// evidence on `inbox` cannot delay or crowd out proposals and votes.
    pub async fn run(
        mut self,
        initial: Vec<Action>,
        mut votes: mpsc::Receiver<DriverInput>,
        mut inbox: mpsc::Receiver<DriverInput>,
        stop: CancellationToken,
    ) -> Result<(), EngineError> {
        self.perform(initial).await?;
        self.publish_status();
        let mut resend = tokio::time::interval(self.config.rebroadcast);
        resend.tick().await;
        loop {
            let next_timer = self.timers.peek().map(|Reverse((at, ..))| *at);
            // The current epoch is decided from the moment it ends.
            let start_at = (!self.engine.started()).then(|| {
                let end = self.epoch_end_ms(self.engine.height());
                // Checked again at least hourly, so a genesis far in the future waits, not panics.
                let wait = end.saturating_sub(crate::clock::now_ms()).min(MAX_WAIT_MS);
                Instant::now() + Duration::from_millis(wait)
            });
            // In this order: the node's own clock (timeouts, the epoch's start, resends) and its own
            // tasks' results first, as they come at most at their own pace, so no flood of input
            // can hold them back; then proposals and votes; then everything else.
            tokio::select! {
                biased;
                () = stop.cancelled() => return Ok(()),
                () = sleep_until(next_timer), if next_timer.is_some() => {
                    if let Some(Reverse((_, height, round, step))) = self.timers.pop() {
                        let actions = blocking(|| self.engine.on_timeout(Timeout { height, round, step }))?;
                        self.perform(actions).await?;
                    }
                }
                () = sleep_until(start_at), if start_at.is_some() => {
                    tracing::debug!(epoch = self.engine.height(), "epoch ended; deciding it");
                    let actions = blocking(|| self.engine.start())?;
                    self.perform(actions).await?;
                }
                Some(internal) = self.internal_rx.recv() => self.on_internal(internal).await?,
                _ = resend.tick() => self.resend(),
                Some(input) = votes.recv() => self.on_input(input).await?,
                input = inbox.recv() => {
                    let Some(input) = input else { return Ok(()) };
                    self.on_input(input).await?;
                }
            }
            self.publish_status();
        }
    }

    async fn on_input(&mut self, input: DriverInput) -> Result<(), EngineError> {
        match input {
            DriverInput::Gossip(topic, message) => {
                // Evidence only on its topic, votes and proposals only on theirs.
                let msg = match decode::<v1::ConsensusMessage>(&message.data) {
                    Ok(msg) if topic_of(&msg) == topic => msg,
                    _ => {
                        message.validation.reject();
                        return Ok(());
                    }
                };
                match blocking(|| self.engine.check_message(msg)) {
                    Err(rejected) => {
                        tracing::debug!(peer = %message.propagation_source, reason = %rejected, "consensus gossip rejected");
                        message.validation.reject();
                    }
                    Ok(result) => {
                        let (verdict, actions) = result?;
                        // Written (and acted on) before it is relayed.
                        self.perform(actions).await?;
                        match verdict {
                            Verdict::Accept => message.validation.accept(),
                            Verdict::Ignore => message.validation.ignore(),
                        }
                    }
                }
            }
            DriverInput::Local(msg) => match blocking(|| self.engine.check_message(msg.clone())) {
                Err(rejected) => tracing::debug!(reason = %rejected, "own finding refused"),
                Ok(result) => {
                    let (verdict, actions) = result?;
                    self.perform(actions).await?;
                    if verdict == Verdict::Accept {
                        self.perform(vec![Action::Broadcast(msg)]).await?;
                    }
                }
            },
            DriverInput::Transaction(message) => {
                // Over its rate, a peer's transactions are dropped unchecked (not penalised: it
                // may be relaying others').
                let now = std::time::Instant::now();
                if !self.tx_limiter.allow(message.propagation_source, now) {
                    message.validation.ignore();
                    return Ok(());
                }
                let taken = decode::<v1::Transaction>(&message.data)
                    .map_err(|e| {
                        PoolError::Invalid(crate::state::TxError::Malformed(e.to_string()))
                    })
                    .and_then(|tx| self.mempool.insert(tx, self.engine.app().state()));
                match taken {
                    Ok(true) => message.validation.accept(),
                    Err(e) if e.penalise() => {
                        tracing::debug!(peer = %message.propagation_source, error = %e, "transaction rejected");
                        message.validation.reject();
                    }
                    // Raced a commit, or the pool is full: not forwarded, not the relay's fault.
                    Ok(false) | Err(_) => message.validation.ignore(),
                }
            }
            DriverInput::Submit(tx, reply) => {
                let bytes = tx.encode_to_vec();
                let taken = self.mempool.insert(tx, self.engine.app().state());
                if let Ok(true) = taken
                    && let Err(e) = self.network.publish(&Topic::Tx.to_string(), bytes).await
                {
                    tracing::debug!(error = %e, "transaction kept but not gossiped yet");
                }
                let _ = reply.send(taken);
            }
            DriverInput::Direct(peer, messages) => {
                // Only the finalizing set resends its messages this way.
                if !self.engine.members().peer_ids().contains(&peer) {
                    tracing::debug!(%peer, "consensus batch from a non-member ignored");
                    return Ok(());
                }
                for msg in messages {
                    match blocking(|| self.engine.check_message(msg)) {
                        Err(rejected) => {
                            // A bad message ends the batch: forged signatures cost their sender
                            // the rest of its resend, not this node a verification each.
                            tracing::debug!(%peer, reason = %rejected, "direct consensus batch dropped at a bad message");
                            break;
                        }
                        Ok(result) => {
                            let (_, actions) = result?;
                            self.perform(actions).await?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn on_internal(&mut self, internal: Internal) -> Result<(), EngineError> {
        match internal {
            Internal::Status(peer, status) => {
                if self.genesis.network_id.is(&status.network_id)
                    && status.has_head
                    && status.head_epoch >= self.engine.height()
                    && !self.syncing
                    && self.sources.usable(&peer, std::time::Instant::now())
                {
                    // A head past the clock's epoch is a lie: the target the progress report
                    // aims at is capped by the clock.
                    let head = status
                        .head_epoch
                        .min(self.genesis.epoch_at(crate::clock::now_ms()));
                    let height = self.engine.height();
                    let catch_up = self.catch_up.get_or_insert(CatchUp {
                        target: head,
                        from: height,
                        started: Instant::now(),
                    });
                    catch_up.target = catch_up.target.max(head);
                    self.fetch(peer);
                }
            }
            Internal::Synced(peer, items) => {
                self.syncing = false;
                let mut progressed = false;
                let mut forged = false;
                let mut overtaken = false;
                let mut refused = false;
                for item in items {
                    let epoch = item
                        .snapshot
                        .as_ref()
                        .and_then(|s| s.header.as_ref())
                        .map(|h| h.epoch);
                    let height = self.engine.height();
                    if epoch.is_some_and(|e| e < height) {
                        // Decided here meanwhile: the peer did nothing wrong.
                        overtaken = true;
                        continue;
                    }
                    if epoch != Some(height) {
                        continue;
                    }
                    // A certificate of this very epoch that does not verify: no honest peer
                    // serves one. (One that verifies on a snapshot that does not check means
                    // this node is the odd one out, and no peer is to blame.)
                    if !self.certified(&item) {
                        forged = true;
                        break;
                    }
                    let actions = blocking(|| self.engine.apply_finalized(item))?;
                    if actions.is_empty() {
                        tracing::error!(%peer, epoch = height, "a certified finalized snapshot does not check here: this node's state differs from the network's");
                        refused = true;
                        break;
                    }
                    progressed = true;
                    self.perform(actions).await?;
                }
                let now = std::time::Instant::now();
                if forged {
                    self.cut_off(peer, now);
                } else if progressed {
                    self.sources.delivered(&peer);
                } else if !overtaken || refused {
                    let backoff = self.sources.failed(peer, now);
                    tracing::debug!(%peer, ?backoff, "sync answer brought nothing usable; avoiding the peer");
                }
                if progressed {
                    self.report_catch_up();
                    // More may be waiting.
                    self.last_sweep = None;
                    self.sweep();
                }
            }
            Internal::SyncFailed(peer) => {
                self.syncing = false;
                let backoff = self.sources.failed(peer, std::time::Instant::now());
                tracing::debug!(%peer, ?backoff, "sync fetch failed or stalled; avoiding the peer");
            }
        }
        Ok(())
    }

    /// Whether `item`'s certificate proves its snapshot final for the epoch being decided, under
    /// the set deciding it.
    fn certified(&self, item: &v1::FinalizedSnapshot) -> bool {
        let (Some(snapshot), Some(certificate)) = (&item.snapshot, &item.certificate) else {
            return false;
        };
        crate::consensus::certificate::verify(
            certificate,
            self.genesis.network_id,
            self.engine.members(),
            self.engine.height(),
            &super::snapshot::value_id(snapshot),
        )
        .is_ok()
    }

    /// Blocks `peer`, which served a finalized snapshot with a certificate that does not verify,
    /// for [`BAN`].
    fn cut_off(&mut self, peer: PeerId, now: std::time::Instant) {
        tracing::warn!(%peer, ban = ?BAN, "peer served a finalized snapshot that does not check; blocking it");
        self.sources.invalid(peer, now);
        let network = self.network.clone();
        tokio::spawn(async move {
            if network.block_peer(peer).await.is_err() {
                return;
            }
            tokio::time::sleep(BAN).await;
            let _ = network.unblock_peer(peer).await;
        });
    }

    /// Asks every peer for its ledger head (at most twice a second); the first ahead is synced from.
    fn sweep(&mut self) {
        if self.syncing
            || self
                .last_sweep
                .is_some_and(|t| t.elapsed() < Duration::from_millis(500))
        {
            return;
        }
        self.last_sweep = Some(Instant::now());
        let request = v1::SyncRequest {
            body: Some(v1::sync_request::Body::Status(v1::StatusRequest {})),
        }
        .encode_to_vec();
        // Any ledger keeper may be ahead: validators and observers alike.
        self.ask_all(request, None);
    }

    /// Sends `request` to every connected peer (or only to those `only` keeps); each reply's
    /// ledger status comes back as [`Internal::Status`].
    fn ask_all(&self, request: Vec<u8>, only: Option<HashSet<PeerId>>) {
        let network = self.network.clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let peers = network.peers().await.unwrap_or_default();
            let asked = peers
                .into_iter()
                .filter(|peer| only.as_ref().is_none_or(|members| members.contains(peer)));
            for peer in asked {
                let network = network.clone();
                let tx = tx.clone();
                let request = request.clone();
                tokio::spawn(async move {
                    if let Some(status) = ask_status(&network, peer, request).await {
                        let _ = tx.send(Internal::Status(peer, status)).await;
                    }
                });
            }
        });
    }

    /// Logs how far catching up has come (and forgets it once caught up).
    fn report_catch_up(&mut self) {
        let height = self.engine.height();
        let Some(catch_up) = &self.catch_up else {
            return;
        };
        if height > catch_up.target {
            tracing::info!(epoch = height.saturating_sub(1), "caught up");
            self.catch_up = None;
            return;
        }
        let done = height.saturating_sub(catch_up.from);
        let all = catch_up
            .target
            .saturating_add(1)
            .saturating_sub(catch_up.from)
            .max(1);
        let elapsed = catch_up.started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / elapsed;
        let remaining = catch_up.target.saturating_add(1).saturating_sub(height);
        let left = if rate > 0.0 {
            remaining as f64 / rate
        } else {
            f64::INFINITY
        };
        tracing::info!(
            epoch = height.saturating_sub(1),
            target = catch_up.target,
            percent = format_args!("{:.0}", 100.0 * done as f64 / all as f64),
            epochs_per_s = format_args!("{rate:.0}"),
            left_s = format_args!("{left:.0}"),
            "catching up"
        );
    }

    fn fetch(&mut self, peer: PeerId) {
        self.syncing = true;
        let from = self.engine.height();
        let network = self.network.clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let request = v1::SyncRequest {
                body: Some(v1::sync_request::Body::Range(v1::SnapshotRange {
                    from_epoch: from,
                    count: SYNC_BATCH,
                })),
            }
            .encode_to_vec();
            let answer = network
                .request(peer, request, Duration::from_secs(10))
                .await
                .ok()
                .and_then(|bytes| decode::<v1::SyncResponse>(&bytes).ok());
            let message = match answer.and_then(|r| r.body) {
                Some(v1::sync_response::Body::Snapshots(s)) if !s.items.is_empty() => {
                    tracing::info!(%peer, from, count = s.items.len(), "fetched finalized snapshots");
                    Internal::Synced(peer, s.items)
                }
                _ => Internal::SyncFailed(peer),
            };
            let _ = tx.send(message).await;
        });
    }

    /// Sends own messages and the round's votes straight to every peer; their replies tell who is ahead.
    fn resend(&mut self) {
        let messages = self.engine.rebroadcast();
        if messages.is_empty() {
            return;
        }
        let request = v1::SyncRequest {
            body: Some(v1::sync_request::Body::Consensus(v1::ConsensusBatch {
                messages,
            })),
        }
        .encode_to_vec();
        // Only the finalizing set's votes count: the rest of the network is not asked.
        self.ask_all(request, Some(self.engine.members().peer_ids()));
    }

    async fn perform(&mut self, actions: Vec<Action>) -> Result<(), EngineError> {
        let mut queue = std::collections::VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Persist { epoch, entry, sync } => {
                    blocking(|| self.ledger.wal_append(epoch, &entry, sync))?;
                }
                Action::StoreEvidence(evidence) => {
                    blocking(|| self.ledger.add_evidence(&evidence))?;
                }
                Action::ForgetEvidence(evidence) => {
                    blocking(|| self.ledger.remove_evidence(&evidence))?;
                }
                Action::Commit { finalized, state } => {
                    blocking(|| self.ledger.commit(&finalized, &state))?;
                    if let Some(snapshot) = &finalized.snapshot
                        && !snapshot.evidence.is_empty()
                    {
                        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
                        status
                            .recent_evidence
                            .extend(snapshot.evidence.iter().cloned());
                        let over = status.recent_evidence.len().saturating_sub(RECENT_EVIDENCE);
                        status.recent_evidence.drain(..over);
                    }
                }
                Action::Broadcast(msg) => {
                    if let Err(e) = self
                        .network
                        .publish(&topic_of(&msg).to_string(), msg.encode_to_vec())
                        .await
                    {
                        tracing::debug!(error = %e, "consensus message not gossiped; the resend covers it");
                    }
                }
                Action::Schedule { timeout, after_ms } => {
                    self.timers.push(Reverse((
                        Instant::now() + Duration::from_millis(after_ms),
                        timeout.height,
                        timeout.round,
                        timeout.step,
                    )));
                }
                Action::NeedValue { epoch, round } => {
                    let reveals = {
                        let board = self.board.lock().unwrap_or_else(|p| p.into_inner());
                        epoch
                            .checked_sub(1)
                            .map(|e| board.reveals(e))
                            .unwrap_or_default()
                    };
                    let transactions = self.mempool.candidates();
                    queue.extend(blocking(|| {
                        self.engine.on_value(round, reveals, transactions)
                    })?);
                }
                Action::Committed { epoch, round, hash } => {
                    let end = self.epoch_end_ms(epoch) - self.config.start_delay_ms;
                    let latency_ms = crate::clock::now_ms().saturating_sub(end);
                    tracing::info!(epoch, round, latency_ms, hash = %hex::encode(&hash[..8]), "epoch finalized");
                    if let Some(listener) = &self.commits {
                        let _ = listener.send(Commit {
                            epoch,
                            round,
                            latency_ms,
                        });
                    }
                    let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
                    status.committed += 1;
                    status.last_finality_ms = Some(latency_ms);
                    status.recent_finality.push_back((epoch, round, latency_ms));
                    if status.recent_finality.len() > RECENT_FINALITY {
                        status.recent_finality.pop_front();
                    }
                    if round == 0 {
                        status.decided_round0 += 1;
                    }
                    drop(status);
                    // Reveals of commitments before this epoch can no longer enter a snapshot;
                    // weights are taken from the permit holders of the new state.
                    let mut board = self.board.lock().unwrap_or_else(|p| p.into_inner());
                    board.prune_before(epoch);
                    board.follow(self.engine.app().state());
                    drop(board);
                    let height = self.engine.height();
                    self.timers.retain(|Reverse((_, h, _, _))| *h >= height);
                    let evicted = self.mempool.prune(self.engine.app().state());
                    if evicted > 0 {
                        tracing::debug!(
                            epoch,
                            evicted,
                            "transactions that can no longer apply evicted"
                        );
                    }
                    *self.economy.lock().unwrap_or_else(|p| p.into_inner()) =
                        self.engine.app().state().clone();
                }
                Action::Behind { .. } => self.sweep(),
            }
        }
        Ok(())
    }
}

async fn ask_status(
    network: &NetworkHandle,
    peer: PeerId,
    request: Vec<u8>,
) -> Option<v1::LedgerStatus> {
    let bytes = network
        .request(peer, request, Duration::from_secs(2))
        .await
        .ok()?;
    match decode::<v1::SyncResponse>(&bytes).ok()?.body? {
        v1::sync_response::Body::Status(status) => Some(status),
        _ => None,
    }
}

/// Runs work that holds a thread for a while (the engine's signature checks, the ledger's synced
/// writes) without stalling the other tasks of a multi-threaded runtime (the network's among them).
fn blocking<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
