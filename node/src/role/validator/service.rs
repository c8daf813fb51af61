//! The validator: its metagraph of miners (from gossiped ads and the DHT), their scores and the
//! weights that follow, and the verified exchange with one miner that routing
//! (`router.rs`) and challenges (`challenger.rs`) share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshmind_p2p::{NetworkHandle, RateLimiter};
use meshmind_protocols::signing::verify_digest;
use meshmind_protocols::{
    Context, Keypair, NetworkId, PublicKey, Signature, Signed, ValidationError, decode, hash, v1,
};
use prost::Message;

use super::metagraph::{AdError, Metagraph, Target};
use crate::consensus::valset::mix64;
use crate::role::quota::stake_share;
use crate::scoring::{Outcome, ScoreConfig, Scoreboard};
use crate::state::Key;
use crate::topics::caps_key;

/// How long a DHT provider has to hand over its ads.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// How a validator challenges and routes.
#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    /// The network id.
    pub network_id: NetworkId,
    /// The subnet validated.
    pub subnet: u32,
    /// The subnet's tasks (from the genesis): its miners are looked up in the DHT by them.
    pub tasks: Vec<String>,
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
    /// Client queries routed to one miner, per second and in a burst, when this validator holds
    /// no permit or the miner does not say its capacity: below a miner's rate for callers without
    /// a permit (50 a second by default), so its own challenges always find room.
    pub routed_per_miner: (u32, u32),
    /// Queries one client (a peer, or an IP address over HTTP) may route: per second, and in a
    /// burst.
    pub per_client: (u32, u32),
    /// The scorer of each task challenged.
    pub scorers: super::scorer::Scorers,
}

/// Who asks a validator to route a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Client {
    /// A peer on the query plane.
    Peer(meshmind_p2p::PeerId),
    /// An address over HTTP (see [`Client::http`]).
    Ip(std::net::IpAddr),
}

impl Client {
    /// The client behind an HTTP connection from `addr`: its IPv4 address, or its IPv6 /64 (one
    /// host commonly holds a whole /64, so its addresses count as one client).
    pub fn http(addr: std::net::IpAddr) -> Self {
        match addr {
            std::net::IpAddr::V4(_) => Client::Ip(addr),
            std::net::IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Client::Ip(std::net::Ipv6Addr::from(prefix).into())
            }
        }
    }
}

impl ValidatorConfig {
    /// Defaults: 2 s challenges, top 3, hedge after 150 ms.
    pub fn new(network_id: NetworkId, subnet: u32) -> Self {
        Self {
            network_id,
            subnet,
            tasks: Vec::new(),
            challenge_deadline: Duration::from_secs(2),
            top_k: 3,
            hedge_after: Duration::from_millis(150),
            score: ScoreConfig::default(),
            max_clock_skew_ms: 5_000,
            routed_per_miner: (40, 80),
            per_client: (250, 500),
            scorers: super::scorer::Scorers::reference(),
        }
    }
}

/// A validator of one subnet.
pub struct Validator {
    pub(super) config: ValidatorConfig,
    pub(super) network: NetworkHandle,
    pub(super) metagraph: Mutex<Metagraph>,
    pub(super) scores: Mutex<Scoreboard<PublicKey>>,
    /// Client queries routed to each miner, and this validator's stake share that bounds them.
    routed: Mutex<Routed>,
    /// This validator's hotkey.
    key: PublicKey,
    /// Draws made, and the secret that makes them unpredictable: which routed answers have their
    /// signature checked, which miner is tried first.
    draws: std::sync::atomic::AtomicU64,
    seed: u64,
    /// Queries this validator has in flight at each miner.
    in_flight: Mutex<HashMap<PublicKey, u32>>,
    /// Room for client queries waiting for a miner with room.
    pub(super) waiting: tokio::sync::Semaphore,
    /// Queries of each client (shared by the validators of one node's subnets).
    pub(super) clients: Arc<Mutex<RateLimiter<Client>>>,
    /// Routed answers drawn to be judged by their task's scorer in the next round.
    pub(super) organic: Mutex<Vec<Organic>>,
}

