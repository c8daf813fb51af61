//! The HTTP API: status, peers, metagraph, weights, metrics and query routing.

pub mod client;
mod explorer;
pub mod openai;
pub mod types;
pub mod view;

use crate::state::{PoolError, TxError};
use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use meshmind_p2p::NetworkHandle;
use meshmind_protocols::v1;
use prometheus_client::registry::Registry;

use crate::chain::driver::ChainStatus;
use crate::chain::service::ConsensusService;
use crate::clock::now_ms;
use crate::config::Role;
use crate::genesis::Genesis;
use crate::ledger::Ledger;
use crate::role::validator::gossip::WeightBoard;
use crate::role::validator::{Client, Validator, Validators};
use types::{MinerView, PeerList, QueryRequest, SubmitTx, TxAccepted, Weights};
use view::api_error;

/// What the HTTP API reads.
pub struct NodeState {
    /// The role.
    pub role: Role,
    /// This node's hotkey.
    pub hotkey: meshmind_protocols::PublicKey,
    /// The genesis.
    pub genesis: Genesis,
    /// The network.
    pub network: NetworkHandle,
    /// The validators of the subnets validated, on validators.
    pub validators: Option<Arc<Validators>>,
    /// The miner, on miners.
    pub miner: Option<Arc<crate::role::miner::Miner>>,
    /// Weight vectors seen on gossip.
    pub board: Arc<Mutex<WeightBoard>>,
    /// Metrics.
    pub registry: Registry,
    /// The subnets this node serves (a miner) or follows (an observer); a validator's are those
    /// of `validators`, which grow as subnets are created.
    pub subnets: Vec<u32>,
    /// The ledger, on validators and observers.
    pub ledger: Option<Arc<Ledger>>,
    /// Consensus progress.
    pub chain: Arc<Mutex<ChainStatus>>,
    /// The token the test-only admin routes require; `None` serves no admin routes.
    pub admin_token: Option<String>,
    /// Consensus (and the economy), on validators and observers.
    pub consensus: Option<Arc<ConsensusService>>,
}

impl NodeState {
    /// The subnets this node serves, validates or follows now.
    pub fn subnets(&self) -> Vec<u32> {
        match &self.validators {
            Some(validators) => validators.subnets(),
            None => self.subnets.clone(),
        }
    }
}

/// The API's routes.
pub fn router(state: Arc<NodeState>) -> axum::Router {
    let router = axum::Router::new();
    let router = if state.admin_token.is_some() {
        router
            .route("/admin/block", post(block))
            .route("/admin/unblock", post(unblock))
    } else {
        router
    };
    router
        .route("/", get(explorer::index))
        .route("/explorer.js", get(explorer::script))
        .route("/explorer.css", get(explorer::style))
        .route("/status", get(status))
        .route("/peers", get(peers))
        .route("/metagraph/{subnet}", get(metagraph))
        .route("/weights/{subnet}", get(weights))
        .route("/metrics", get(metrics))
        .route("/query", post(query))
        .route("/snapshots/{epoch}", get(snapshot))
        .route("/certificates/{epoch}", get(certificate))
        .route("/finalized/{epoch}", get(finalized))
        .route("/genesis", get(genesis))
        .route("/evidence", get(evidence))
        .route("/accounts/{coldkey}", get(account))
        .route("/economy", get(economy))
        .route("/subnets", get(subnets))
        .route("/subnets/{id}", get(subnet))
        .route("/delegates", get(delegates))
        .route("/delegates/{hotkey}", get(delegate))
        .route("/tx", post(submit_tx))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/chat/completions", post(openai::chat::completions))
        .route("/v1/models", get(openai::models))
        .with_state(state)
}

