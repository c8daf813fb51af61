//! Gossip: delivery to all, application rejection, and floods.

use std::time::Duration;

use meshmind_p2p::NetworkConfig;

use crate::common::{BAD, TestNode, publish, settle, star, stop_all, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reaches_all_twenty_nodes() {
    let nodes = star("gossip20", 20, |_| {}).await;
    for node in &nodes {
        node.handle.subscribe("news").await.expect("subscribe");
    }
    settle(&nodes, "news", 3).await;
    publish(&nodes[7], "news", b"hello mesh").await;
    wait_for(
        Duration::from_secs(30),
        "all 19 others to receive the message",
        || async {
            nodes
                .iter()
                .enumerate()
                .all(|(i, n)| i == 7 || n.has_seen("news", b"hello mesh"))
                .then_some(())
        },
    )
    .await;
    let origin = nodes[3].seen.lock().expect("log")[0].origin;
    assert_eq!(origin, Some(nodes[7].id), "origin is the signed publisher");
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_message_is_not_forwarded_and_costs_its_sender() {
    // A chain a - b - c over TCP, without bootstrapping, so c hears a only through b.
    let config = |name: &str| {
        let mut config = NetworkConfig::local(name);
        config.transport = meshmind_p2p::TransportMode::Tcp;
        config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")];
        config
    };
    let b = TestNode::start(config("chain"));
    // a holds one connection only (to b), so c can never reach a directly.
    let mut a_config = config("chain");
    a_config.max_connections = 1;
    let a = TestNode::start(a_config);
    let c = TestNode::start(config("chain"));
    let b_addr = b.addr("tcp").await;
    a.handle.dial(b_addr.clone()).await.expect("dial");
    c.handle.dial(b_addr).await.expect("dial");
    for node in [&a, &b, &c] {
        node.handle.subscribe("t").await.expect("subscribe");
    }
    wait_for(
        Duration::from_secs(30),
        "b's mesh to hold a and c",
        || async {
            let mesh = b.handle.mesh_peers("t").await.ok()?;
            (mesh.contains(&a.id) && mesh.contains(&c.id)).then_some(())
        },
    )
    .await;
    // A good message from a crosses b to c: the path works.
    publish(&a, "t", b"good").await;
    wait_for(
        Duration::from_secs(20),
        "c to receive a's good message",
        || async { c.has_seen("t", b"good").then_some(()) },
    )
    .await;

    let mut bad = BAD.to_vec();
    bad.extend_from_slice(b"forged weights");
    a.handle.publish("t", bad.clone()).await.expect("publish");
    let score = wait_for(
        Duration::from_secs(10),
        "b to score a below zero",
        || async {
            let score = b.handle.peer_score(a.id).await.ok()??;
            (score < 0.0).then_some(score)
        },
    )
    .await;
    assert!(score < 0.0);
    // b saw and rejected it; c, which hears a only through b, never receives it.
    assert!(
        b.seen
            .lock()
            .expect("log")
            .iter()
            .any(|s| s.data == bad && s.rejected)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!c.handle.peers().await.expect("peers").contains(&a.id));
    assert!(!c.seen.lock().expect("log").iter().any(|s| s.data == bad));
    stop_all(vec![a, b, c]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_peer_does_not_stop_honest_messages() {
    let nodes = star("flood", 6, |c| {
        c.gossip_rate_per_origin = 5;
        c.gossip_burst_per_origin = 5;
    })
    .await;
    for node in &nodes {
        node.handle.subscribe("tx").await.expect("subscribe");
    }
    settle(&nodes, "tx", 2).await;
    let flooder = &nodes[1];
    let honest = &nodes[2];
    publish(flooder, "tx", b"warm-up").await;
    let flood = async {
        let mut sent = 0;
        for i in 0..300u32 {
            if flooder
                .handle
                .publish("tx", format!("spam {i}").into_bytes())
                .await
                .is_ok()
            {
                sent += 1;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        sent
    };
    let honest_traffic = async {
        for i in 0..5u32 {
            publish(honest, "tx", format!("honest {i}").as_bytes()).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (sent, ()) = tokio::join!(flood, honest_traffic);
    assert!(
        sent >= 100,
        "the flood itself failed to send: {sent} of 300"
    );
    wait_for(
        Duration::from_secs(30),
        "every node to receive all honest messages",
        || async {
            nodes
                .iter()
                .filter(|n| n.id != honest.id)
                .all(|n| (0..5).all(|i| n.has_seen("tx", format!("honest {i}").as_bytes())))
                .then_some(())
        },
    )
    .await;
    // Receivers dropped most of the flood at the rate limit.
    let limited: f64 = nodes
        .iter()
        .filter(|n| n.id != flooder.id)
        .map(|n| metric(&n.metrics_text(), "meshmind_p2p_gossip_rate_limited_total"))
        .sum();
    assert!(limited > 0.0, "no flood message was rate limited");
    stop_all(nodes).await;
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}