/// A query in flight at a miner, counted until dropped.
pub(super) struct Flight<'a> {
    validator: &'a Validator,
    miner: PublicKey,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.validator.in_flight);
        if let Some(n) = in_flight.get_mut(&self.miner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                in_flight.remove(&self.miner);
            }
        }
    }
}

/// What bounds the client queries a validator routes to each miner.
struct Routed {
    limiter: RateLimiter<PublicKey>,
    /// The stake behind this validator and behind every permit holder of the subnet, while it
    /// holds a permit.
    share: Option<(u64, u64)>,
}

/// Most client queries waiting for a miner with room at once; more are refused at once.
pub const MAX_WAITING: usize = 4_096;

/// One in this many routed answers has its signature checked; every challenge's is.
pub const SIGNATURE_SAMPLE: u64 = 16;

/// One in this many routed answers is judged by its task's scorer, as a challenge's would be, so a
/// miner cannot answer challenges well and clients badly.
pub const ORGANIC_SAMPLE: u64 = 32;

/// Most routed answers waiting to be judged; more drawn meanwhile are let go.
pub const MAX_ORGANIC: usize = 64;

/// A routed answer to judge: the client's query and the miner's answer.
#[derive(Debug, Clone)]
pub(super) struct Organic {
    /// The client's query.
    pub query: v1::Query,
    /// The miner that answered.
    pub miner: PublicKey,
    /// Its output.
    pub output: Vec<u8>,
    /// The time the validator waited for it (hedging included).
    pub elapsed: Duration,
}

/// How much of an answer's signature [`Validator::ask`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// Always (challenges, which score).
    Always,
    /// One answer in [`SIGNATURE_SAMPLE`] (routed answers).
    Sampled,
}

/// Why a miner gave no usable answer to a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AskError {
    /// It is at its load limits (or this validator is at its share of it).
    Overloaded,
    /// No answer in time, or no connection.
    Missed(String),
    /// Not a valid signed answer to the query, or a failure it reported.
    Wrong(String),
}

impl AskError {
    /// The outcome a challenge that failed so is scored as.
    pub(super) fn outcome(&self) -> Outcome {
        match self {
            AskError::Overloaded | AskError::Missed(_) => Outcome::Missed,
            AskError::Wrong(_) => Outcome::Wrong,
        }
    }
}