async fn status(State(state): State<Arc<NodeState>>) -> Json<types::Status> {
    let peers = state.network.peers().await.unwrap_or_default();
    let peer_id = state.network.local_peer_id();
    let listen: Vec<String> = state
        .network
        .listen_addrs()
        .await
        .unwrap_or_default()
        .iter()
        .map(|a| format!("{a}/p2p/{peer_id}"))
        .collect();
    let miners_seen = state
        .validators
        .iter()
        .flat_map(|set| set.all())
        .map(|(_, v)| v.miners_seen())
        .sum();
    let query_addr = state.network.query_addr();
    Json(types::Status {
        peer_id: peer_id.to_string(),
        role: state.role.to_string(),
        network: state.genesis.network_tag(),
        network_id: state.genesis.network_id.to_hex(),
        epoch: state.genesis.epoch_at(now_ms()),
        subnet: state.subnets().first().copied().unwrap_or_default(),
        subnets: state.subnets(),
        peers: peers.len(),
        listen,
        query_addr: query_addr.map(|a| a.to_string()),
        query_multiaddr: query_addr.map(|a| {
            let ip = match a.ip() {
                std::net::IpAddr::V4(ip) => format!("/ip4/{ip}"),
                std::net::IpAddr::V6(ip) => format!("/ip6/{ip}"),
            };
            format!("{ip}/udp/{}/quic-v1/p2p/{peer_id}", a.port())
        }),
        miners_seen,
        consensus: state.chain.lock().map(|c| c.clone()).unwrap_or_default(),
        quotas: state.miner.as_ref().map(|m| m.quotas()),
        standing: economy_state(&state)
            .map(|economy| view::standing(&economy, &crate::state::Key(state.hotkey.to_bytes()))),
    })
}

async fn set_blocked(
    state: &NodeState,
    headers: &HeaderMap,
    list: PeerList,
    blocked: bool,
) -> Response {
    if let Err(refused) = authorise(state, headers) {
        return refused;
    }
    let mut done = Vec::new();
    for text in &list.peers {
        let Ok(peer) = text.parse::<meshmind_p2p::PeerId>() else {
            return error(
                StatusCode::BAD_REQUEST,
                v1::ErrorCode::Malformed,
                &format!("peers: {text:?} is not a peer id"),
            );
        };
        let result = if blocked {
            state.network.block_peer(peer).await
        } else {
            state.network.unblock_peer(peer).await
        };
        if let Err(e) = result {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                v1::ErrorCode::Unavailable,
                &e.to_string(),
            );
        }
        done.push(text.clone());
    }
    Json(serde_json::json!({ "blocked": blocked, "peers": done })).into_response()
}

async fn block(
    State(state): State<Arc<NodeState>>,
    headers: HeaderMap,
    Json(list): Json<PeerList>,
) -> Response {
    set_blocked(&state, &headers, list, true).await
}

async fn unblock(
    State(state): State<Arc<NodeState>>,
    headers: HeaderMap,
    Json(list): Json<PeerList>,
) -> Response {
    set_blocked(&state, &headers, list, false).await
}

/// Checks the admin bearer token (compared as hashes, so the time taken says nothing of it).
#[allow(clippy::result_large_err)]
fn authorise(state: &NodeState, headers: &HeaderMap) -> Result<(), Response> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (given, &state.admin_token) {
        (Some(given), Some(token))
            if blake3::hash(given.as_bytes()) == blake3::hash(token.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(error(
            StatusCode::UNAUTHORIZED,
            v1::ErrorCode::Malformed,
            "the admin routes need the node's admin token (admin.token in its data directory)",
        )),
    }
}

fn not_found(what: &str) -> Response {
    error(StatusCode::NOT_FOUND, v1::ErrorCode::NotFound, what)
}

fn ledger_error(e: crate::ledger::LedgerError) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        v1::ErrorCode::Internal,
        &e.to_string(),
    )
}

async fn snapshot(State(state): State<Arc<NodeState>>, Path(epoch): Path<u64>) -> Response {
    let Some(ledger) = &state.ledger else {
        return not_found("this node keeps no ledger");
    };
    match ledger.snapshot(epoch) {
        Ok(Some(s)) => Json(view::snapshot(&s)).into_response(),
        Ok(None) => not_found("epoch not finalized here"),
        Err(e) => ledger_error(e),
    }
}

async fn certificate(State(state): State<Arc<NodeState>>, Path(epoch): Path<u64>) -> Response {
    let Some(ledger) = &state.ledger else {
        return not_found("this node keeps no ledger");
    };
    match ledger.certificate(epoch) {
        Ok(Some(c)) => Json(view::certificate(&c)).into_response(),
        Ok(None) => not_found("epoch not finalized here"),
        Err(e) => ledger_error(e),
    }
}

/// `GET /subnets`: every subnet of the finalized economy.
async fn subnets(State(state): State<Arc<NodeState>>) -> Response {
    match economy_state(&state) {
        Some(economy) => Json(view::subnets(&economy)).into_response(),
        None => not_found("this node keeps no ledger"),
    }
}

