//! The validator service: challenges miners with checkable reference tasks, scores them, and routes
//! client queries to the best live miners with hedging.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use meshmind_p2p::{InboundQuery, NetworkHandle, QueryStream};
use meshmind_protocols::signing::verify_digest;
use meshmind_protocols::{
    Context, Keypair, PublicKey, QueryId, Signature, Signed, Validate, ValidationError, decode,
    hash, v1,
};
use prost::Message;
use tokio::sync::mpsc;

use super::hedge::{Want, hedge};
use super::metagraph::{Metagraph, MinerEntry};
use crate::role::admission::{check_target, read_query};
use crate::role::error_frame;
use crate::role::reference;
use crate::role::stream::{StreamCheck, StreamError};
use crate::topics::caps_key;

/// Frames of a streamed answer buffered between the miner and the client.
const RELAY_BUFFERED: usize = 16;

/// How long a DHT provider has to hand over its ads.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The error when no live miner serves a task.
const NO_MINER: &str = "no live miner serves this task";
use crate::scoring::{Outcome, ScoreConfig, Scoreboard};

/// How a validator challenges and routes.
#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    /// The network id.
    pub network_id: [u8; 32],
    /// The subnet validated.
    pub subnet: u32,
    /// Deadline of each challenge.
    pub challenge_deadline: Duration,
    /// Miners a routed query may go to.
    pub top_k: usize,
    /// How long the best miner has before the next one is also asked.
    pub hedge_after: Duration,
    /// Scoring parameters.
    pub score: ScoreConfig,
    /// Allowed clock skew for ads.
    pub max_clock_skew_ms: u64,
}

impl ValidatorConfig {
    /// Defaults: 2 s challenges, top 3, hedge after 150 ms.
    pub fn new(network_id: [u8; 32], subnet: u32) -> Self {
        Self {
            network_id,
            subnet,
            challenge_deadline: Duration::from_secs(2),
            top_k: 3,
            hedge_after: Duration::from_millis(150),
            score: ScoreConfig::default(),
            max_clock_skew_ms: 5_000,
        }
    }
}

/// A validator of one subnet.
pub struct Validator {
    config: ValidatorConfig,
    network: NetworkHandle,
    metagraph: Mutex<Metagraph>,
    scores: Mutex<Scoreboard<PublicKey>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Validator {
    /// A validator using `network` (its hotkey's network).
    pub fn new(config: ValidatorConfig, _keypair: &Keypair, network: NetworkHandle) -> Self {
        Self {
            metagraph: Mutex::new(Metagraph::new(config.subnet)),
            scores: Mutex::new(Scoreboard::new(config.score)),
            config,
            network,
        }
    }

    /// Takes in a capability ad; returns the miner's UID.
    pub fn on_ad(&self, ad: &v1::CapabilityAd, now_ms: u64) -> Result<u32, ValidationError> {
        let context = Context {
            network_id: self.config.network_id,
            now_ms,
            max_clock_skew_ms: self.config.max_clock_skew_ms,
        };
        let uid = lock(&self.metagraph).accept(ad, &context)?;
        if let Ok(addr) = ad.query_addr.parse() {
            let _ = self.network.add_query_addr(
                ad.signer().map(|k| k.peer_id()).map_err(|e| {
                    ValidationError::new("miner", meshmind_protocols::Reason::BadSignature(e))
                })?,
                addr,
            );
        }
        Ok(uid)
    }

    /// Looks up the providers of each of `tasks` on the subnet in the DHT and asks every one without
    /// a live ad for that task for its ads (on `/sync/1`); returns how many ads were accepted.
    pub async fn discover(&self, tasks: &[String], now_ms: u64) -> usize {
        let local = self.network.local_peer_id();
        let request = v1::SyncRequest {
            body: Some(v1::sync_request::Body::Caps(v1::CapsRequest {
                subnet: self.config.subnet,
            })),
        }
        .encode_to_vec();
        let mut asked = std::collections::HashSet::new();
        let mut accepted = 0;
        for task in tasks {
            let key = caps_key(self.network.network(), self.config.subnet, task);
            let providers = match self.network.find_providers(&key).await {
                Ok(providers) => providers,
                Err(e) => {
                    tracing::debug!(%task, error = %e, "miner lookup in the DHT failed");
                    continue;
                }
            };
            for peer in providers {
                let known = lock(&self.metagraph)
                    .miners()
                    .any(|m| m.peer == peer && m.serves(task, now_ms));
                if peer == local || known || !asked.insert(peer) {
                    continue;
                }
                let answer = self
                    .network
                    .request(peer, request.clone(), DISCOVERY_TIMEOUT)
                    .await;
                let ads = match answer
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| decode::<v1::SyncResponse>(&bytes).map_err(|e| e.to_string()))
                {
                    Ok(v1::SyncResponse {
                        body: Some(v1::sync_response::Body::Ads(ads)),
                    }) => ads.ads,
                    Ok(other) => {
                        tracing::debug!(%peer, answer = ?other.body, "provider gave no ads");
                        continue;
                    }
                    Err(reason) => {
                        tracing::debug!(%peer, %reason, "provider not reachable for its ads");
                        continue;
                    }
                };
                for ad in &ads {
                    match self.on_ad(ad, now_ms) {
                        Ok(uid) => {
                            accepted += 1;
                            tracing::debug!(%peer, uid, task = %ad.task, "miner found in the DHT");
                        }
                        Err(e) => tracing::debug!(%peer, error = %e, "provider's ad refused"),
                    }
                }
            }
        }
        accepted
    }

