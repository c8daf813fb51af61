//! The load tool: concurrent clients query a validator, over its HTTP gateway or its p2p query
//! plane, for a bounded time and count, and the run reports throughput, latency percentiles,
//! errors by kind and the share of answers per miner. It talks to loopback only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshmind_node::api::client::ApiClient;
use meshmind_node::api::types::{QueryAnswer, QueryRequest};
use meshmind_node::http::ClientError;
use meshmind_node::role::reference;
use meshmind_p2p::{NetworkHandle, PeerId};
use meshmind_protocols::{NetworkId, v1};
use prost::Message;
use serde::{Deserialize, Serialize};

/// Most concurrent clients.
pub const MAX_CLIENTS: usize = 1024;
/// Longest run.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// Each query's budget at the validator.
const DEADLINE_MS: u32 = 3_000;

/// How the clients reach the validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Plane {
    /// `POST /query` on its HTTP API.
    Http,
    /// Its p2p query plane (QUIC), as one peer.
    P2p,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The validator's HTTP API (`127.0.0.1:7410`); on the p2p plane, where its addresses are read.
    pub api: String,
    /// The plane.
    pub plane: Plane,
    /// Concurrent clients, each sending its next query when the last is answered.
    pub clients: usize,
    /// Longest run.
    pub duration: Duration,
    /// Most queries in all.
    pub count: u64,
    /// The subnet queried.
    pub subnet: u32,
    /// A reference task (`sort`, `arith`), so every answer can be checked.
    pub task: String,
    /// Queries a second each client sends at most (0: each asks again as soon as answered).
    pub rate_per_client: f64,
}

/// Why a load run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A bound of the spec is out of range.
    #[error("{0}")]
    Spec(String),
    /// The validator's API could not be read.
    #[error("validator {api}: {reason}")]
    Target {
        /// The API.
        api: String,
        /// Why.
        reason: String,
    },
    /// The client peer could not start.
    #[error(transparent)]
    Peer(#[from] crate::peer::PeerError),
}

/// One query's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Ms since the run began.
    pub t_ms: u64,
    /// Round-trip time.
    pub latency_ms: f64,
    /// Whether the right answer came back.
    pub ok: bool,
}

/// What a load run saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    /// The plane.
    pub plane: Plane,
    /// Concurrent clients.
    pub clients: usize,
    /// How long it ran, in seconds.
    pub seconds: f64,
    /// Queries sent.
    pub sent: u64,
    /// Queries answered correctly.
    pub ok: u64,
    /// Correct answers per second.
    pub ok_per_second: f64,
    /// Latency percentiles over every query, in ms.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Failed queries by kind (`overloaded`, `deadline`, `wrong answer`, `HTTP 502 ...`).
    pub errors: BTreeMap<String, u64>,
    /// Correct answers per answering miner (hotkey, first 16 hex digits).
    pub miners: BTreeMap<String, u64>,
    /// Every query, in order of completion.
    #[serde(skip)]
    pub samples: Vec<Sample>,
}

impl LoadReport {
    /// A one-screen summary.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} clients over {:?} for {:.1} s: {} sent, {} ok ({:.0}/s), p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms\n",
            self.clients,
            self.plane,
            self.seconds,
            self.sent,
            self.ok,
            self.ok_per_second,
            self.p50_ms,
            self.p99_ms,
            self.max_ms
        );
        for (kind, n) in &self.errors {
            out.push_str(&format!("  error {kind}: {n}\n"));
        }
        for (miner, n) in &self.miners {
            let share = 100.0 * *n as f64 / self.ok.max(1) as f64;
            out.push_str(&format!("  miner {miner}: {n} ({share:.1} %)\n"));
        }
        out
    }
}

/// What each query came back as.
enum Outcome {
    /// The right answer, from this miner.
    Ok(String),
    /// A failure of this kind.
    Failed(String),
}

