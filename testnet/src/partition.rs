//! Partitions. Under `--netns`, by link state: each group's bridge ports move to a bridge of its
//! own. Without namespaces (no root needed), every node of one group is told (through the test-only
//! `/admin/block` route of its API) to refuse the peers of the other groups, which closes their
//! connections and refuses new ones both ways; `heal` lifts every block. Nodes named in no group
//! are in the first (both ways alike): every node relays consensus gossip, so one left connected
//! to all would bridge the partition.

use std::time::Duration;

use meshmind_protocols::{KeyFile, KeyKind};

use crate::launcher::LaunchError;
use crate::manifest::{Manifest, NodeEntry};

fn peer_id(node: &NodeEntry) -> Result<String, LaunchError> {
    KeyFile::read_kind(&node.data_dir.join("hotkey.json"), KeyKind::Hotkey)
        .map(|k| k.public().peer_id().to_string())
        .map_err(|e| LaunchError::Other(format!("{}: {e}", node.name)))
}

/// Tells `node` to refuse (`block`) or accept again the `peers`.
async fn admin(node: &NodeEntry, block: bool, peers: &[String]) -> Result<(), LaunchError> {
    let peers = peers.to_vec();
    let path = node.data_dir.join("admin.token");
    let token = std::fs::read_to_string(&path)
        .map_err(|e| LaunchError::Other(format!("{}: {}: {e}", node.name, path.display())))?;
    crate::api::call(&node.api, Duration::from_secs(3), |c| async move {
        let c = c.with_admin_token(token.trim());
        match block {
            true => c.block_peers(peers).await,
            false => c.unblock_peers(peers).await,
        }
    })
    .await
    .map(|_| ())
    .map_err(|e| {
        let route = if block { "block" } else { "unblock" };
        LaunchError::Other(format!("{} {route}: {e}", node.name))
    })
}

/// Cuts `groups` apart.
pub async fn partition(manifest: &Manifest, groups: &[Vec<String>]) -> Result<(), LaunchError> {
    if let Some(plan) = &manifest.netns {
        let mut indexes: Vec<Vec<usize>> = Vec::new();
        for group in groups {
            let mut members = Vec::new();
            for name in group {
                members.push(
                    manifest
                        .index(name)
                        .map_err(|e| LaunchError::Other(e.to_string()))?,
                );
            }
            indexes.push(members);
        }
        // The first group stays on br0 with the nodes named in no group; the others move.
        return crate::netns::partition(plan, &indexes);
    }
    let mut ids = Vec::new();
    for group in groups {
        let mut members = Vec::new();
        for name in group {
            let node = manifest
                .node(name)
                .map_err(|e| LaunchError::Other(e.to_string()))?;
            members.push((node, peer_id(node)?));
        }
        ids.push(members);
    }
    let named = |node: &NodeEntry| groups.iter().flatten().any(|name| *name == node.name);
    if let Some(first) = ids.first_mut() {
        for node in manifest.nodes.iter().filter(|n| !named(n)) {
            first.push((node, peer_id(node)?));
        }
    }
    for (i, group) in ids.iter().enumerate() {
        let others: Vec<String> = ids
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, g)| g.iter().map(|(_, id)| id.clone()))
            .collect();
        for (node, _) in group {
            admin(node, true, &others).await?;
        }
    }
    Ok(())
}

/// Undoes every partition.
pub async fn heal(manifest: &Manifest) -> Result<(), LaunchError> {
    if let Some(plan) = &manifest.netns {
        return crate::netns::heal(plan, manifest.nodes.len());
    }
    let all: Vec<String> = manifest
        .nodes
        .iter()
        .map(peer_id)
        .collect::<Result<_, _>>()?;
    let mut errors = Vec::new();
    for node in &manifest.nodes {
        if crate::launcher::node_state(node) == crate::process::ProcState::Running
            && let Err(e) = admin(node, false, &all).await
        {
            errors.push(e.to_string());
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(LaunchError::Other(errors.join("; ")))
    }
}
