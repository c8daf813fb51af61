//! Test nodes: a network plus a task that answers its events in a scripted way.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshmind_p2p::{
    Multiaddr, Network, NetworkConfig, NetworkEvent, NetworkHandle, PeerId, QueryResponder,
};
use meshmind_protocols::Keypair;
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;

/// A gossip message as a test node saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub topic: String,
    pub data: Vec<u8>,
    pub origin: Option<PeerId>,
    /// Whether this node rejected it.
    pub rejected: bool,
}

/// A running node and what it has seen.
pub struct TestNode {
    pub handle: NetworkHandle,
    pub id: PeerId,
    pub keypair: Keypair,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub registry: Arc<Registry>,
    task: JoinHandle<()>,
}

/// Gossip whose body starts with this is rejected by every test node.
pub const BAD: &[u8] = b"bad:";

/// Query bodies understood by test nodes: `stream:<n>` answers with n frames `0..n`; `silent` never
/// answers; anything else is echoed.
async fn answer_query(
    payload: Vec<u8>,
    mut responder: QueryResponder,
    held: &mut Vec<QueryResponder>,
) {
    if let Some(n) = payload.strip_prefix(b"stream:") {
        let n: u32 = String::from_utf8_lossy(n).parse().unwrap_or(0);
        for i in 0..n {
            if responder.send(i.to_be_bytes().to_vec()).await.is_err() {
                return;
            }
        }
        let _ = responder.finish();
    } else if payload == b"silent" {
        held.push(responder);
    } else {
        let _ = responder.respond(payload).await;
    }
}

impl TestNode {
    /// Starts a node with `config` and a fresh key.
    pub fn start(config: NetworkConfig) -> Self {
        Self::start_with_key(config, Keypair::generate().expect("os random"))
    }

    /// Starts a node with `config` and `keypair`, retrying for a few seconds while a fixed port is
    /// still held by a node that just shut down (the OS releases it shortly after).
    pub async fn restart_with_key(config: NetworkConfig, keypair: Keypair) -> Self {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match Self::try_start(config.clone(), keypair.clone()) {
                Ok(node) => return node,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "port still held; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("network did not restart: {e}"),
            }
        }
    }

    /// Starts a node with `config` and `keypair`.
    pub fn start_with_key(config: NetworkConfig, keypair: Keypair) -> Self {
        Self::try_start(config, keypair).expect("network starts")
    }

    fn try_start(
        config: NetworkConfig,
        keypair: Keypair,
    ) -> Result<Self, meshmind_p2p::NetworkError> {
        let mut registry = Registry::default();
        let (handle, mut events) = Network::builder(config, &keypair)
            .registry(&mut registry)
            .spawn()?;
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(event) = events.recv().await {
                match event {
                    NetworkEvent::Gossip(message) => {
                        let rejected = message.data.starts_with(BAD);
                        log.lock().expect("log lock").push(Seen {
                            topic: message.topic.clone(),
                            data: message.data.clone(),
                            origin: message.origin,
                            rejected,
                        });
                        if rejected {
                            message.validation.reject();
                        } else {
                            message.validation.accept();
                        }
                    }
                    NetworkEvent::InboundRequest(request) => {
                        let mut answer = b"re:".to_vec();
                        answer.extend_from_slice(&request.data);
                        request.responder.respond(answer);
                    }
                    NetworkEvent::InboundQuery(query) => {
                        answer_query(query.payload, query.responder, &mut held).await;
                    }
                    _ => {}
                }
            }
        });
        Ok(Self {
            id: handle.local_peer_id(),
            handle,
            keypair,
            seen,
            registry: Arc::new(registry),
            task,
        })
    }

    /// The first listen address of the given kind (`"quic-v1"`, `"tcp"` or `"memory"`), with `/p2p/`.
    pub async fn addr(&self, kind: &str) -> Multiaddr {
        let id = self.id;
        let handle = self.handle.clone();
        let kind = kind.to_string();
        wait_for(Duration::from_secs(10), "a listen address", || {
            let handle = handle.clone();
            let kind = kind.clone();
            async move {
                handle
                    .listen_addrs()
                    .await
                    .ok()?
                    .into_iter()
                    .find(|a| a.to_string().contains(&kind))
                    .map(|a| a.with_p2p(id).expect("no /p2p/ yet"))
            }
        })
        .await
    }

    /// The query-plane address.
    pub fn query_addr(&self) -> SocketAddr {
        self.handle.query_addr().expect("query plane enabled")
    }

    /// Whether this node has seen `data` on `topic`.
    pub fn has_seen(&self, topic: &str, data: &[u8]) -> bool {
        self.seen
            .lock()
            .expect("log lock")
            .iter()
            .any(|s| s.topic == topic && s.data == data && !s.rejected)
    }

    /// The node's metrics in Prometheus text.
    pub fn metrics_text(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("encode");
        text
    }

    /// Shuts the node down and waits for its event task to end.
    pub async fn stop(self) {
        self.handle.shutdown().await;
        assert!(self.handle.is_shut_down());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("event task ends after shutdown")
            .expect("event task did not panic");
    }
}

/// Polls `probe` every 100 ms until it yields a value, or panics after `limit` naming `what`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts `n` local nodes bootstrapped from a first node, which is returned first.
pub async fn star(network: &str, n: usize, tweak: impl Fn(&mut NetworkConfig)) -> Vec<TestNode> {
    let mut config = NetworkConfig::local(network);
    tweak(&mut config);
    let boot = TestNode::start(config.clone());
    let boot_addr = boot.addr("quic-v1").await;
    let mut nodes = vec![boot];
    for _ in 1..n {
        let mut config = config.clone();
        config.bootnodes = vec![boot_addr.clone()];
        nodes.push(TestNode::start(config));
    }
    nodes
}

/// Stops every node.
pub async fn stop_all(nodes: Vec<TestNode>) {
    for node in nodes {
        node.stop().await;
    }
}

/// Publishes, retrying while no peer subscribes yet.
pub async fn publish(node: &TestNode, topic: &str, data: &[u8]) {
    wait_for(
        Duration::from_secs(20),
        "a subscribed peer to publish to",
        || async {
            match node.handle.publish(topic, data.to_vec()).await {
                Ok(()) => Some(()),
                Err(meshmind_p2p::NetworkError::NoPeers) => None,
                Err(e) => panic!("publish failed: {e}"),
            }
        },
    )
    .await
}

/// Waits until every node has at least `min` peers (or all its connected peers, if fewer) in its gossip
/// mesh for `topic`: gossip does not replay to peers that join the mesh late.
pub async fn settle(nodes: &[TestNode], topic: &str, min: usize) {
    for node in nodes {
        let handle = node.handle.clone();
        wait_for(Duration::from_secs(60), "gossip meshes to form", || {
            let handle = handle.clone();
            async move {
                let connected = handle.peers().await.ok()?.len();
                let mesh = handle.mesh_peers(topic).await.ok()?.len();
                (connected > 0 && mesh >= min.min(connected)).then_some(())
            }
        })
        .await;
    }
}