impl std::fmt::Display for AskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AskError::Overloaded => write!(f, "overloaded"),
            AskError::Missed(why) => write!(f, "no answer ({why})"),
            AskError::Wrong(why) => write!(f, "wrong answer ({why})"),
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Validator {
    /// A validator using `network` (its hotkey's network).
    pub fn new(config: ValidatorConfig, keypair: &Keypair, network: NetworkHandle) -> Self {
        Self {
            metagraph: Mutex::new(Metagraph::new(config.subnet)),
            scores: Mutex::new(Scoreboard::new(config.score)),
            routed: Mutex::new(Routed {
                limiter: RateLimiter::new(config.routed_per_miner.0, config.routed_per_miner.1),
                share: None,
            }),
            key: keypair.public(),
            draws: std::sync::atomic::AtomicU64::new(0),
            in_flight: Mutex::default(),
            waiting: tokio::sync::Semaphore::new(MAX_WAITING),
            seed: {
                let mut seed = [0u8; 8];
                // Without randomness the order is fixed but still spread.
                let _ = getrandom::fill(&mut seed);
                u64::from_le_bytes(seed)
            },
            clients: Arc::new(Mutex::new(RateLimiter::new(
                config.per_client.0,
                config.per_client.1,
            ))),
            organic: Mutex::default(),
            config,
            network,
        }
    }

    /// Takes one of `miner`'s routed-query tokens; false when this validator already sends it as
    /// many client queries as leave room for its challenges: three quarters of its quota there
    /// (its stake's share of the miner's advertised capacity) while it holds a permit, else
    /// [`ValidatorConfig::routed_per_miner`].
    pub(super) fn take_routed(&self, miner: &Target) -> bool {
        let mut routed = lock(&self.routed);
        let (rate, burst) = match routed.share {
            Some((own, total)) if miner.capacity > 0 => {
                let rate = (stake_share(miner.capacity, own, total) / 4 * 3).max(1);
                (rate, rate.saturating_mul(2))
            }
            _ => self.config.routed_per_miner,
        };
        let now = std::time::Instant::now();
        routed.limiter.allow_with(miner.key, now, rate, burst)
    }

    /// Sets the subnet's validators (permit holders that set weights lately) and their stake, from
    /// the finalized state.
    pub fn set_permits(&self, permits: &[(Key, u64)]) {
        let total = permits
            .iter()
            .fold(0u64, |sum, (_, s)| sum.saturating_add(*s));
        let own = permits
            .iter()
            .find(|(key, _)| key.0 == *self.key.as_bytes())
            .map(|&(_, stake)| (stake, total));
        lock(&self.routed).share = own;
    }

    /// Miners in the metagraph.
    pub fn miners_seen(&self) -> usize {
        lock(&self.metagraph).miners().count()
    }

    /// The subnet validated.
    pub fn subnet(&self) -> u32 {
        self.config.subnet
    }

    /// The subnet's tasks.
    pub fn tasks(&self) -> &[String] {
        &self.config.tasks
    }

    /// Takes one of `client`'s query tokens; false when it is over its rate.
    pub fn admit_client(&self, client: Client) -> bool {
        lock(&self.clients).allow(client, std::time::Instant::now())
    }

    /// Takes `n` of `client`'s query tokens, all or none; false (taking none) when it has fewer.
    pub fn admit_client_n(&self, client: Client, n: u32) -> bool {
        lock(&self.clients).allow_n(client, std::time::Instant::now(), n)
    }

    /// Takes in a capability ad; returns the miner's UID.
    pub fn on_ad(&self, ad: &v1::CapabilityAd, now_ms: u64) -> Result<u32, AdError> {
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
        let ad = match decode::<v1::CapabilityAd>(&message.data) {
            Ok(ad) => ad,
            Err(reason) => {
                tracing::debug!(%reason, "capability ad rejected");
                message.validation.reject();
                return None;
            }
        };
        match self.on_ad(&ad, now_ms) {
            Ok(uid) => {
                message.validation.accept();
                Some(uid)
            }
            Err(reason) if reason.penalise() => {
                tracing::debug!(%reason, "capability ad rejected");
                message.validation.reject();
                None
            }
            Err(reason) => {
                tracing::debug!(%reason, "capability ad dropped");
                message.validation.ignore();
                None
            }
        }
    }

    /// Sets the hotkeys registered on the subnet (from the finalized economy): ads of others are
    /// kept only as a few candidates.
    pub fn set_registered(&self, registered: impl IntoIterator<Item = PublicKey>) {
        lock(&self.metagraph).set_registered(registered);
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

    /// The next draw of a sequence the miners cannot predict.
    pub(super) fn draw(&self) -> u64 {
        let n = self
            .draws
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        mix64(self.seed ^ n)
    }

    /// Whether this routed answer to a query of `task` is to be judged: one in [`ORGANIC_SAMPLE`],
    /// of tasks whose scorer judges clients' queries.
    pub(super) fn draw_organic(&self, task: &str) -> bool {
        let judged = self
            .config
            .scorers
            .get(task)
            .is_some_and(|s| s.judges_organic());
        judged && self.draw().is_multiple_of(ORGANIC_SAMPLE)
    }

    /// Keeps one in [`ORGANIC_SAMPLE`] routed answers, of tasks with a scorer, to be judged.
    pub(super) fn sample_organic(
        &self,
        query: &v1::Query,
        response: &v1::QueryResponse,
        elapsed: Duration,
    ) {
        if !self.draw_organic(&query.task) {
            return;
        }
        let Ok(miner) = PublicKey::from_bytes(&response.miner) else {
            return;
        };
        self.keep_organic(Organic {
            query: query.clone(),
            miner,
            output: response.output.clone(),
            elapsed,
        });
    }

    /// Keeps `sample` for the next round, unless [`MAX_ORGANIC`] already wait.
    pub(super) fn keep_organic(&self, sample: Organic) {
        let mut organic = lock(&self.organic);
        if organic.len() < MAX_ORGANIC {
            organic.push(sample);
        }
    }

    /// Whether the signature of this routed answer is checked: one in [`SIGNATURE_SAMPLE`].
    fn sampled(&self) -> bool {
        self.draw().is_multiple_of(SIGNATURE_SAMPLE)
    }

    /// Queries this validator has in flight at `miner`.
    pub(super) fn in_flight(&self, miner: &PublicKey) -> u32 {
        lock(&self.in_flight).get(miner).copied().unwrap_or(0)
    }

    /// Counts a query in flight at `miner` until the guard is dropped.
    pub(super) fn flight(&self, miner: PublicKey) -> Flight<'_> {
        *lock(&self.in_flight).entry(miner).or_default() += 1;
        Flight {
            validator: self,
            miner,
        }
    }

    /// Sends `query` to `miner` and returns its valid signed answer, or why it does not count.
    /// The answer comes over a connection that proves the miner's key, so its signature (which
    /// the answer carries on, for clients that keep proof) is checked as `check` says; a forgery
    /// found costs the miner a wrong answer in its score.
    pub(super) async fn ask(
        &self,
        miner: &Target,
        query: &v1::Query,
        check: Check,
    ) -> Result<v1::QueryResponse, AskError> {
        let frame = v1::QueryFrame {
            body: Some(v1::query_frame::Body::Query(query.clone())),
        };
        let deadline = Duration::from_millis(u64::from(query.deadline_ms));
        let bytes = self
            .network
            .query(miner.peer, &frame.encode_to_vec(), deadline)
            .await
            .map_err(|e| AskError::Missed(e.to_string()))?;
        let refusal = |e: &v1::Error| match v1::ErrorCode::try_from(e.code) {
            Ok(v1::ErrorCode::Overloaded) => AskError::Overloaded,
            // Too slow, or not admitting this validator (yet): no answer, not a wrong one.
            Ok(v1::ErrorCode::DeadlineExceeded | v1::ErrorCode::Refused) => {
                AskError::Missed(e.message.clone())
            }
            _ => AskError::Wrong(format!("it said: {}", e.message)),
        };
        let response = match decode::<v1::QueryFrame>(&bytes) {
            Ok(v1::QueryFrame {
                body: Some(v1::query_frame::Body::Response(response)),
            }) => response,
            Ok(v1::QueryFrame {
                body: Some(v1::query_frame::Body::Error(e)),
            }) => return Err(refusal(&e)),
            _ => return Err(AskError::Wrong("not a response".into())),
        };
        if let Some(e) = &response.error {
            return Err(refusal(e));
        }
        let answers =
            response.validate_from(&miner.key).is_ok() && response.query_hash == hash(query).0;
        if !answers {
            return Err(AskError::Wrong("not an answer to the query".into()));
        }
        if check == Check::Sampled && !self.sampled() {
            return Ok(response);
        }
        // The miner's key is already parsed: verify against it directly.
        let signed = Signature::from_bytes(&response.signature)
            .is_ok_and(|sig| verify_digest(&miner.key, &response.signing_digest(), &sig).is_ok());
        if signed {
            return Ok(response);
        }
        if check == Check::Sampled {
            lock(&self.scores).record(miner.key, Outcome::Wrong);
        }
        Err(AskError::Wrong("a bad signature".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::Client;

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let a: std::net::IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: std::net::IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Client::http(a), Client::http(b));
        assert_ne!(Client::http(a), Client::http(c));
        let v4: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(Client::http(v4), Client::Ip(v4));
    }
}