/// `GET /subnets/<id>`: one subnet of the finalized economy.
async fn subnet(State(state): State<Arc<NodeState>>, Path(id): Path<u32>) -> Response {
    match economy_state(&state).map(|economy| view::subnet(&economy, id)) {
        Some(Some(subnet)) => Json(subnet).into_response(),
        Some(None) => not_found("no such subnet"),
        None => not_found("this node keeps no ledger"),
    }
}

/// `GET /delegates`: the validator hotkeys nominators may stake behind.
async fn delegates(State(state): State<Arc<NodeState>>) -> Response {
    match economy_state(&state) {
        Some(economy) => Json(view::delegates(&economy)).into_response(),
        None => not_found("this node keeps no ledger"),
    }
}

/// `GET /delegates/<hotkey>`: one delegate with every stake behind it.
async fn delegate(State(state): State<Arc<NodeState>>, Path(hotkey): Path<String>) -> Response {
    let Some(key) = key_param(&hotkey) else {
        return bad_key("hotkey");
    };
    match economy_state(&state).map(|economy| view::delegate(&economy, &key)) {
        Some(Some(delegate)) => Json(delegate).into_response(),
        Some(None) => not_found("no such delegate"),
        None => not_found("this node keeps no ledger"),
    }
}

/// A protobuf message as the body, for clients that check signatures themselves.
fn protobuf(encoded: Vec<u8>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
        encoded,
    )
        .into_response()
}

/// `GET /finalized/{epoch}`: the snapshot with its certificate, protobuf-encoded
/// (`meshmind.v1.FinalizedSnapshot`), for light clients.
async fn finalized(State(state): State<Arc<NodeState>>, Path(epoch): Path<u64>) -> Response {
    let Some(ledger) = &state.ledger else {
        return not_found("this node keeps no ledger");
    };
    match ledger.finalized(epoch) {
        Ok(Some(f)) => protobuf(prost::Message::encode_to_vec(&f)),
        Ok(None) => not_found("epoch not finalized here"),
        Err(e) => ledger_error(e),
    }
}

/// `GET /genesis`: the genesis, protobuf-encoded (`meshmind.v1.Genesis`); its blake3 hash is the
/// network id.
async fn genesis(State(state): State<Arc<NodeState>>) -> Response {
    protobuf(prost::Message::encode_to_vec(&state.genesis.message))
}

async fn evidence(State(state): State<Arc<NodeState>>) -> Response {
    let Some(ledger) = &state.ledger else {
        return not_found("this node keeps no ledger");
    };
    // What waits for a snapshot, then what recent snapshots carried, each piece once.
    let mut all = match ledger.evidence() {
        Ok(all) => all,
        Err(e) => return ledger_error(e),
    };
    all.extend(
        state
            .chain
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recent_evidence
            .iter()
            .cloned(),
    );
    let mut seen = std::collections::HashSet::new();
    all.retain(|e| seen.insert(meshmind_protocols::hash(e)));
    Json(all.iter().map(view::evidence).collect::<Vec<_>>()).into_response()
}

async fn peers(State(state): State<Arc<NodeState>>) -> Json<Vec<String>> {
    let peers = state.network.peers().await.unwrap_or_default();
    Json(peers.iter().map(ToString::to_string).collect())
}

/// The finalized economy, on nodes that keep a ledger.
fn economy_state(state: &NodeState) -> Option<crate::state::State> {
    state
        .consensus
        .as_ref()
        .map(|c| c.economy.lock().unwrap_or_else(|p| p.into_inner()).clone())
}

async fn metagraph(State(state): State<Arc<NodeState>>, Path(subnet): Path<u32>) -> Response {
    let now = now_ms();
    // The validator's own view: miners from ads, with its scores.
    let miners: Option<Vec<MinerView>> = state
        .validators
        .as_ref()
        .and_then(|set| set.get(subnet))
        .map(|validator| {
            validator
                .metagraph()
                .miners()
                .map(|m| MinerView {
                    uid: m.uid,
                    peer_id: m.peer.to_string(),
                    hotkey: m.key.to_hex(),
                    tasks: m
                        .tasks
                        .iter()
                        .filter(|(_, exp)| **exp > now)
                        .map(|(t, _)| t.clone())
                        .collect(),
                    last_seen_ms: m.last_seen_ms,
                    score: validator.score(&m.key),
                })
                .collect()
        });
    // The finalized one: registered neurons with stake and Yuma results.
    let chain = economy_state(&state).and_then(|e| view::chain_metagraph(&e, subnet));
    if miners.is_none() && chain.is_none() {
        return not_found("no metagraph for this subnet here");
    }
    Json(types::Metagraph {
        subnet,
        miners: miners.unwrap_or_default(),
        chain,
    })
    .into_response()
}

