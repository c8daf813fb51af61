//! Hundreds of nodes in one process on the memory transport.

use std::time::Duration;

use meshmind_p2p::NetworkConfig;

use crate::common::{TestNode, publish, settle, stop_all, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_in_memory_nodes_all_receive_one_message() {
    let boot = TestNode::start(NetworkConfig::memory("mem"));
    let boot_addr = boot.addr("memory").await;
    let mut nodes = vec![boot];
    for _ in 1..200 {
        let mut config = NetworkConfig::memory("mem");
        config.bootnodes = vec![boot_addr.clone()];
        config.max_connections = 512;
        nodes.push(TestNode::start(config));
    }
    let t0 = std::time::Instant::now();
    for node in &nodes {
        node.handle.subscribe("all").await.expect("subscribe");
    }
    eprintln!("DBG subscribed {:?}", t0.elapsed());
    settle(&nodes, 1).await;
    eprintln!("DBG settled {:?}", t0.elapsed());
    publish(&nodes[123], "all", b"one message").await;
    wait_for(
        Duration::from_secs(90),
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
    eprintln!("DBG received {:?}", t0.elapsed());
    stop_all(nodes).await;
    eprintln!("DBG stopped {:?}", t0.elapsed());
}
