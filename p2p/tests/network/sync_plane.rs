//! The sync plane: libp2p request-response with a capped length-prefixed codec.

use std::time::Duration;

use meshmind_p2p::{NetworkConfig, RequestError};

use crate::common::{TestNode, stop_all, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_and_over_cap_refusal() {
    let mut server_config = NetworkConfig::local("sync");
    server_config.max_sync_request_bytes = 1024;
    let server = TestNode::start(server_config);
    let client = TestNode::start(NetworkConfig::local("sync"));
    client
        .handle
        .dial(server.addr("quic-v1").await)
        .await
        .expect("dial");
    let answer = wait_for(Duration::from_secs(10), "a sync answer", || async {
        client
            .handle
            .request(server.id, b"range 0..4".to_vec(), Duration::from_secs(2))
            .await
            .ok()
    })
    .await;
    assert_eq!(answer, b"re:range 0..4");

    // Over the server's cap: refused, and the node keeps serving.
    let result = client
        .handle
        .request(server.id, vec![1u8; 4096], Duration::from_secs(5))
        .await;
    assert!(result.is_err(), "an over-cap request was answered");

    // Over the client's own cap: refused locally.
    let result = client
        .handle
        .request(server.id, vec![1u8; 3 << 20], Duration::from_secs(5))
        .await;
    assert!(matches!(result, Err(RequestError::TooLarge)), "{result:?}");

    let answer = client
        .handle
        .request(server.id, b"again".to_vec(), Duration::from_secs(5))
        .await
        .expect("still served");
    assert_eq!(answer, b"re:again");
    stop_all(vec![server, client]).await;
}
