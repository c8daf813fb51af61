//! The node's router over real libp2p networks on 127.0.0.1: each request kind reaches the one
//! service that answers it, malformed and unrouted requests get a clear error, two services
//! cannot claim the same traffic, and shutdown stops every service's loop in reverse order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshmind_node::node::{Node, RouterError};
use meshmind_node::role::miner::{AdSchedule, Miner, MinerConfig, MinerService, Reference};
use meshmind_node::service::{Service, ServiceFuture};
use meshmind_node::topics::Topic;
use meshmind_p2p::{Network, NetworkConfig, NetworkHandle};
use meshmind_protocols::{Keypair, NetworkId, decode, v1};
use prost::Message;
use tokio_util::sync::CancellationToken;

const NET: NetworkId = NetworkId::new([4; 32]);

/// A service that only records when its loop stops.
struct Probe {
    name: &'static str,
    topics: Vec<Topic>,
    stopped: Arc<Mutex<Vec<&'static str>>>,
}

impl Service for Probe {
    fn name(&self) -> &'static str {
        self.name
    }

    fn topics(&self) -> Vec<Topic> {
        self.topics.clone()
    }

    fn run(self: Arc<Self>, cancel: CancellationToken) -> ServiceFuture {
        Box::pin(async move {
            cancel.cancelled().await;
            self.stopped.lock().expect("log").push(self.name);
        })
    }
}

fn network(name: &str) -> NetworkHandle {
    let key = Keypair::generate().expect("os random");
    let (handle, _events) = Network::spawn(NetworkConfig::local(name), &key).expect("network");
    handle
}

async fn ask(
    client: &NetworkHandle,
    server: &NetworkHandle,
    body: Vec<u8>,
) -> v1::sync_response::Body {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match client
            .request(server.local_peer_id(), body.clone(), Duration::from_secs(2))
            .await
        {
            Ok(bytes) => {
                return decode::<v1::SyncResponse>(&bytes)
                    .expect("a valid response")
                    .body
                    .expect("a body");
            }
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "no answer: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn error_code(body: v1::sync_response::Body) -> i32 {
    match body {
        v1::sync_response::Body::Error(e) => e.code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_their_service_and_the_rest_get_errors() {
    let key = Keypair::generate().expect("os random");
    let (server, events) = Network::spawn(NetworkConfig::local("router"), &key).expect("network");
    let miner = Arc::new(Miner::new(
        MinerConfig::new(NET, 1, vec!["sort".into()]),
        key,
        Arc::new(Reference),
    ));
    let stopped = Arc::new(Mutex::new(Vec::new()));
    let mut node = Node::new(server.clone());
    node.add(Arc::new(MinerService::new(
        miner,
        server.clone(),
        AdSchedule {
            ttl_ms: 60_000,
            gossip: false,
        },
        None,
    )))
    .expect("miner routes");
    node.add(Arc::new(Probe {
        name: "probe",
        topics: vec![Topic::Tx],
        stopped: stopped.clone(),
    }))
    .expect("probe routes");
    let running = node.start(events).await.expect("node starts");

    let client = network("router");
    let addr = loop {
        let addrs = server.listen_addrs().await.expect("addrs");
        if let Some(a) = addrs.into_iter().find(|a| a.to_string().contains("quic")) {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    client
        .dial(
            addr.clone()
                .with_p2p(server.local_peer_id())
                .expect("p2p suffix"),
        )
        .await
        .expect("dial");

    // The miner's ads: its service answers Caps requests (after its first advertisement).
    let caps = v1::SyncRequest {
        body: Some(v1::sync_request::Body::Caps(v1::CapsRequest { subnet: 1 })),
    }
    .encode_to_vec();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match ask(&client, &server, caps.clone()).await {
            v1::sync_response::Body::Ads(ads) if !ads.ads.is_empty() => {
                assert_eq!(ads.ads[0].task, "sort");
                break;
            }
            other => {
                assert!(tokio::time::Instant::now() < deadline, "no ads: {other:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Garbage is refused by the router before any service sees it.
    assert_eq!(
        error_code(ask(&client, &server, b"\xff\xff".to_vec()).await),
        v1::ErrorCode::Malformed as i32
    );
    // A kind no service answers: unavailable, named.
    let status = v1::SyncRequest {
        body: Some(v1::sync_request::Body::Status(v1::StatusRequest {})),
    }
    .encode_to_vec();
    match ask(&client, &server, status).await {
        v1::sync_response::Body::Error(e) => {
            assert_eq!(e.code, v1::ErrorCode::Unavailable as i32);
            assert!(e.message.contains("Status"), "{}", e.message);
        }
        other => panic!("expected an error, got {other:?}"),
    }

    // A peer that floods one kind of request is told it is over its rate, cheaply; the
    // requests it made before, and another peer, are served.
    let started = tokio::time::Instant::now();
    let mut served = 0;
    let mut refused = 0;
    for _ in 0..200 {
        match ask(&client, &server, caps.clone()).await {
            v1::sync_response::Body::Ads(_) => served += 1,
            v1::sync_response::Body::Error(e) if e.code == v1::ErrorCode::Overloaded as i32 => {
                refused += 1
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let (rate, burst) = meshmind_node::node::SYNC_REQUESTS_PER_PEER;
    let allowed = burst as f64 + rate as f64 * started.elapsed().as_secs_f64() + 1.0;
    assert!(refused > 0, "200 requests and none refused");
    assert!(
        f64::from(served) <= allowed,
        "{served} served, at most {allowed} allowed"
    );
    let other = network("router");
    other
        .dial(addr.with_p2p(server.local_peer_id()).expect("p2p suffix"))
        .await
        .expect("dial");
    assert!(matches!(
        ask(&other, &server, caps).await,
        v1::sync_response::Body::Ads(_)
    ));

    running.shutdown().await;
    assert_eq!(*stopped.lock().expect("log"), vec!["probe"]);
    client.shutdown().await;
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_cannot_claim_one_topic_and_loops_stop_in_reverse_order() {
    let key = Keypair::generate().expect("os random");
    let (server, events) =
        Network::spawn(NetworkConfig::local("router-order"), &key).expect("network");
    let stopped = Arc::new(Mutex::new(Vec::new()));
    let probe = |name, topics| {
        Arc::new(Probe {
            name,
            topics,
            stopped: stopped.clone(),
        })
    };
    let mut node = Node::new(server.clone());
    node.add(probe("first", vec![Topic::Consensus]))
        .expect("first");
    node.add(probe("second", vec![Topic::Tx])).expect("second");
    match node.add(probe("third", vec![Topic::Tx])) {
        Err(RouterError::Topic {
            topic,
            first,
            second,
        }) => {
            assert_eq!((topic, first, second), (Topic::Tx, "second", "third"));
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a topic claimed twice"),
    }
    let running = node.start(events).await.expect("node starts");
    running.shutdown().await;
    assert_eq!(*stopped.lock().expect("log"), vec!["second", "first"]);
}
