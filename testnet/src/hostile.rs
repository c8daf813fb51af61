//! A hostile peer: `meshmind-testnet hostile` joins a running testnet as an ordinary peer, mounts
//! one attack on a target node, bounded in time and in count, and prints what it sent as one JSON
//! line. Scenarios start it with `action = "attack"`.
//!
//! It holds no stake and no registration; it has only what anyone on the internet has: fresh keys,
//! connections, and the public genesis.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meshmind_node::api::types::Status;
use meshmind_node::genesis::Genesis;
use meshmind_p2p::{Multiaddr, NetworkHandle, PeerId};
use meshmind_protocols::{Keypair, NetworkId, Signed, v1};
use prost::Message;
use serde::{Deserialize, Serialize};

/// Requests or queries in flight at once in the request attacks.
const IN_FLIGHT: usize = 16;
/// The longest snapshot range a sync request may ask for.
const MAX_RANGE: u32 = 64;
/// Certificates with garbage signatures in one forged batch.
const FORGED_PER_BATCH: usize = 1024;

/// The attacks the hostile peer knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    /// Stale but well-formed consensus votes, faster than one peer may send.
    GossipFlood,
    /// Self-signed capability ads of fresh hotkeys nobody registered, pointing at a dead port.
    FakeAds,
    /// Weight commitments from fresh keys for epochs far ahead.
    FutureCommits,
    /// Registrations that can never apply (fresh coldkeys with no balance), on the tx topic.
    MempoolStuffing,
    /// Requests for the longest snapshot ranges, as many as the target takes.
    SyncFlood,
    /// Batches of certificates naming the real validators with garbage signatures, by request
    /// and by gossip.
    ForgedCertificates,
    /// Queries through the target validator's query plane, many at once.
    QueryFlood,
}

impl std::fmt::Display for Attack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        f.write_str(&name)
    }
}

impl Attack {
    /// Messages or requests sent per second unless told otherwise.
    pub fn default_rate(self) -> u32 {
        match self {
            // Over the per-peer gossip budget of 1,000 a second, so the target cuts them off.
            Self::GossipFlood => 6_000,
            Self::FakeAds | Self::FutureCommits | Self::MempoolStuffing => 1_000,
            Self::SyncFlood | Self::QueryFlood => 1_000,
            Self::ForgedCertificates => 20,
        }
    }

    /// Most messages or requests sent unless told otherwise.
    pub fn default_count(self) -> u64 {
        match self {
            Self::FakeAds => 10_000,
            Self::MempoolStuffing => 9_000,
            Self::FutureCommits => 2_000,
            _ => 1_000_000,
        }
    }
}

/// Why the hostile peer could not mount its attack.
#[derive(Debug, thiserror::Error)]
pub enum HostileError {
    /// The target's API did not say where it is.
    #[error("target {api}: {reason}")]
    Target {
        /// The API asked.
        api: String,
        /// What was missing.
        reason: String,
    },
    /// The genesis could not be read.
    #[error("genesis: {0}")]
    Genesis(String),
    /// The peer could not start, or its network layer failed.
    #[error(transparent)]
    Peer(#[from] crate::peer::PeerError),
    /// No connection to the target came up.
    #[error("no connection to the target within {0:?}")]
    NoConnection(Duration),
}

/// What an attack sent, as the hostile peer prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Tally {
    /// The attack.
    pub attack: Attack,
    /// The target's peer id.
    pub target: String,
    /// Messages published, or requests and queries sent.
    pub sent: u64,
    /// Requests and queries the target answered with an error.
    pub refused: u64,
    /// The target's error messages, with how often each came (the first few kinds).
    pub refusals: std::collections::BTreeMap<String, u64>,
    /// Sends that failed on our side or got no answer (no peers yet, timeouts, closed streams).
    pub failed: u64,
    /// How long the attack ran.
    pub elapsed_ms: u64,
}

/// How hard and how long to attack.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Messages or requests per second.
    pub rate: u32,
    /// Most messages or requests.
    pub count: u64,
    /// Longest run.
    pub duration: Duration,
}

/// The node under attack, as its API and the genesis describe it.
struct Target {
    peer: PeerId,
    addr: Multiaddr,
    query_addr: Option<SocketAddr>,
    network_id: NetworkId,
    tag: String,
    epoch: u64,
    validators: Vec<Vec<u8>>,
}