/// The key a path segment names in hex, if it does.
fn key_param(text: &str) -> Option<crate::state::Key> {
    hex::decode(text)
        .ok()
        .and_then(|b| crate::state::Key::from_slice(&b))
}

/// The 400 for a path segment that is not a key.
fn bad_key(field: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        v1::ErrorCode::Malformed,
        &format!("{field}: must be 64 hex digits"),
    )
}

async fn account(State(state): State<Arc<NodeState>>, Path(coldkey): Path<String>) -> Response {
    let Some(key) = key_param(&coldkey) else {
        return bad_key("coldkey");
    };
    match economy_state(&state) {
        Some(economy) => Json(view::account(&economy, &key)).into_response(),
        None => not_found("this node keeps no ledger"),
    }
}

async fn economy(State(state): State<Arc<NodeState>>) -> Response {
    match economy_state(&state) {
        Some(economy) => Json(view::economy(&economy)).into_response(),
        None => not_found("this node keeps no ledger"),
    }
}

async fn submit_tx(State(state): State<Arc<NodeState>>, body: axum::body::Bytes) -> Response {
    let Some(consensus) = &state.consensus else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            v1::ErrorCode::Unavailable,
            "this node keeps no ledger; submit to a validator or an observer",
        );
    };
    let tx = serde_json::from_slice::<SubmitTx>(&body)
        .map_err(|e| e.to_string())
        .and_then(|r| hex::decode(r.tx.trim()).map_err(|e| format!("tx: {e}")))
        .and_then(|bytes| {
            meshmind_protocols::decode::<v1::Transaction>(&bytes).map_err(|e| format!("tx: {e}"))
        });
    let tx = match tx {
        Ok(tx) => tx,
        Err(message) => return error(StatusCode::BAD_REQUEST, v1::ErrorCode::Malformed, &message),
    };
    let hash = meshmind_protocols::hash(&tx).to_hex();
    match consensus.submit_transaction(tx).await {
        Ok(new) => (
            StatusCode::ACCEPTED,
            Json(TxAccepted {
                accepted: true,
                new,
                hash,
            }),
        )
            .into_response(),
        Err(crate::chain::service::SubmitError::Stopped) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            v1::ErrorCode::Unavailable,
            "consensus is not running",
        ),
        Err(crate::chain::service::SubmitError::Refused(e)) => {
            let (status, code) = refusal(&e);
            let mut response = error(status, code, &e.to_string());
            if matches!(e, PoolError::Full(_)) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, 1.into());
            }
            response
        }
    }
}

/// The HTTP status and error code of a transaction the pool refused.
fn refusal(e: &PoolError) -> (StatusCode, v1::ErrorCode) {
    match e {
        PoolError::Full(_) => (StatusCode::SERVICE_UNAVAILABLE, v1::ErrorCode::Overloaded),
        PoolError::Invalid(TxError::WrongNetwork) => {
            (StatusCode::BAD_REQUEST, v1::ErrorCode::WrongNetwork)
        }
        PoolError::Invalid(
            TxError::Malformed(_) | TxError::BadSignature | TxError::NoHotkeyConsent,
        ) => (StatusCode::BAD_REQUEST, v1::ErrorCode::Malformed),
        PoolError::Invalid(TxError::UnknownSubnet(_)) => {
            (StatusCode::NOT_FOUND, v1::ErrorCode::UnknownSubnet)
        }
        _ => (StatusCode::UNPROCESSABLE_ENTITY, v1::ErrorCode::Refused),
    }
}

async fn weights(State(state): State<Arc<NodeState>>, Path(subnet): Path<u32>) -> Response {
    if !state.subnets().contains(&subnet) {
        return not_found("subnet not followed here");
    }
    let own = state
        .validators
        .as_ref()
        .and_then(|set| set.get(subnet))
        .map(|v| v.weights());
    let epoch = state.genesis.epoch_at(now_ms());
    let board = state.board.lock().unwrap_or_else(|p| p.into_inner());
    let revealed = (epoch.saturating_sub(3)..=epoch)
        .filter_map(|e| {
            let vectors = board.revealed(e, subnet);
            (!vectors.is_empty()).then(|| {
                let by_validator = vectors
                    .into_iter()
                    .map(|(key, pairs)| (key.to_hex(), pairs))
                    .collect();
                (e.to_string(), by_validator)
            })
        })
        .collect();
    Json(Weights {
        subnet,
        own,
        revealed,
    })
    .into_response()
}

