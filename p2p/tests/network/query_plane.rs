//! The query plane: bare QUIC authenticated by libp2p keys.

use std::time::{Duration, Instant};

use meshmind_p2p::{NetworkConfig, QueryError, QueryErrorCode};
use meshmind_protocols::Keypair;

use crate::common::{TestNode, stop_all, wait_for};

async fn pair(tweak_server: impl Fn(&mut NetworkConfig)) -> (TestNode, TestNode) {
    let mut config = NetworkConfig::local("queries");
    tweak_server(&mut config);
    let server = TestNode::start(config);
    let client = TestNode::start(NetworkConfig::local("queries"));
    client
        .handle
        .add_query_addr(server.id, server.query_addr())
        .expect("query plane enabled");
    (server, client)
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_and_one_mebibyte_round_trips() {
    let (server, client) = pair(|_| {}).await;
    let answer = client
        .handle
        .query(server.id, b"x", 5 * SECOND)
        .await
        .expect("1 byte");
    assert_eq!(answer, b"x");
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let answer = client
        .handle
        .query(server.id, &big, 10 * SECOND)
        .await
        .expect("1 MiB");
    assert_eq!(answer, big);
    stop_all(vec![server, client]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_answer_of_100_frames_arrives_in_order() {
    let (server, client) = pair(|_| {}).await;
    let mut stream = client
        .handle
        .query_stream(server.id, b"stream:100", 10 * SECOND)
        .await
        .expect("stream opens");
    let mut frames = Vec::new();
    while let Some(frame) = stream.next().await {
        frames.push(frame.expect("frame"));
    }
    let expected: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_be_bytes().to_vec()).collect();
    assert_eq!(frames, expected);
    stop_all(vec![server, client]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_over_the_cap_is_refused_and_the_connection_survives() {
    let (server, client) = pair(|c| c.max_query_bytes = 1024).await;
    client
        .handle
        .query(server.id, b"before", 5 * SECOND)
        .await
        .expect("small query");
    match client
        .handle
        .query(server.id, &[7u8; 4096], 5 * SECOND)
        .await
    {
        Err(QueryError::Remote { code, .. }) => assert_eq!(code, QueryErrorCode::TooLarge),
        other => panic!("expected a TooLarge refusal, got {other:?}"),
    }
    let answer = client
        .handle
        .query(server.id, b"after", 5 * SECOND)
        .await
        .expect("small query");
    assert_eq!(answer, b"after");
    stop_all(vec![server, client]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_yields_a_deadline_error() {
    let (server, client) = pair(|_| {}).await;
    let started = Instant::now();
    let result = client
        .handle
        .query(server.id, b"silent", Duration::from_millis(300))
        .await;
    assert!(matches!(result, Err(QueryError::Deadline)), "{result:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < 3 * SECOND,
        "{elapsed:?}"
    );
    stop_all(vec![server, client]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_expecting_another_key_fails_the_handshake() {
    let (server, client) = pair(|_| {}).await;
    let impostor = Keypair::generate().expect("os random").peer_id();
    client
        .handle
        .add_query_addr(impostor, server.query_addr())
        .expect("query plane enabled");
    let result = client.handle.query(impostor, b"hello", 5 * SECOND).await;
    assert!(
        matches!(result, Err(QueryError::Connect { .. })),
        "{result:?}"
    );
    stop_all(vec![server, client]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_is_reestablished_after_the_server_restarts() {
    let (server, client) = pair(|_| {}).await;
    client
        .handle
        .query(server.id, b"one", 5 * SECOND)
        .await
        .expect("first query");
    let addr = server.query_addr();
    let key = server.keypair.clone();
    server.stop().await;
    let result = client.handle.query(key.peer_id(), b"down", SECOND).await;
    assert!(result.is_err(), "a stopped server answered: {result:?}");

    let mut config = NetworkConfig::local("queries");
    config.query_listen = Some(addr);
    let restarted = TestNode::restart_with_key(config, key).await;
    assert_eq!(restarted.query_addr(), addr, "restarted on the same port");
    let answer = wait_for(10 * SECOND, "a query to the restarted server", || async {
        client.handle.query(restarted.id, b"two", SECOND).await.ok()
    })
    .await;
    assert_eq!(answer, b"two");
    stop_all(vec![restarted, client]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_address_is_learned_from_identify() {
    let server = TestNode::start(NetworkConfig::local("queries"));
    let client = TestNode::start(NetworkConfig::local("queries"));
    client
        .handle
        .dial(server.addr("quic-v1").await)
        .await
        .expect("dial");
    let answer = wait_for(
        10 * SECOND,
        "a query over the identified address",
        || async {
            client
                .handle
                .query(server.id, b"via identify", SECOND)
                .await
                .ok()
        },
    )
    .await;
    assert_eq!(answer, b"via identify");
    stop_all(vec![server, client]).await;
}
