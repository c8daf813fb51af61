//! The miner service: checks each inbound query, runs it through the backend under limits, and
//! answers with a signed response.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshmind_p2p::{InboundQuery, PeerId, QueryError, QueryResponder};
use meshmind_protocols::{Keypair, NetworkId, Signed, hash, v1};
use prost::Message;
use tokio::sync::mpsc;

use super::backend::{Asked, BackendError, Caller, MinerBackend};
use super::slots::{Slot, Slots};
use crate::role::admission::{AdmissionError, check_target, read_query};
use crate::role::quota::{QuotaPolicy, Quotas, QuotasView, Refusal};
use crate::role::stream::{MAX_CHUNK, MAX_STREAM_BYTES, data_chunk, last_chunk};
use crate::state::State;

/// Pieces buffered between a streaming backend and the network.
const PIECES_BUFFERED: usize = 16;

/// What a miner serves and how much load it takes.
#[derive(Debug, Clone)]
pub struct MinerConfig {
    /// The network id (hash of the genesis).
    pub network_id: NetworkId,
    /// The subnet served.
    pub subnet: u32,
    /// The tasks served on it.
    pub tasks: Vec<String>,
    /// Model identifier advertised in capability ads.
    pub model_id: String,
    /// Model version advertised in capability ads.
    pub version: String,
    /// Queries answered at once; more are refused as overloaded.
    pub max_concurrency: usize,
    /// Who may send how many queries.
    pub quotas: QuotaPolicy,
}

impl MinerConfig {
    /// A configuration with default limits (32 at once, and [`QuotaPolicy::new`]'s quotas).
    pub fn new(network_id: NetworkId, subnet: u32, tasks: Vec<String>) -> Self {
        Self {
            network_id,
            subnet,
            tasks,
            model_id: String::new(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            max_concurrency: 32,
            quotas: QuotaPolicy::new(),
        }
    }
}

/// Serves queries for one subnet.
pub struct Miner {
    config: MinerConfig,
    keypair: Keypair,
    backend: Arc<dyn MinerBackend>,
    slots: Slots,
    quotas: Mutex<Quotas>,
    ads: Mutex<Vec<v1::CapabilityAd>>,
}

impl Miner {
    /// A miner answering with `backend`, signing with `keypair` (its hotkey).
    pub fn new(config: MinerConfig, keypair: Keypair, backend: Arc<dyn MinerBackend>) -> Self {
        Self {
            slots: Slots::new(config.max_concurrency.max(1)),
            quotas: Mutex::new(Quotas::new(config.quotas.clone())),
            ads: Mutex::default(),
            config,
            keypair,
            backend,
        }
    }

    /// Answers one inbound query on the query plane: in one frame, or streamed when asked.
    pub async fn serve(&self, inbound: InboundQuery) {
        let peer = inbound.peer;
        let delivered = match self.admit(peer, &inbound.payload) {
            Ok((query, caller)) if query.stream => {
                self.stream(&query, &caller, inbound.responder).await
            }
            Ok((query, caller)) => {
                let frame = self.answer_query(&query, &caller).await;
                inbound.responder.respond(frame.encode_to_vec()).await
            }
            Err(refusal) => {
                let frame = refusal.frame();
                inbound.responder.respond(frame.encode_to_vec()).await
            }
        };
        if let Err(e) = delivered {
            tracing::debug!(%peer, error = %e, "answer not delivered");
        }
    }

    /// The frame answering `payload` from `peer`: a signed response, or an error.
    pub async fn answer(&self, peer: PeerId, payload: &[u8]) -> v1::QueryFrame {
        match self.admit(peer, payload) {
            Ok((query, caller)) => self.answer_query(&query, &caller).await,
            Err(refusal) => refusal.frame(),
        }
    }

    /// The query in `payload` from `peer` and who `peer` is, or why it is refused.
    fn admit(&self, peer: PeerId, payload: &[u8]) -> Result<(v1::Query, Caller), AdmissionError> {
        let caller = {
            let mut quotas = self.lock_quotas();
            quotas
                .admit(peer, Instant::now())
                .map_err(|refusal| match refusal {
                    Refusal::OverQuota => AdmissionError::RateLimited,
                    Refusal::NotAdmitted(who) => AdmissionError::NotAdmitted(who),
                })?;
            quotas.caller(&peer)
        };
        Ok((read_query(payload)?, caller))
    }