async fn metrics(State(state): State<Arc<NodeState>>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        Ok(()) => (
            [(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn error(status: StatusCode, code: v1::ErrorCode, message: &str) -> Response {
    (status, Json(api_error(code, message))).into_response()
}

/// A streamed answer as newline-delimited JSON, each line sent as the miner produces it.
fn stream(validator: Arc<Validator>, query: v1::Query, encoding: types::Encoding) -> Response {
    let (out, frames) = tokio::sync::mpsc::channel::<v1::QueryFrame>(16);
    // A client that hangs up drops the body, which stops the routing.
    tokio::spawn(async move { validator.route_stream(&query, now_ms(), out).await });
    let lines = futures::stream::unfold(frames, move |mut frames| async move {
        let frame = frames.recv().await?;
        let line = view::stream_line_as(&frame, encoding);
        let mut line = serde_json::to_string(&line).unwrap_or_default();
        line.push('\n');
        Some((Ok::<_, std::convert::Infallible>(line), frames))
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(lines),
    )
        .into_response()
}

async fn query(
    State(state): State<Arc<NodeState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Response {
    let request: QueryRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                v1::ErrorCode::Malformed,
                &e.to_string(),
            );
        }
    };
    let Some(validators) = &state.validators else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            v1::ErrorCode::Unavailable,
            "only validators route queries",
        );
    };
    if !validators.admit_client(Client::http(from.ip())) {
        return overloaded("over this address's query rate at this validator");
    }
    let encoding = request.encoding.unwrap_or_default();
    let payload = match encoding {
        types::Encoding::Text => request.input.into_bytes(),
        types::Encoding::Base64 => {
            use base64::Engine as _;
            match base64::engine::general_purpose::STANDARD.decode(request.input.as_bytes()) {
                Ok(bytes) => bytes,
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        v1::ErrorCode::Malformed,
                        &format!("input is not base64: {e}"),
                    );
                }
            }
        }
    };
    let query = v1::Query {
        want_all: request.want_all,
        stream: request.stream,
        content_type: request.content_type.unwrap_or_default(),
        ..v1::Query::new(
            state.genesis.network_id,
            request.subnet,
            request.task,
            payload,
            request.deadline_ms.unwrap_or(5_000),
        )
    };
    if let Err(e) = meshmind_protocols::Validate::validate(&query) {
        return error(
            StatusCode::BAD_REQUEST,
            v1::ErrorCode::Malformed,
            &e.to_string(),
        );
    }
    let Some(validator) = validators.get(query.subnet) else {
        return error(
            StatusCode::NOT_FOUND,
            v1::ErrorCode::UnknownSubnet,
            &format!(
                "subnet {} is not validated here (these are: {:?})",
                query.subnet,
                validators.subnets()
            ),
        );
    };
    if query.stream {
        return stream(validator.clone(), query, encoding);
    }
    let deadline = Duration::from_millis(u64::from(query.deadline_ms));
    let routed = tokio::time::timeout(
        deadline + Duration::from_millis(100),
        validator.route(&query, now_ms()),
    )
    .await;
    let frame = routed.ok();
    match view::query_answer_as(frame.as_ref(), encoding) {
        Ok(answer) => Json(answer).into_response(),
        Err((v1::ErrorCode::DeadlineExceeded, message)) => error(
            StatusCode::GATEWAY_TIMEOUT,
            v1::ErrorCode::DeadlineExceeded,
            &message,
        ),
        Err((v1::ErrorCode::Overloaded, message)) => overloaded(&message),
        Err((v1::ErrorCode::Unavailable, message)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            v1::ErrorCode::Unavailable,
            &message,
        ),
        Err((code, message)) => error(StatusCode::BAD_GATEWAY, code, &message),
    }
}

/// `429 Too Many Requests` with `Retry-After`.
fn overloaded(message: &str) -> Response {
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        v1::ErrorCode::Overloaded,
        message,
    );
    response
        .headers_mut()
        .insert(axum::http::header::RETRY_AFTER, 1.into());
    response
}