/// The clients' shared record.
#[derive(Default)]
struct Record {
    samples: Vec<Sample>,
    errors: BTreeMap<String, u64>,
    miners: BTreeMap<String, u64>,
}

/// The p2p side of a run: a peer connected to the validator.
struct Plane2p {
    network: NetworkHandle,
    peer: PeerId,
    network_id: NetworkId,
}

/// Runs `spec` and reports; `genesis` names the network (needed on the p2p plane).
pub async fn run(spec: &LoadSpec, genesis: Option<&Path>) -> Result<LoadReport, LoadError> {
    let addr: SocketAddr = spec
        .api
        .parse()
        .map_err(|_| LoadError::Spec(format!("api {:?}: host:port expected", spec.api)))?;
    if !addr.ip().is_loopback() {
        return Err(LoadError::Spec(format!(
            "api {addr}: the load tool talks to loopback only"
        )));
    }
    if spec.clients == 0 || spec.clients > MAX_CLIENTS {
        return Err(LoadError::Spec(format!("clients: 1 to {MAX_CLIENTS}")));
    }
    if !(spec.rate_per_client >= 0.0 && spec.rate_per_client.is_finite()) {
        return Err(LoadError::Spec("rate per client: 0 or more".into()));
    }
    if spec.duration.is_zero() || spec.duration > MAX_DURATION {
        return Err(LoadError::Spec(format!("duration: up to {MAX_DURATION:?}")));
    }
    if work(&spec.task, 0).is_none() {
        return Err(LoadError::Spec(format!(
            "task {:?}: a reference task ({}) so answers can be checked, or {EMBED}",
            spec.task,
            reference::TASKS.join(", ")
        )));
    }
    let p2p = match spec.plane {
        Plane::Http => None,
        Plane::P2p => Some(Arc::new(join(&spec.api, genesis).await?)),
    };
    let record = Arc::new(Mutex::new(Record::default()));
    let issued = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now();
    let mut clients = Vec::new();
    for client in 0..spec.clients {
        let (spec, record, issued, p2p) =
            (spec.clone(), record.clone(), issued.clone(), p2p.clone());
        // Each client its own loopback address (all of 127/8 is this host's), so that the
        // validator's per-address limit sees as many clients as there are, and its own
        // connection, kept alive.
        let http = ApiClient::bound_to(&spec.api, client_address(client))
            .map_err(|e| LoadError::Spec(e.to_string()))?;
        clients.push(tokio::spawn(async move {
            let mut seed = (client as u64) << 32;
            let mut pace = (spec.rate_per_client > 0.0).then(|| {
                let every = Duration::from_secs_f64(1.0 / spec.rate_per_client.min(1e6));
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick
            });
            loop {
                if let Some(pace) = &mut pace {
                    pace.tick().await;
                }
                let n = issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= spec.count || start.elapsed() >= spec.duration {
                    return;
                }
                seed += 1;
                let Some((input, expected)) = work(&spec.task, seed) else {
                    return;
                };
                let asked = Instant::now();
                let outcome = match &p2p {
                    None => over_http(&http, &spec, &input, &expected).await,
                    Some(p2p) => over_p2p(p2p, &spec, input, &expected).await,
                };
                let sample = Sample {
                    t_ms: start.elapsed().as_millis() as u64,
                    latency_ms: asked.elapsed().as_secs_f64() * 1000.0,
                    ok: matches!(outcome, Outcome::Ok(_)),
                };
                let mut record = record.lock().unwrap_or_else(|p| p.into_inner());
                record.samples.push(sample);
                match outcome {
                    Outcome::Ok(miner) => *record.miners.entry(miner).or_default() += 1,
                    Outcome::Failed(kind) => *record.errors.entry(kind).or_default() += 1,
                }
            }
        }));
    }
    for client in clients {
        let _ = client.await;
    }
    let seconds = start.elapsed().as_secs_f64();
    if let Some(p2p) = p2p {
        p2p.network.shutdown().await;
    }
    let record = std::mem::take(&mut *record.lock().unwrap_or_else(|p| p.into_inner()));
    let mut latencies: Vec<f64> = record.samples.iter().map(|s| s.latency_ms).collect();
    latencies.sort_by(f64::total_cmp);
    let ok = record.samples.iter().filter(|s| s.ok).count() as u64;
    Ok(LoadReport {
        plane: spec.plane,
        clients: spec.clients,
        seconds,
        sent: record.samples.len() as u64,
        ok,
        ok_per_second: ok as f64 / seconds.max(1e-9),
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        errors: record.errors,
        miners: record.miners,
        samples: record.samples,
    })
}