    /// Takes in a capability ad from gossip, accepting it for forwarding or rejecting its sender.
    pub fn handle_ad_gossip(
        &self,
        message: meshmind_p2p::GossipMessage,
        now_ms: u64,
    ) -> Option<u32> {
        let result = decode::<v1::CapabilityAd>(&message.data)
            .map_err(|e| e.to_string())
            .and_then(|ad| self.on_ad(&ad, now_ms).map_err(|e| e.to_string()));
        match result {
            Ok(uid) => {
                message.validation.accept();
                Some(uid)
            }
            Err(reason) => {
                tracing::debug!(%reason, "capability ad rejected");
                message.validation.reject();
                None
            }
        }
    }

    /// A copy of the metagraph.
    pub fn metagraph(&self) -> Metagraph {
        lock(&self.metagraph).clone()
    }

    /// The current weight vector over the UIDs this validator gave the miners (its metagraph's),
    /// sorted by UID.
    pub fn weights(&self) -> Vec<(u32, u16)> {
        let metagraph = lock(&self.metagraph);
        let uids: std::collections::HashMap<PublicKey, u32> =
            metagraph.miners().map(|m| (m.key, m.uid)).collect();
        let mut weights: Vec<(u32, u16)> = lock(&self.scores)
            .weights()
            .into_iter()
            .filter_map(|(key, weight)| Some((*uids.get(&key)?, weight)))
            .collect();
        weights.sort_unstable();
        weights
    }

    /// The current weight vector over the UIDs `chain` registered the miners at (miners not
    /// registered there get no weight), sorted by UID.
    pub fn chain_weights(&self, chain: &crate::state::Subnet) -> Vec<(u32, u16)> {
        let mut weights: Vec<(u32, u16)> = lock(&self.scores)
            .weights()
            .into_iter()
            .filter_map(|(key, weight)| {
                Some((chain.uid_of(&crate::state::Key(key.to_bytes()))?, weight))
            })
            .collect();
        weights.sort_unstable();
        weights
    }

    /// A miner's score, by its hotkey.
    pub fn score(&self, miner: &PublicKey) -> f64 {
        lock(&self.scores).score(miner)
    }

    fn query(&self, task: &str, payload: Vec<u8>, deadline: Duration) -> v1::Query {
        v1::Query::new(
            self.config.network_id,
            self.config.subnet,
            task,
            payload,
            u32::try_from(deadline.as_millis()).unwrap_or(u32::MAX),
        )
    }

    /// Sends `query` to `miner` and returns its valid signed answer, or why it does not count.
    async fn ask(
        &self,
        miner: &MinerEntry,
        query: &v1::Query,
    ) -> Result<v1::QueryResponse, Outcome> {
        let frame = v1::QueryFrame {
            body: Some(v1::query_frame::Body::Query(query.clone())),
        };
        let deadline = Duration::from_millis(u64::from(query.deadline_ms));
        let bytes = self
            .network
            .query(miner.peer, &frame.encode_to_vec(), deadline)
            .await
            .map_err(|_| Outcome::Missed)?;
        let Ok(v1::QueryFrame {
            body: Some(v1::query_frame::Body::Response(response)),
        }) = decode::<v1::QueryFrame>(&bytes)
        else {
            return Err(Outcome::Wrong);
        };
        // The miner's key is already parsed: compare bytes and verify against it directly.
        let genuine = response.validate().is_ok()
            && response.miner.as_slice() == miner.key.as_bytes()
            && response.error.is_none()
            && response.query_hash == hash(query).to_vec()
            && Signature::from_bytes(&response.signature).is_ok_and(|sig| {
                verify_digest(&miner.key, &response.signing_digest(), &sig).is_ok()
            });
        if genuine {
            Ok(response)
        } else {
            Err(Outcome::Wrong)
        }
    }

