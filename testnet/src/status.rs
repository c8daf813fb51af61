//! What every node says about itself (its HTTP `/status`), and the status table.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::launcher::node_state;
use crate::manifest::{Manifest, NodeEntry};
use crate::process::ProcState;

/// How long one status request may take (a paused node never answers).
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// GETs `path` from a node's API; `None` if it does not answer in time or not with JSON.
pub async fn get_json(api: &str, path: &str) -> Option<Value> {
    let base = format!("http://{api}");
    let request = crate::netns::request(&base, "GET", path, None);
    let (code, body) = tokio::time::timeout(STATUS_TIMEOUT, request)
        .await
        .ok()?
        .ok()?;
    if code != 200 {
        return None;
    }
    serde_json::from_str(&body).ok()
}

/// One row of the status table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Process state.
    pub process: String,
    /// Whether the API answered.
    pub healthy: bool,
    /// Peer id.
    pub peer_id: Option<String>,
    /// API address.
    pub api: String,
    /// Current epoch by the clock.
    pub epoch: Option<u64>,
    /// Newest finalized epoch in its ledger.
    pub finalized_epoch: Option<u64>,
    /// Round of the epoch being decided.
    pub round: Option<u64>,
    /// Connected peers.
    pub peers: Option<u64>,
    /// Miners the validator has seen.
    pub miners_seen: Option<u64>,
    /// Last finality latency.
    pub last_finality_ms: Option<u64>,
    /// For miners: the weight v0 gives it (u16), if v0 has scored it.
    pub weight: Option<u64>,
}

/// Asks one node.
pub async fn node_status(node: &NodeEntry) -> NodeStatus {
    let state = node_state(node);
    let status = if state == ProcState::Running {
        get_json(&node.api, "/status").await
    } else {
        None
    };
    let field = |path: &[&str]| {
        let mut v = status.as_ref()?;
        for key in path {
            v = v.get(*key)?;
        }
        v.as_u64()
    };
    NodeStatus {
        name: node.name.clone(),
        role: node.role.as_str().to_string(),
        process: state.to_string(),
        healthy: status.is_some(),
        peer_id: status
            .as_ref()
            .and_then(|s| s["peer_id"].as_str())
            .map(str::to_string),
        api: node.api.clone(),
        epoch: field(&["epoch"]),
        finalized_epoch: field(&["consensus", "finalized_epoch"]),
        round: field(&["consensus", "round"]),
        peers: field(&["peers"]),
        miners_seen: field(&["miners_seen"]),
        last_finality_ms: field(&["consensus", "last_finality_ms"]),
        weight: None,
    }
}

/// Miner peer id -> the weight v0 gives it, from v0's metagraph and latest weight vector.
async fn weights_by_peer(manifest: &Manifest) -> Vec<(String, u64)> {
    let Some(v0) = manifest.nodes.iter().find(|n| n.name == "v0") else {
        return Vec::new();
    };
    let (Some(metagraph), Some(weights)) = (
        get_json(&v0.api, "/metagraph/1").await,
        get_json(&v0.api, "/weights/1").await,
    ) else {
        return Vec::new();
    };
    let vector: Vec<(u64, u64)> = weights["own"]
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .filter_map(|p| Some((p[0].as_u64()?, p[1].as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    metagraph["miners"]
        .as_array()
        .map(|miners| {
            miners
                .iter()
                .filter_map(|m| {
                    let peer = m["peer_id"].as_str()?.to_string();
                    let uid = m["uid"].as_u64()?;
                    let weight = vector
                        .iter()
                        .find(|(u, _)| *u == uid)
                        .map_or(0, |(_, w)| *w);
                    Some((peer, weight))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Asks every node, at once.
pub async fn all(manifest: &Manifest) -> Vec<NodeStatus> {
    let (mut rows, weights) = futures::join!(
        futures::future::join_all(manifest.nodes.iter().map(node_status)),
        weights_by_peer(manifest)
    );
    for row in rows.iter_mut().filter(|r| r.role == "miner") {
        row.weight = row
            .peer_id
            .as_ref()
            .and_then(|p| weights.iter().find(|(peer, _)| peer == p))
            .map(|(_, w)| *w);
    }
    rows
}

fn cell(value: Option<u64>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

/// The status table as text.
pub fn table(rows: &[NodeStatus]) -> String {
    let mut out = format!(
        "{:<5} {:<10} {:<8} {:<53} {:<16} {:>6} {:>9} {:>5} {:>6} {:>7} {:>7}\n",
        "node",
        "role",
        "process",
        "peer id",
        "api",
        "epoch",
        "finalized",
        "round",
        "peers",
        "miners",
        "weight"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<5} {:<10} {:<8} {:<53} {:<16} {:>6} {:>9} {:>5} {:>6} {:>7} {:>7}\n",
            r.name,
            r.role,
            r.process,
            r.peer_id.as_deref().unwrap_or("-"),
            r.api,
            cell(r.epoch),
            cell(r.finalized_epoch),
            cell(r.round),
            cell(r.peers),
            if r.role == "validator" {
                cell(r.miners_seen)
            } else {
                "".into()
            },
            if r.role == "miner" {
                cell(r.weight)
            } else {
                "".into()
            },
        ));
    }
    out
}

/// Whether a freshly started node is fully up: it answers, has a peer (when it has company), and,
/// for a validator, has seen `miners` miners and finalized an epoch.
pub fn settled(row: &NodeStatus, nodes: usize, miners: u64) -> bool {
    row.healthy
        && (nodes < 2 || row.peers.unwrap_or(0) >= 1)
        && (row.role != "validator"
            || (row.miners_seen.unwrap_or(0) >= miners && row.finalized_epoch.is_some()))
}