/// The `q` quantile of sorted `values` (0 if none).
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let index = ((values.len() - 1) as f64 * q).round() as usize;
    values[index.min(values.len() - 1)]
}

/// The loopback address client number `client` sends from: 127.1.0.1, 127.1.0.2, ...
pub fn client_address(client: usize) -> std::net::IpAddr {
    let first = u32::from(std::net::Ipv4Addr::new(127, 1, 0, 1));
    let offset = u32::try_from(client).unwrap_or(u32::MAX).min(0x00fe_fffe);
    std::net::Ipv4Addr::from(first + offset).into()
}

/// The task `embed`: texts to embed, sent through the gateway's `/v1/embeddings` over HTTP.
const EMBED: &str = "embed";

/// A query's input for `task` drawn from `seed`, and its right answer (for `embed`, none: any
/// 384-d vector is taken, its quality is the validators' to judge).
fn work(task: &str, seed: u64) -> Option<(Vec<u8>, Vec<u8>)> {
    if task == EMBED {
        let text = format!(
            "Client {} asks question {} about the harbour and its ships.",
            seed >> 32,
            seed & 0xffff_ffff
        );
        return Some((text.into_bytes(), Vec::new()));
    }
    reference::challenge(task, seed)
}

/// One text embedded through `/v1/embeddings` (the answer does not name its miner).
async fn embedded(http: &ApiClient, input: &[u8]) -> Outcome {
    let texts = vec![String::from_utf8_lossy(input).into_owned()];
    let timeout = Duration::from_millis(u64::from(DEADLINE_MS) + 2_000);
    let exchange = |c: ApiClient| async move { c.embeddings(EMBED, &texts).await };
    match crate::api::call_with(http.clone(), timeout, exchange).await {
        Ok(vectors) if vectors.first().is_some_and(|v| v.len() == 384) => {
            Outcome::Ok("(via /v1/embeddings)".into())
        }
        Ok(_) => Outcome::Failed("wrong answer".into()),
        Err(crate::api::CallError::Client(ClientError::Api { status, error })) => {
            Outcome::Failed(format!("HTTP {status} {}", error.code))
        }
        Err(crate::api::CallError::Timeout(_)) => Outcome::Failed("no answer in time".into()),
        Err(_) => Outcome::Failed("transport".into()),
    }
}

async fn over_http(http: &ApiClient, spec: &LoadSpec, input: &[u8], expected: &[u8]) -> Outcome {
    if spec.task == EMBED {
        return embedded(http, input).await;
    }
    let request = QueryRequest {
        content_type: None,
        encoding: None,
        subnet: spec.subnet,
        task: spec.task.clone(),
        input: String::from_utf8_lossy(input).into_owned(),
        deadline_ms: Some(DEADLINE_MS),
        want_all: false,
        stream: false,
    };
    let timeout = Duration::from_millis(u64::from(DEADLINE_MS) + 2_000);
    let exchange = |c: ApiClient| async move { c.query(&request).await };
    match crate::api::call_with(http.clone(), timeout, exchange).await {
        Ok(QueryAnswer::One(answer)) if answer.output.as_bytes() == expected => {
            Outcome::Ok(answer.miner.chars().take(16).collect())
        }
        Ok(_) => Outcome::Failed("wrong answer".into()),
        Err(crate::api::CallError::Client(ClientError::Api { status, error })) => {
            Outcome::Failed(format!("HTTP {status} {}", error.code))
        }
        Err(crate::api::CallError::Timeout(_)) => Outcome::Failed("no answer in time".into()),
        Err(_) => Outcome::Failed("transport".into()),
    }
}

