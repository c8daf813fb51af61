//! What every node says about itself (its HTTP `/status`), and the status table.

use serde::Serialize;

use crate::api::read;
use crate::launcher::node_state;
use crate::manifest::{Manifest, NodeEntry};
use crate::process::ProcState;

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
    /// The subnets it serves (a miner) or validates.
    pub subnets: Vec<u32>,
    /// API address.
    pub api: String,
    /// Current epoch by the clock.
    pub epoch: Option<u64>,
    /// Newest finalized epoch in its ledger.
    pub finalized_epoch: Option<u64>,
    /// Round of the epoch being decided.
    pub round: Option<u64>,
    /// Whether it is in the set that finalizes now.
    pub voting: Option<bool>,
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
        read(&node.api, |c| async move { c.status().await }).await
    } else {
        None
    };
    let s = status.as_ref();
    NodeStatus {
        name: node.name.clone(),
        role: node.role.as_str().to_string(),
        process: state.to_string(),
        healthy: status.is_some(),
        peer_id: s.map(|s| s.peer_id.clone()),
        subnets: s.map(|s| s.subnets.clone()).unwrap_or_default(),
        api: node.api.clone(),
        epoch: s.map(|s| s.epoch),
        finalized_epoch: s.and_then(|s| s.consensus.finalized_epoch),
        round: s.map(|s| u64::from(s.consensus.round)),
        voting: s.map(|s| s.consensus.voting),
        peers: s.map(|s| s.peers as u64),
        miners_seen: s.map(|s| s.miners_seen as u64),
        last_finality_ms: s.and_then(|s| s.consensus.last_finality_ms),
        weight: None,
    }
}

/// Miner peer id -> the weight v0 gives it on `subnet`, from v0's metagraph and latest weight
/// vector there.
async fn weights_by_peer(manifest: &Manifest, subnet: u32) -> Vec<(String, u64)> {
    let Some(v0) = manifest.nodes.iter().find(|n| n.name == "v0") else {
        return Vec::new();
    };
    let (Some(metagraph), Some(weights)) = (
        read(&v0.api, |c| async move { c.metagraph(subnet).await }).await,
        read(&v0.api, |c| async move { c.weights(subnet).await }).await,
    ) else {
        return Vec::new();
    };
    let vector = weights.own.unwrap_or_default();
    metagraph
        .miners
        .into_iter()
        .map(|m| {
            let weight = vector
                .iter()
                .find(|(uid, _)| *uid == m.uid)
                .map_or(0, |(_, w)| u64::from(*w));
            (m.peer_id, weight)
        })
        .collect()
}

/// Asks every node, at once.
pub async fn all(manifest: &Manifest) -> Vec<NodeStatus> {
    let mut rows = futures::future::join_all(manifest.nodes.iter().map(node_status)).await;
    let mut subnets: Vec<u32> = rows
        .iter()
        .filter(|r| r.role == "miner")
        .flat_map(|r| r.subnets.iter().copied())
        .collect();
    subnets.sort_unstable();
    subnets.dedup();
    let weights: Vec<(String, u64)> =
        futures::future::join_all(subnets.iter().map(|&s| weights_by_peer(manifest, s)))
            .await
            .into_iter()
            .flatten()
            .collect();
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
        "{:<5} {:<10} {:<8} {:<53} {:<16} {:<7} {:>6} {:>9} {:>5} {:>6} {:>7} {:>7}\n",
        "node",
        "role",
        "process",
        "peer id",
        "api",
        "subnets",
        "epoch",
        "finalized",
        "round",
        "peers",
        "miners",
        "weight"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<5} {:<10} {:<8} {:<53} {:<16} {:<7} {:>6} {:>9} {:>5} {:>6} {:>7} {:>7}\n",
            r.name,
            r.role,
            r.process,
            r.peer_id.as_deref().unwrap_or("-"),
            r.api,
            match r.subnets.as_slice() {
                [] => "-".to_string(),
                subnets => subnets
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            },
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