    /// Challenges every live miner once per reference task it serves and scores the answers.
    pub async fn challenge_all(&self, now_ms: u64) -> Vec<(u32, Outcome)> {
        let miners: Vec<MinerEntry> = lock(&self.metagraph).miners().cloned().collect();
        let deadline = self.config.challenge_deadline;
        let mut pending = FuturesUnordered::new();
        for miner in miners {
            let tasks: Vec<String> = reference::TASKS
                .iter()
                .filter(|t| miner.serves(t, now_ms))
                .map(|t| t.to_string())
                .collect();
            if tasks.is_empty() {
                // An expired or non-reference miner earns nothing this round.
                pending.push(
                    Box::pin(async move { (miner.uid, miner.key, Outcome::Missed) })
                        as std::pin::Pin<
                            Box<
                                dyn std::future::Future<Output = (u32, PublicKey, Outcome)>
                                    + Send
                                    + '_,
                            >,
                        >,
                );
                continue;
            }
            for task in tasks {
                // Unpredictable, so a miner cannot answer challenges from a table made in advance.
                let seed = QueryId::random();
                let nonce = u64::from_le_bytes(seed.0[..8].try_into().unwrap_or_default());
                let Some((input, expected)) = reference::challenge(&task, nonce) else {
                    continue;
                };
                let query = self.query(&task, input, deadline);
                let miner = miner.clone();
                pending.push(Box::pin(async move {
                    let started = Instant::now();
                    let outcome = match self.ask(&miner, &query).await {
                        Ok(response) if response.output == expected => Outcome::Correct {
                            latency: started.elapsed(),
                            deadline,
                        },
                        Ok(_) => Outcome::Wrong,
                        Err(outcome) => outcome,
                    };
                    (miner.uid, miner.key, outcome)
                }));
            }
        }
        let mut outcomes = Vec::new();
        while let Some((uid, key, outcome)) = pending.next().await {
            lock(&self.scores).record(key, outcome);
            outcomes.push((uid, outcome));
        }
        outcomes
    }

    /// The best `top_k` live miners for the query's task, best first.
    fn candidates(&self, query: &v1::Query, now_ms: u64) -> Vec<MinerEntry> {
        let mut candidates: Vec<MinerEntry> = lock(&self.metagraph)
            .serving(&query.task, now_ms)
            .into_iter()
            .cloned()
            .collect();
        {
            let scores = lock(&self.scores);
            candidates.sort_by(|a, b| {
                scores
                    .score(&b.key)
                    .total_cmp(&scores.score(&a.key))
                    .then(a.uid.cmp(&b.uid))
            });
        }
        candidates.truncate(self.config.top_k.max(1));
        candidates
    }

    /// Opens a streamed query to `miner` and reads its first chunk, checked.
    async fn open_stream(
        &self,
        miner: &MinerEntry,
        query: &v1::Query,
        until: tokio::time::Instant,
    ) -> Result<(QueryStream, StreamCheck, v1::QueryChunk), String> {
        let frame = v1::QueryFrame {
            body: Some(v1::query_frame::Body::Query(query.clone())),
        };
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let mut stream = self
            .network
            .query_stream(miner.peer, &frame.encode_to_vec(), left)
            .await
            .map_err(|e| e.to_string())?;
        let mut check = StreamCheck::new(query, Some(miner.key));
        let first = read_chunk(&mut stream).await?;
        check.chunk(&first).map_err(|e| e.to_string())?;
        Ok((stream, check, first))
    }

