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

    // c hears a only through b.
    assert!(!c.handle.peers().await.expect("peers").contains(&a.id));
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
    // A later message from b reaches c over the same link: had b forwarded the bad one, c
    // would have it by now.
    publish(&b, "t", b"marker").await;
    wait_for(
        Duration::from_secs(20),
        "c to receive b's later message",
        || async { c.has_seen("t", b"marker").then_some(()) },
    )
    .await;
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

/// The sum of a metric's samples whose label set contains `label` (`""` for any).
fn metric_with(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once('}')?,
                None => ("", rest),
            };
            labels
                .contains(label)
                .then(|| value.trim().parse::<f64>().ok())?
        })
        .sum()
}

fn metric(text: &str, name: &str) -> f64 {
    metric_with(text, name, "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_that_fills_the_event_queue_does_not_drop_consensus_gossip() {
    // The victim's application is busy (reads nothing) while one peer floods an ordinary topic
    // past its small event queue and another publishes consensus messages.
    let mut config = NetworkConfig::local("priority");
    config.event_queue = 8;
    config.priority_topics = vec!["consensus".into()];
    let keypair = meshmind_p2p::Keypair::generate().expect("os random");
    let mut registry = prometheus_client::registry::Registry::default();
    let (victim, mut events) = meshmind_p2p::Network::builder(config.clone(), &keypair)
        .registry(&mut registry)
        .spawn()
        .expect("victim starts");
    let victim_addr = wait_for(Duration::from_secs(10), "a listen address", || async {
        victim
            .listen_addrs()
            .await
            .ok()?
            .into_iter()
            .find(|a| a.to_string().contains("quic-v1"))
            .map(|a| a.with_p2p(victim.local_peer_id()).expect("no /p2p/ yet"))
    })
    .await;
    for topic in ["tx", "consensus"] {
        victim.subscribe(topic).await.expect("subscribe");
    }
    let mut peer_config = NetworkConfig::local("priority");
    peer_config.bootnodes = vec![victim_addr];
    let flooder = TestNode::start(peer_config.clone());
    let voter = TestNode::start(peer_config);
    flooder.handle.subscribe("tx").await.expect("subscribe");
    voter
        .handle
        .subscribe("consensus")
        .await
        .expect("subscribe");
    for topic in ["tx", "consensus"] {
        wait_for(
            Duration::from_secs(60),
            "the victim's meshes to form",
            || async { (!victim.mesh_peers(topic).await.ok()?.is_empty()).then_some(()) },
        )
        .await;
    }
    let dropped = |registry: &prometheus_client::registry::Registry, kind: &str| {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).expect("encode");
        metric_with(
            &text,
            "meshmind_p2p_events_dropped_total",
            &format!("kind=\"{kind}\""),
        )
    };
    let flood = async {
        for i in 0..300u32 {
            let _ = flooder
                .handle
                .publish("tx", format!("spam {i}").into_bytes())
                .await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let votes = async {
        // Vote only once the ordinary queue is full and dropping.
        wait_for(
            Duration::from_secs(20),
            "the flood to fill the queue",
            || async { (dropped(&registry, "gossip") > 0.0).then_some(()) },
        )
        .await;
        for i in 0..3u32 {
            publish(&voter, "consensus", format!("vote {i}").as_bytes()).await;
        }
    };
    tokio::join!(flood, votes);
    assert!(
        dropped(&registry, "gossip") >= 100.0,
        "the flood did not overflow the ordinary queue"
    );
    assert_eq!(dropped(&registry, "priority_gossip"), 0.0);
    // The busy application now reads: every vote is there, ahead of the flood.
    let mut first = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event")
            .expect("network running");
        if let meshmind_p2p::NetworkEvent::Gossip(message) = event {
            first.push((message.topic.clone(), message.data.clone()));
        }
    }
    let expected: Vec<_> = (0..3u32)
        .map(|i| ("consensus".to_string(), format!("vote {i}").into_bytes()))
        .collect();
    assert_eq!(first, expected, "the votes come first");
    drop(events);
    victim.shutdown().await;
    stop_all(vec![flooder, voter]).await;
}