    /// One of the backend's slots for a query from `caller`, and how long getting it took. Once
    /// stakes are known, a caller without stake or permit takes a slot only while a quarter of
    /// them (at least one, with two or more) stay free, and one with stake takes any free slot or
    /// waits for one up to a tenth of its deadline: when the miner is saturated, staked callers
    /// come first, the most staked (a permit counts as the most) first among them.
    async fn slot(&self, caller: &Caller, deadline: Duration) -> Option<(Slot<'_>, Duration)> {
        let started = Instant::now();
        let staked = caller.stake > 0 || caller.permit;
        if let Some(slot) = self.slots.try_take() {
            let slots = self.config.max_concurrency;
            let reserved = if slots >= 2 { (slots / 4).max(1) } else { 0 };
            // Taken first and checked after, so callers arriving together cannot all pass.
            if !staked && self.slots.available() < reserved && self.lock_quotas().knows_stakes() {
                return None;
            }
            return Some((slot, started.elapsed()));
        }
        if !staked {
            return None;
        }
        let priority = if caller.permit {
            u64::MAX
        } else {
            caller.stake
        };
        let slot = self.slots.take(priority, deadline / 10).await?;
        Some((slot, started.elapsed()))
    }

    fn lock_quotas(&self) -> std::sync::MutexGuard<'_, Quotas> {
        self.quotas.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows the finalized `state`: the permit holders' quotas move with their stake.
    pub fn follow(&self, state: &State) {
        self.lock_quotas().follow(state, self.config.subnet);
    }

    /// Registers the quota metrics in `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.lock_quotas().register(registry);
    }

    /// Every caller's quota and its use.
    pub fn quotas(&self) -> QuotasView {
        self.lock_quotas().view()
    }

    /// A signed response to `query` in one frame.
    async fn answer_query(&self, query: &v1::Query, caller: &Caller) -> v1::QueryFrame {
        let response = match self.check(query) {
            Err(refusal) => self.response(query, Err(refusal), Duration::ZERO),
            Ok(()) => {
                let started = Instant::now();
                let result = self.run(query, caller).await;
                let typed = self.backend.content_type(&query.task);
                self.typed_response(query, result, started.elapsed(), typed)
            }
        };
        v1::QueryFrame {
            body: Some(v1::query_frame::Body::Response(response)),
        }
    }

    fn check(&self, query: &v1::Query) -> Result<(), AdmissionError> {
        check_target(query, &self.config.network_id, self.config.subnet)?;
        if !self.config.tasks.contains(&query.task) {
            return Err(AdmissionError::UnknownTask(query.task.clone()));
        }
        Ok(())
    }

    async fn run(&self, query: &v1::Query, caller: &Caller) -> Result<Vec<u8>, AdmissionError> {
        let deadline = Duration::from_millis(u64::from(query.deadline_ms));
        let Some((_slot, waited)) = self.slot(caller, deadline).await else {
            return Err(AdmissionError::Busy);
        };
        let asked = Asked {
            caller: Some(caller),
            content_type: &query.content_type,
        };
        let answer = self.backend.answer_for(asked, &query.task, &query.payload);
        match tokio::time::timeout(deadline.saturating_sub(waited), answer).await {
            Err(_) => Err(AdmissionError::TooSlow),
            Ok(result) => result.map_err(|e| self.backend_error(e)),
        }
    }

    /// A backend's failure as a refusal (logged when the backend itself failed).
    fn backend_error(&self, error: BackendError) -> AdmissionError {
        if let BackendError::Failed(_) = &error {
            tracing::warn!(backend = self.backend.name(), error = %error, "backend failed");
        }
        AdmissionError::Backend(error)
    }

    /// Streams the answer to `query` as chunks while the backend produces it, then a signed trailer
    /// whose output is the hash of all the data.
    async fn stream(
        &self,
        query: &v1::Query,
        caller: &Caller,
        mut responder: QueryResponder,
    ) -> Result<(), QueryError> {
        let deadline = Duration::from_millis(u64::from(query.deadline_ms));
        let refused = self.check(query).err();
        let slot = match refused {
            Some(_) => None,
            None => self.slot(caller, deadline).await,
        };
        let refused = refused.or_else(|| slot.is_none().then_some(AdmissionError::Busy));
        let deadline = deadline.saturating_sub(slot.as_ref().map_or(Duration::ZERO, |s| s.1));
        if let Some(refusal) = refused {
            let response = self.response(query, Err(refusal), Duration::ZERO);
            return responder
                .respond(last_chunk(&query.id, 0, response).encode_to_vec())
                .await;
        }
        let started = Instant::now();
        let (sink, pieces) = mpsc::channel::<Vec<u8>>(PIECES_BUFFERED);
        let asked = Asked {
            caller: Some(caller),
            content_type: &query.content_type,
        };
        let produce = tokio::time::timeout(
            deadline,
            self.backend
                .answer_stream_for(asked, &query.task, &query.payload, sink),
        );
        let forward = async {
            // Owned here, so that stopping early drops it and stops the backend.
            let mut pieces = pieces;
            let (mut seq, mut total, mut hasher) = (0u32, 0usize, blake3::Hasher::new());
            while let Some(piece) = pieces.recv().await {
                for part in piece.chunks(MAX_CHUNK) {
                    total += part.len();
                    if total > MAX_STREAM_BYTES {
                        // Dropping the receiver stops the backend.
                        return Ok((seq, None));
                    }
                    hasher.update(part);
                    let frame = data_chunk(&query.id, seq, part.to_vec());
                    responder.send(frame.encode_to_vec()).await?;
                    seq += 1;
                }
            }
            Ok((seq, Some(hasher.finalize())))
        };
        let (produced, forwarded) = tokio::join!(produce, forward);
        let (seq, digest) = forwarded?;
        let result = match (digest, produced) {
            (None, _) => Err(AdmissionError::AnswerTooLarge),
            (Some(_), Err(_)) => Err(AdmissionError::TooSlow),
            (Some(_), Ok(Err(e))) => Err(self.backend_error(e)),
            (Some(digest), Ok(Ok(()))) => Ok(digest.as_bytes().to_vec()),
        };
        let trailer = self.response(query, result, started.elapsed());
        responder
            .respond(last_chunk(&query.id, seq, trailer).encode_to_vec())
            .await
    }

