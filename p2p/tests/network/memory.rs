//! Hundreds of nodes in one process on the memory transport.

use std::time::Duration;

use meshmind_p2p::NetworkConfig;

use crate::common::{TestNode, publish, settle, stop_all, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_in_memory_nodes_all_receive_one_message() {
    const N: usize = 200;
    let mut nodes: Vec<TestNode> = Vec::with_capacity(N);
    let mut addrs = Vec::with_capacity(N);
    for i in 0..N {
        let mut config = NetworkConfig::memory("mem");
        config.max_connections = 64;
        // DHT clients: the topology below is the whole mesh, with no lookups densifying it.
        config.kad_server = false;
        let node = TestNode::start(config);
        addrs.push(node.addr("memory").await);
        // A connected graph of even degree (about 8, under gossipsub's upper mesh bound of 12, so
        // no peer is pruned for over-subscription): node i dials i-1, i-2, i-4 and i-8.
        for step in [1, 2, 4, 8] {
            if let Some(target) = i.checked_sub(step) {
                node.handle.dial(addrs[target].clone()).await.expect("dial");
            }
        }
        nodes.push(node);
    }
    for node in &nodes {
        node.handle.subscribe("all").await.expect("subscribe");
    }
    settle(&nodes, "all", 3).await;
    publish(&nodes[123], "all", b"one message").await;
    wait_for(
        Duration::from_secs(60),
        "all 199 other nodes to receive",
        || async {
            let missing = nodes
                .iter()
                .enumerate()
                .filter(|(i, n)| *i != 123 && !n.has_seen("all", b"one message"))
                .count();
            (missing == 0).then_some(())
        },
    )
    .await;
    stop_all(nodes).await;
}