async fn over_p2p(p2p: &Plane2p, spec: &LoadSpec, input: Vec<u8>, expected: &[u8]) -> Outcome {
    let query = v1::Query::new(
        p2p.network_id,
        spec.subnet,
        spec.task.clone(),
        input,
        DEADLINE_MS,
    );
    let frame = v1::QueryFrame {
        body: Some(v1::query_frame::Body::Query(query)),
    }
    .encode_to_vec();
    let timeout = Duration::from_millis(u64::from(DEADLINE_MS) + 2_000);
    let answer = match p2p.network.query(p2p.peer, &frame, timeout).await {
        Ok(answer) => answer,
        Err(meshmind_p2p::QueryError::Remote { code, .. }) => {
            return Outcome::Failed(format!("query plane refused: {code:?}"));
        }
        Err(meshmind_p2p::QueryError::Deadline) => {
            return Outcome::Failed("no answer in time".into());
        }
        Err(_) => return Outcome::Failed("transport".into()),
    };
    match meshmind_protocols::decode::<v1::QueryFrame>(&answer).map(|f| f.body) {
        Ok(Some(v1::query_frame::Body::Response(response)))
            if response.output == expected
                || (spec.task == EMBED && response.output.len() == 384 * 4) =>
        {
            Outcome::Ok(hex::encode(&response.miner).chars().take(16).collect())
        }
        Ok(Some(v1::query_frame::Body::Error(error))) => Outcome::Failed(
            v1::ErrorCode::try_from(error.code)
                .map(|c| c.as_str_name().to_string())
                .unwrap_or_else(|_| format!("error code {}", error.code)),
        ),
        _ => Outcome::Failed("wrong answer".into()),
    }
}

/// Joins the validator's network as one peer, ready to query it.
async fn join(api: &str, genesis: Option<&Path>) -> Result<Plane2p, LoadError> {
    let bad = |reason: String| LoadError::Target {
        api: api.to_string(),
        reason,
    };
    let genesis = genesis.ok_or_else(|| bad("the p2p plane needs the genesis".into()))?;
    let genesis =
        meshmind_node::genesis::Genesis::read(genesis).map_err(|e| bad(format!("genesis: {e}")))?;
    let status = crate::api::call(
        api,
        Duration::from_secs(5),
        |c| async move { c.status().await },
    )
    .await
    .map_err(|e| bad(e.to_string()))?;
    let peer: PeerId = status
        .peer_id
        .parse()
        .map_err(|e| bad(format!("peer id: {e}")))?;
    let query_addr: SocketAddr = status
        .query_addr
        .as_deref()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| bad("no query plane".into()))?;
    let network = crate::peer::spawn(&status.network, None)?;
    network
        .add_query_addr(peer, query_addr)
        .map_err(|e| bad(e.to_string()))?;
    Ok(Plane2p {
        network,
        peer,
        network_id: genesis.network_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_sorted_values() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 51.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[tokio::test]
    async fn bounds_are_checked_before_anything_is_sent() {
        let spec = |api: &str, clients, task: &str| LoadSpec {
            api: api.into(),
            plane: Plane::Http,
            clients,
            duration: Duration::from_secs(1),
            count: 10,
            subnet: 1,
            task: task.into(),
            rate_per_client: 0.0,
        };
        let err =
            |s: LoadSpec| async move { run(&s, None).await.expect_err("refused").to_string() };
        assert!(
            err(spec("10.0.0.1:7410", 1, "sort"))
                .await
                .contains("loopback only")
        );
        assert!(
            err(spec("127.0.0.1:7410", 0, "sort"))
                .await
                .contains("clients")
        );
        assert!(
            err(spec("127.0.0.1:7410", 1, "translate"))
                .await
                .contains("reference task")
        );
    }
}