    /// A signed response to `query`, carrying the output or the error.
    fn response(
        &self,
        query: &v1::Query,
        result: Result<Vec<u8>, AdmissionError>,
        elapsed: Duration,
    ) -> v1::QueryResponse {
        self.typed_response(query, result, elapsed, "")
    }

    /// [`Miner::response`], saying what an output holds (`content_type`, a media type).
    fn typed_response(
        &self,
        query: &v1::Query,
        result: Result<Vec<u8>, AdmissionError>,
        elapsed: Duration,
        content_type: &str,
    ) -> v1::QueryResponse {
        let (output, error, content_type) = match result {
            Ok(output) => (output, None, content_type.to_string()),
            Err(refusal) => (Vec::new(), Some(refusal.to_wire()), String::new()),
        };
        v1::QueryResponse {
            id: query.id.clone(),
            query_hash: hash(query).to_vec(),
            output,
            elapsed_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            miner: Vec::new(),
            error,
            content_type,
            signature: Vec::new(),
        }
        .signed(&self.keypair)
    }

    /// Signed capability ads, one per task, valid from `now_ms` for `ttl_ms`; kept as the ads this
    /// miner hands out when asked directly.
    pub fn capability_ads(
        &self,
        now_ms: u64,
        ttl_ms: u64,
        addrs: &[String],
        query_addr: &str,
    ) -> Vec<v1::CapabilityAd> {
        let ads: Vec<v1::CapabilityAd> = self
            .config
            .tasks
            .iter()
            .map(|task| {
                v1::CapabilityAd {
                    network_id: self.config.network_id.to_vec(),
                    subnet: self.config.subnet,
                    task: task.clone(),
                    model_id: self.config.model_id.clone(),
                    version: self.config.version.clone(),
                    max_concurrency: u32::try_from(self.config.max_concurrency).unwrap_or(u32::MAX),
                    queries_per_second: self.config.quotas.capacity,
                    addrs: addrs.to_vec(),
                    query_addr: query_addr.to_string(),
                    issued_at_ms: now_ms,
                    expires_at_ms: now_ms.saturating_add(ttl_ms),
                    miner: Vec::new(),
                    signature: Vec::new(),
                }
                .signed(&self.keypair)
            })
            .collect();
        *self.ads.lock().unwrap_or_else(|p| p.into_inner()) = ads.clone();
        ads
    }

    /// The subnet this miner serves.
    pub fn subnet(&self) -> u32 {
        self.config.subnet
    }

    /// The network this miner serves.
    pub fn network_id(&self) -> NetworkId {
        self.config.network_id
    }

    /// Answers a peer's request for this miner's ads: its latest unexpired ones, if the subnet is
    /// its own.
    pub fn answer_caps(&self, request: &v1::CapsRequest, now_ms: u64) -> v1::SyncResponse {
        let body = if request.subnet == self.config.subnet {
            let ads: Vec<v1::CapabilityAd> = self
                .ads
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .filter(|ad| ad.expires_at_ms > now_ms)
                .cloned()
                .collect();
            v1::sync_response::Body::Ads(v1::CapabilityAds { ads })
        } else {
            v1::sync_response::Body::Error(v1::Error {
                code: v1::ErrorCode::UnknownSubnet as i32,
                message: format!("subnet {} is not served here", request.subnet),
            })
        };
        v1::SyncResponse { body: Some(body) }
    }
}
