//! Transport interop, network isolation and shutdown.

use std::time::Duration;

use meshmind_p2p::{NetworkConfig, TransportMode};

use crate::common::{TestNode, publish, stop_all, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_only_node_and_a_quic_tcp_node_connect() {
    let full = TestNode::start(NetworkConfig::local("mixed"));
    let mut tcp_config = NetworkConfig::local("mixed");
    tcp_config.transport = TransportMode::Tcp;
    tcp_config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")];
    tcp_config.bootnodes = vec![full.addr("tcp").await];
    let tcp = TestNode::start(tcp_config);
    for node in [&full, &tcp] {
        node.handle.subscribe("t").await.expect("subscribe");
    }
    publish(&tcp, "t", b"over tcp").await;
    wait_for(
        Duration::from_secs(20),
        "the QUIC+TCP node to receive",
        || async { full.has_seen("t", b"over tcp").then_some(()) },
    )
    .await;
    stop_all(vec![full, tcp]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meshes_of_different_networks_never_exchange_messages() {
    let a = TestNode::start(NetworkConfig::local("net-a"));
    let a2 = TestNode::start(NetworkConfig::local("net-a"));
    let b = TestNode::start(NetworkConfig::local("net-b"));
    let a_addr = a.addr("quic-v1").await;
    a2.handle.dial(a_addr.clone()).await.expect("dial");
    b.handle.dial(a_addr).await.expect("dial");
    for node in [&a, &a2, &b] {
        node.handle.subscribe("t").await.expect("subscribe");
    }
    publish(&a, "t", b"for net-a only").await;
    wait_for(
        Duration::from_secs(20),
        "the same-network peer to receive",
        || async { a2.has_seen("t", b"for net-a only").then_some(()) },
    )
    .await;
    // b was disconnected once identify showed another network, and heard nothing.
    wait_for(
        Duration::from_secs(10),
        "the other network's peer to be dropped",
        || async { (!a.handle.peers().await.ok()?.contains(&b.id)).then_some(()) },
    )
    .await;
    // b has nobody to publish to.
    assert!(matches!(
        b.handle.publish("t", b"from net-b".to_vec()).await,
        Err(meshmind_p2p::NetworkError::NoPeers)
    ));
    assert!(b.seen.lock().expect("log").is_empty());
    assert!(!a.has_seen("t", b"from net-b"));
    // The query plane refuses the other network in the TLS handshake.
    b.handle
        .add_query_addr(a.id, a.query_addr())
        .expect("query plane");
    let refused = b.handle.query(a.id, b"hi", Duration::from_secs(2)).await;
    assert!(
        matches!(&refused, Err(meshmind_p2p::QueryError::Connect { peer, .. }) if *peer == a.id),
        "{refused:?}"
    );
    stop_all(vec![a, a2, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_listeners_and_ends_the_task() {
    let node = TestNode::start(NetworkConfig::local("bye"));
    let tcp = node.addr("tcp").await;
    let handle = node.handle.clone();
    node.stop().await;
    assert!(handle.is_shut_down());
    assert!(
        matches!(
            handle.peers().await,
            Err(meshmind_p2p::NetworkError::Shutdown)
        ),
        "commands fail after shutdown"
    );
    // The TCP port is free again.
    let text = tcp.to_string();
    let port: u16 = text
        .split('/')
        .skip_while(|part| *part != "tcp")
        .nth(1)
        .and_then(|port| port.parse().ok())
        .expect("tcp port in the address");
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port was released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_peer_is_cut_off_until_unblocked() {
    let a = TestNode::start(NetworkConfig::local("block"));
    let b = TestNode::start(NetworkConfig::local("block"));
    let addr = b.addr("quic-v1").await;
    a.handle.dial(addr.clone()).await.expect("dial");
    wait_for(Duration::from_secs(10), "a connection", || async {
        a.handle.peers().await.ok()?.contains(&b.id).then_some(())
    })
    .await;

    a.handle.block_peer(b.id).await.expect("block");
    wait_for(
        Duration::from_secs(10),
        "the connection to close",
        || async { (!a.handle.peers().await.ok()?.contains(&b.id)).then_some(()) },
    )
    .await;
    // Neither side can connect while blocked.
    assert!(
        a.handle.dial(addr.clone()).await.is_err(),
        "dialling a blocked peer"
    );
    let _ = b.handle.dial(a.addr("quic-v1").await).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!a.handle.peers().await.expect("peers").contains(&b.id));

    a.handle.unblock_peer(b.id).await.expect("unblock");
    a.handle.dial(addr).await.expect("dial again");
    wait_for(Duration::from_secs(10), "a connection again", || async {
        a.handle.peers().await.ok()?.contains(&b.id).then_some(())
    })
    .await;
    stop_all(vec![a, b]).await;
}