impl Target {
    async fn read(api: &str, genesis: &Path) -> Result<Self, HostileError> {
        let bad = |reason: String| HostileError::Target {
            api: api.to_string(),
            reason,
        };
        let status: Status =
            crate::api::call(
                api,
                Duration::from_secs(5),
                |c| async move { c.status().await },
            )
            .await
            .map_err(|e| bad(e.to_string()))?;
        let genesis = Genesis::read(genesis).map_err(|e| HostileError::Genesis(e.to_string()))?;
        let addr: Multiaddr = status
            .listen
            .iter()
            .find(|a| a.contains("quic-v1"))
            .ok_or_else(|| bad("no QUIC listen address".into()))?
            .parse()
            .map_err(|e| bad(format!("listen address: {e}")))?;
        // Certificates list their signers in key order; forged ones do too, to pass the decoder.
        let mut validators: Vec<Vec<u8>> = genesis
            .message
            .validators
            .iter()
            .map(|v| v.hotkey.clone())
            .collect();
        validators.sort();
        Ok(Self {
            peer: status
                .peer_id
                .parse()
                .map_err(|e| bad(format!("peer id: {e}")))?,
            addr,
            query_addr: status.query_addr.as_deref().and_then(|a| a.parse().ok()),
            network_id: genesis.network_id,
            tag: status.network,
            epoch: status.epoch,
            validators,
        })
    }

