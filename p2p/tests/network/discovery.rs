//! Kademlia discovery and provider records over QUIC on loopback.

use std::collections::HashSet;
use std::time::Duration;

use meshmind_p2p::{NetworkConfig, PeerId};

use crate::common::{TestNode, star, stop_all, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_nodes_from_one_bootnode_find_each_other() {
    let nodes = star("disc", 20, |_| {}).await;
    let all: HashSet<PeerId> = nodes.iter().map(|n| n.id).collect();
    for node in &nodes {
        let others: HashSet<PeerId> = all.iter().copied().filter(|p| *p != node.id).collect();
        let handle = node.handle.clone();
        wait_for(
            Duration::from_secs(60),
            "closest-peers lookup to find all 19 others",
            || {
                let handle = handle.clone();
                let others = others.clone();
                async move {
                    let target = meshmind_protocols::Keypair::generate().ok()?.peer_id();
                    let found: HashSet<PeerId> = handle
                        .closest_peers(target)
                        .await
                        .ok()?
                        .into_iter()
                        .collect();
                    (found == others).then_some(())
                }
            },
        )
        .await;
    }
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_is_found_twenty_hops_of_routing_away() {
    // A chain: node i knows only node i-1 at start.
    let mut nodes: Vec<TestNode> = Vec::new();
    for i in 0..21 {
        let mut config = NetworkConfig::local("providers");
        if i > 0 {
            config.bootnodes = vec![nodes[i - 1].addr("quic-v1").await];
        }
        nodes.push(TestNode::start(config));
    }
    let key = b"caps/providers/1/arith";
    let provider = &nodes[0];
    let seeker = &nodes[20];
    wait_for(
        Duration::from_secs(60),
        "the provider record to be stored",
        || async { provider.handle.provide(key).await.ok() },
    )
    .await;
    let providers = wait_for(
        Duration::from_secs(60),
        "the seeker to find the provider",
        || async {
            let found = seeker.handle.find_providers(key).await.ok()?;
            found.contains(&provider.id).then_some(found)
        },
    )
    .await;
    assert!(providers.contains(&provider.id));
    assert!(
        seeker
            .handle
            .find_providers(b"nobody provides this")
            .await
            .map(|p| p.is_empty())
            .unwrap_or(true),
        "an unprovided key has no providers"
    );
    stop_all(nodes).await;
}