    /// Routes a streamed query: the first of the best miners to start answering (hedged like
    /// [`Self::route`]) is relayed chunk by chunk into `out`, each checked; the stream ends with the
    /// miner's signed last chunk or with an error frame. Once a chunk is relayed there is no failover.
    pub async fn route_stream(
        &self,
        query: &v1::Query,
        now_ms: u64,
        out: mpsc::Sender<v1::QueryFrame>,
    ) {
        let candidates = self.candidates(query, now_ms);
        let until =
            tokio::time::Instant::now() + Duration::from_millis(u64::from(query.deadline_ms));
        let mut race = hedge(
            candidates.len(),
            Want::First,
            self.config.hedge_after,
            until,
            |i| {
                let miner = &candidates[i];
                async move {
                    match self.open_stream(miner, query, until).await {
                        Ok((stream, check, first)) => Ok((miner, stream, check, first)),
                        Err(reason) => Err(format!("uid {}: {reason}", miner.uid)),
                    }
                }
            },
        )
        .await;
        let Some((miner, mut stream, mut check, first)) = race.won.pop() else {
            let (code, message) = if race.timed_out {
                (
                    v1::ErrorCode::DeadlineExceeded,
                    "no miner started answering in time".to_string(),
                )
            } else if race.failed.is_empty() {
                (v1::ErrorCode::Unavailable, NO_MINER.to_string())
            } else {
                let reasons = race.failed.join("; ");
                (
                    v1::ErrorCode::Unavailable,
                    format!("no miner started a valid answer: {reasons}"),
                )
            };
            let _ = out.send(error_frame(code, message)).await;
            return;
        };
        let mut chunk = first;
        loop {
            let last = chunk.last;
            let frame = v1::QueryFrame {
                body: Some(v1::query_frame::Body::Chunk(chunk)),
            };
            if out.send(frame).await.is_err() || last {
                return;
            }
            let next = tokio::time::timeout_at(until, read_chunk(&mut stream)).await;
            let failure = match next {
                Err(_) => (
                    v1::ErrorCode::DeadlineExceeded,
                    "the miner's stream ran past the deadline".to_string(),
                ),
                Ok(Err(reason)) => (v1::ErrorCode::Unavailable, reason),
                Ok(Ok(next)) => match check.chunk(&next) {
                    Ok(_) => {
                        chunk = next;
                        continue;
                    }
                    Err(StreamError::Miner { code, message }) => (code, message),
                    Err(e) => (v1::ErrorCode::Unavailable, e.to_string()),
                },
            };
            tracing::debug!(uid = miner.uid, bytes = check.bytes(), reason = %failure.1, "streamed answer broke off");
            let message = format!(
                "miner uid {} broke off its answer: {}",
                miner.uid, failure.1
            );
            let _ = out.send(error_frame(failure.0, message)).await;
            return;
        }
    }

    /// Routes a client's query: the best live miners by score, hedged, first valid answer wins (or
    /// every valid answer, when asked).
    pub async fn route(&self, query: &v1::Query, now_ms: u64) -> v1::QueryFrame {
        let candidates = self.candidates(query, now_ms);
        if candidates.is_empty() {
            return error_frame(v1::ErrorCode::Unavailable, NO_MINER);
        }
        let until =
            tokio::time::Instant::now() + Duration::from_millis(u64::from(query.deadline_ms));
        let want = match query.want_all {
            true => Want::All,
            false => Want::First,
        };
        let race = hedge(
            candidates.len(),
            want,
            self.config.hedge_after,
            until,
            |i| self.ask(&candidates[i], query),
        )
        .await;
        let mut won = race.won;
        if !query.want_all
            && let Some(response) = won.pop()
        {
            return v1::QueryFrame {
                body: Some(v1::query_frame::Body::Response(response)),
            };
        }
        if !won.is_empty() {
            return v1::QueryFrame {
                body: Some(v1::query_frame::Body::Responses(v1::QueryResponses {
                    responses: won,
                })),
            };
        }
        error_frame(
            v1::ErrorCode::Unavailable,
            "no miner answered validly in time",
        )
    }

    /// Answers a client's inbound query by routing it (streamed through, when asked).
    pub async fn serve(&self, inbound: InboundQuery, now_ms: u64) {
        let mut responder = inbound.responder;
        let admitted = read_query(&inbound.payload).and_then(|query| {
            check_target(&query, &self.config.network_id, self.config.subnet).map(|()| query)
        });
        let frame = match admitted {
            Err(refusal) => refusal.frame(),
            Ok(query) if query.stream => {
                let (out, mut frames) = mpsc::channel::<v1::QueryFrame>(RELAY_BUFFERED);
                let relay = async {
                    while let Some(frame) = frames.recv().await {
                        responder.send(frame.encode_to_vec()).await?;
                    }
                    Ok::<(), meshmind_p2p::QueryError>(())
                };
                let (relayed, ()) = tokio::join!(relay, self.route_stream(&query, now_ms, out));
                if let Err(e) = relayed.and_then(|()| responder.finish()) {
                    tracing::debug!(error = %e, "streamed answer not delivered");
                }
                return;
            }
            Ok(query) => self.route(&query, now_ms).await,
        };
        let _ = responder.respond(frame.encode_to_vec()).await;
    }
}

/// Reads the next frame of a miner's stream, which must be a chunk.
async fn read_chunk(stream: &mut QueryStream) -> Result<v1::QueryChunk, String> {
    match stream.next().await {
        None => Err("the stream ended without a last chunk".into()),
        Some(Err(e)) => Err(e.to_string()),
        Some(Ok(bytes)) => match decode::<v1::QueryFrame>(&bytes) {
            Ok(v1::QueryFrame {
                body: Some(v1::query_frame::Body::Chunk(chunk)),
            }) => Ok(chunk),
            Ok(v1::QueryFrame {
                body: Some(v1::query_frame::Body::Error(e)),
            }) => Err(e.message),
            Ok(_) => Err("expected a chunk".into()),
            Err(e) => Err(e.to_string()),
        },
    }
}