    /// Joins the network with a fresh identity, connected to the target.
    async fn join(&self) -> Result<NetworkHandle, HostileError> {
        let network = crate::peer::spawn(&self.tag, Some(self.addr.clone()))?;
        let limit = Duration::from_secs(15);
        let start = Instant::now();
        while !network
            .peers()
            .await
            .map_err(crate::peer::PeerError::from)?
            .contains(&self.peer)
        {
            if start.elapsed() > limit {
                return Err(HostileError::NoConnection(limit));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(network)
    }
}

/// Distinct refusal messages kept in a tally.
const REFUSAL_KINDS: usize = 8;

/// Counters shared by an attack's tasks.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    refusals: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Counts {
    fn add(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refusal with the target's message.
    fn refusal(&self, message: String) {
        self.add(&self.refused);
        let mut kinds = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        if kinds.len() < REFUSAL_KINDS || kinds.contains_key(&message) {
            *kinds.entry(message).or_default() += 1;
        }
    }
}

/// Paces a loop at `rate` per second and stops it after `count` steps or `duration`.
struct Pace {
    start: Instant,
    bounds: Bounds,
    step: u64,
}

impl Pace {
    fn new(bounds: Bounds) -> Self {
        Self {
            start: Instant::now(),
            bounds,
            step: 0,
        }
    }

    /// Waits for the next step's slot; `None` once the count or the time is used up.
    async fn next(&mut self) -> Option<u64> {
        if self.step >= self.bounds.count || self.start.elapsed() >= self.bounds.duration {
            return None;
        }
        let due = Duration::from_secs_f64(self.step as f64 / f64::from(self.bounds.rate.max(1)));
        if let Some(wait) = due.checked_sub(self.start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        self.step += 1;
        Some(self.step - 1)
    }
}

/// Deterministic filler bytes for message `i`.
fn junk(i: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut block = 0u64;
    while out.len() < len {
        let hash = blake3::hash(&[i.to_le_bytes(), block.to_le_bytes()].concat());
        out.extend_from_slice(hash.as_bytes());
        block += 1;
    }
    out.truncate(len);
    out
}

fn fresh_key() -> Keypair {
    // The OS random source failing is not an attack outcome worth reporting: fall back to a key
    // derived from the clock.
    Keypair::generate().unwrap_or_else(|_| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Keypair::from_secret(blake3::hash(&now.to_le_bytes()).as_bytes())
    })
}

fn now_ms() -> u64 {
    meshmind_node::clock::now_ms()
}

/// Mounts `attack` on the node whose API is `api`, on the network of `genesis`.
pub async fn mount(
    attack: Attack,
    api: &str,
    genesis: &Path,
    bounds: Bounds,
) -> Result<Tally, HostileError> {
    let target = Target::read(api, genesis).await?;
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    match attack {
        Attack::GossipFlood => gossip_flood(&target, bounds, &counts).await?,
        Attack::FakeAds => {
            let network = target.join().await?;
            let network_id = target.network_id;
            publish_each(&network, bounds, &counts, |_| {
                let ad = v1::CapabilityAd {
                    network_id: network_id.to_vec(),
                    subnet: 1,
                    task: "sort".into(),
                    model_id: "fake".into(),
                    version: "1".into(),
                    max_concurrency: 64,
                    addrs: Vec::new(),
                    // The discard port: a validator that dials it wastes its effort.
                    query_addr: "127.0.0.1:9".into(),
                    issued_at_ms: now_ms(),
                    expires_at_ms: now_ms() + 10 * 60_000,
                    ..Default::default()
                }
                .signed(&fresh_key());
                ("caps/1".to_string(), ad.encode_to_vec())
            })
            .await;
            network.shutdown().await;
        }
        Attack::FutureCommits => {
            let network = target.join().await?;
            let (network_id, epoch) = (target.network_id, target.epoch);
            publish_each(&network, bounds, &counts, |i| {
                let commit = v1::WeightCommit {
                    network_id: network_id.to_vec(),
                    subnet: 1,
                    epoch: epoch + 2 + i,
                    commit_hash: junk(i, 32),
                    ..Default::default()
                }
                .signed(&fresh_key());
                ("weights/1/commit".to_string(), commit.encode_to_vec())
            })
            .await;
            network.shutdown().await;
        }
        Attack::MempoolStuffing => {
            let network = target.join().await?;
            let network_id = target.network_id;
            publish_each(&network, bounds, &counts, |_| {
                let (coldkey, hotkey) = (fresh_key(), fresh_key());
                let register = v1::Register {
                    hotkey: hotkey.public().to_bytes().to_vec(),
                    subnet: 1,
                    max_burn: 0,
                    hotkey_signature: Vec::new(),
                }
                .consented(&hotkey, &network_id.to_vec(), &coldkey.public());
                let tx = v1::Transaction {
                    network_id: network_id.to_vec(),
                    nonce: 0,
                    kind: Some(v1::transaction::Kind::Register(register)),
                    ..Default::default()
                }
                .signed(&coldkey);
                ("tx".to_string(), tx.encode_to_vec())
            })
            .await;
            network.shutdown().await;
        }
        Attack::SyncFlood => {
            let network = target.join().await?;
            let request = v1::SyncRequest {
                body: Some(v1::sync_request::Body::Range(v1::SnapshotRange {
                    from_epoch: 0,
                    count: MAX_RANGE,
                })),
            }
            .encode_to_vec();
            request_each(&network, target.peer, bounds, &counts, move |_| {
                request.clone()
            })
            .await;
            network.shutdown().await;
        }
        Attack::ForgedCertificates => {
            let network = target.join().await?;
            let batch = forged_batch(&target);
            let gossip = batch.messages.first().map(Message::encode_to_vec);
            let request = v1::SyncRequest {
                body: Some(v1::sync_request::Body::Consensus(batch)),
            }
            .encode_to_vec();
            // One forged certificate by gossip for every batch by request.
            if let Some(gossip) = gossip {
                let _ = network.subscribe("consensus").await;
                let _ = network.publish("consensus", gossip).await;
            }
            request_each(&network, target.peer, bounds, &counts, move |_| {
                request.clone()
            })
            .await;
            network.shutdown().await;
        }
        Attack::QueryFlood => {
            let network = target.join().await?;
            let addr = target.query_addr.ok_or_else(|| HostileError::Target {
                api: api.to_string(),
                reason: "no query plane".into(),
            })?;
            network
                .add_query_addr(target.peer, addr)
                .map_err(|e| HostileError::Target {
                    api: api.to_string(),
                    reason: e.to_string(),
                })?;
            query_each(&network, &target, bounds, &counts).await;
            network.shutdown().await;
        }
    }
    Ok(Tally {
        attack,
        target: target.peer.to_string(),
        sent: counts.sent.load(Ordering::Relaxed),
        refused: counts.refused.load(Ordering::Relaxed),
        refusals: counts
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        failed: counts.failed.load(Ordering::Relaxed),
        elapsed_ms: start.elapsed().as_millis() as u64,
    })
}

/// Consensus votes for epoch 0, long decided: well formed, so they are dropped without a
/// penalty (no honest node can tell a stale vote from a late one), and pushed faster than one
/// peer may send.
async fn gossip_flood(
    target: &Target,
    bounds: Bounds,
    counts: &Counts,
) -> Result<(), HostileError> {
    let network = target.join().await?;
    let network_id = target.network_id;
    publish_each(&network, bounds, counts, |i| {
        let vote = v1::Vote {
            network_id: network_id.to_vec(),
            epoch: 0,
            round: (i % 1_000) as u32,
            vote_type: v1::VoteType::Prevote as i32,
            value_id: junk(i, 32),
            valset_hash: junk(i + 1, 32),
            validator: fresh_key().public().to_bytes().to_vec(),
            signature: junk(i + 2, 64),
        };
        let message = v1::ConsensusMessage {
            body: Some(v1::consensus_message::Body::Vote(vote)),
        };
        ("consensus".to_string(), message.encode_to_vec())
    })
    .await;
    network.shutdown().await;
    Ok(())
}

/// Publishes `make(i)` (topic, body) at the pace of `bounds`.
async fn publish_each(
    network: &NetworkHandle,
    bounds: Bounds,
    counts: &Counts,
    mut make: impl FnMut(u64) -> (String, Vec<u8>),
) {
    let mut pace = Pace::new(bounds);
    while let Some(i) = pace.next().await {
        let (topic, data) = make(i);
        match network.publish(&topic, data).await {
            Ok(()) => counts.add(&counts.sent),
            Err(_) => counts.add(&counts.failed),
        }
    }
}

/// The error a `/sync/1` answer carries, if it is a refusal.
fn refusal(answer: &[u8]) -> Option<String> {
    match meshmind_protocols::decode::<v1::SyncResponse>(answer).map(|r| r.body) {
        Ok(Some(v1::sync_response::Body::Error(e))) => Some(e.message),
        _ => None,
    }
}

/// Sends `make(i)` on `/sync/1` to `peer` at the pace of `bounds`, [`IN_FLIGHT`] at a time.
async fn request_each(
    network: &NetworkHandle,
    peer: PeerId,
    bounds: Bounds,
    counts: &Arc<Counts>,
    make: impl Fn(u64) -> Vec<u8>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut pace = Pace::new(bounds);
    while let Some(i) = pace.next().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let (network, counts, request) = (network.clone(), counts.clone(), make(i));
        counts.add(&counts.sent);
        tokio::spawn(async move {
            match network
                .request(peer, request, Duration::from_secs(10))
                .await
            {
                Ok(answer) => {
                    if let Some(message) = refusal(&answer) {
                        counts.refusal(message);
                    }
                }
                Err(_) => counts.add(&counts.failed),
            }
            drop(slot);
        });
    }
    let _ = slots.acquire_many(IN_FLIGHT as u32).await;
}

/// A batch of certificates for the target's epoch, naming every genesis validator, with garbage
/// signatures.
fn forged_batch(target: &Target) -> v1::ConsensusBatch {
    let messages = (0..FORGED_PER_BATCH as u64)
        .map(|i| v1::ConsensusMessage {
            body: Some(v1::consensus_message::Body::Certificate(v1::Certificate {
                network_id: target.network_id.to_vec(),
                epoch: target.epoch,
                round: 0,
                value_id: junk(i, 32),
                valset_hash: junk(i + 1, 32),
                signatures: target
                    .validators
                    .iter()
                    .map(|validator| v1::CommitSignature {
                        validator: validator.clone(),
                        signature: junk(i, 64),
                    })
                    .collect(),
            })),
        })
        .collect();
    v1::ConsensusBatch { messages }
}

/// Sends sort queries to the target validator's query plane at the pace of `bounds`,
/// [`IN_FLIGHT`] at a time.
async fn query_each(
    network: &NetworkHandle,
    target: &Target,
    bounds: Bounds,
    counts: &Arc<Counts>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut pace = Pace::new(bounds);
    while let Some(_i) = pace.next().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let frame = v1::QueryFrame {
            body: Some(v1::query_frame::Body::Query(v1::Query::new(
                target.network_id,
                1,
                "sort",
                b"pear apple fig".to_vec(),
                2_000,
            ))),
        }
        .encode_to_vec();
        let (network, counts, peer) = (network.clone(), counts.clone(), target.peer);
        counts.add(&counts.sent);
        tokio::spawn(async move {
            match network.query(peer, &frame, Duration::from_secs(3)).await {
                Ok(answer) => {
                    let body = meshmind_protocols::decode::<v1::QueryFrame>(&answer)
                        .ok()
                        .and_then(|f| f.body);
                    if let Some(v1::query_frame::Body::Error(e)) = body {
                        counts.refusal(e.message);
                    }
                }
                Err(_) => counts.add(&counts.failed),
            }
            drop(slot);
        });
    }
    let _ = slots.acquire_many(IN_FLIGHT as u32).await;
}
