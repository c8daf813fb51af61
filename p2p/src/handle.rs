//! Starting a network, and the clonable handle that drives it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::swarm::Swarm;
use libp2p::{Multiaddr, PeerId, kad};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};

use crate::config::NetworkConfig;
use crate::error::{NetworkError, QueryError, RequestError};
use crate::event::{EventSink, NetworkEvents};
use crate::metrics::P2pMetrics;
use crate::query::{self, QueryClient, QueryServer, QueryStream};
use crate::swarm::behaviour::Behaviour;
use crate::swarm::event_loop::{Command, EventLoop, Parts};
use crate::swarm::transport;

/// Capacity of the command queue from handles to the network task.
const COMMAND_QUEUE: usize = 1024;
/// Longest wait at shutdown for query-plane connections to close cleanly.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Entry point: builds and starts a network.
pub struct Network;

impl Network {
    /// A builder for a network with `config`, identified by `keypair` (the node's hotkey).
    pub fn builder(
        config: NetworkConfig,
        keypair: &meshmind_protocols::Keypair,
    ) -> NetworkBuilder<'_> {
        NetworkBuilder {
            config,
            keypair: keypair.to_libp2p(),
            registry: None,
        }
    }

    /// Starts a network with its own metrics registry. Must run inside a tokio runtime.
    pub fn spawn(
        config: NetworkConfig,
        keypair: &meshmind_protocols::Keypair,
    ) -> Result<(NetworkHandle, NetworkEvents), NetworkError> {
        Self::builder(config, keypair).spawn()
    }
}

/// Options for starting a network.
pub struct NetworkBuilder<'a> {
    config: NetworkConfig,
    keypair: libp2p::identity::Keypair,
    registry: Option<&'a mut Registry>,
}

impl<'a> NetworkBuilder<'a> {
    /// Registers the network's metrics (libp2p's under `libp2p_`, its own under `meshmind_p2p_`)
    /// in `registry` instead of a private one.
    pub fn registry(mut self, registry: &'a mut Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Binds the listeners, dials the bootnodes and starts the network task.
    pub fn spawn(self) -> Result<(NetworkHandle, NetworkEvents), NetworkError> {
        let config = self.config;
        config.check()?;
        let keypair = self.keypair;
        let local_peer_id = keypair.public().to_peer_id();

        let mut own_registry = Registry::default();
        let registry = match self.registry {
            Some(registry) => registry,
            None => &mut own_registry,
        };
        let metrics = libp2p::metrics::Metrics::new(registry.sub_registry_with_prefix("libp2p"));
        let p2p_metrics = P2pMetrics::register(registry.sub_registry_with_prefix("meshmind_p2p"));

        let (event_tx, event_rx) = mpsc::channel(config.event_queue);
        let (priority_tx, priority_rx) = mpsc::channel(config.priority_queue);
        let sink = EventSink::new(event_tx, priority_tx, p2p_metrics.events_dropped.clone());

        let (query_client, query_server, query_addr) = match config.query_listen {
            Some(addr) => {
                let endpoint = query::endpoint(
                    &keypair,
                    addr,
                    &config.query_alpn(),
                    config.max_query_streams_per_peer,
                )?;
                let bound = endpoint
                    .local_addr()
                    .map_err(|e| NetworkError::transport("query plane address", e))?;
                let client = Arc::new(QueryClient::new(
                    endpoint.clone(),
                    keypair.clone(),
                    config.query_alpn(),
                    config.max_query_bytes,
                    config.max_query_frame_bytes,
                ));
                let server = QueryServer::spawn(
                    endpoint.clone(),
                    query::ServerLimits {
                        max_request: config.max_query_bytes,
                        max_frame: config.max_query_frame_bytes,
                        max_connections_per_peer: config.max_query_connections_per_peer,
                    },
                    sink.clone(),
                );
                (Some(client), Some((server, endpoint)), Some(bound))
            }
            None => (None, None, None),
        };

        let behaviour = Behaviour::new(&keypair, &config, query_addr.map(|a| a.port()))?;
        let transport = transport::build(&keypair, config.transport)?;
        let swarm_config = libp2p::swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(config.idle_connection_timeout);
        let mut swarm = Swarm::new(transport, behaviour, local_peer_id, swarm_config);
        if config.kad_server {
            swarm.behaviour_mut().kad.set_mode(Some(kad::Mode::Server));
        }
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetworkError::transport(format!("listen on {addr}"), e))?;
        }
        for addr in &config.bootnodes {
            let mut plain = addr.clone();
            let Some(Protocol::P2p(peer)) = plain.pop() else {
                return Err(NetworkError::Config(format!(
                    "bootnode {addr} has no /p2p/<peer id> suffix"
                )));
            };
            if peer != local_peer_id {
                swarm.behaviour_mut().kad.add_address(&peer, plain);
                if let Err(e) = swarm.dial(addr.clone()) {
                    tracing::warn!(%addr, error = %e, "bootnode dial failed");
                }
            }
        }
        if !config.bootnodes.is_empty() {
            let _ = swarm.behaviour_mut().kad.bootstrap();
        }

        let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let network = config.network.clone();
        let event_loop = EventLoop::new(Parts {
            swarm,
            config,
            commands: command_rx,
            sink,
            query: query_client.clone(),
            metrics,
            p2p_metrics,
        });
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        let pool = query_client.clone();
        tokio::spawn(async move {
            event_loop.run().await;
            if let Some(pool) = pool {
                pool.close_all();
            }
            if let Some((server, endpoint)) = query_server {
                server.stop();
                endpoint.close(0u32.into(), b"shutdown");
                // Let peers learn of the close, then release the socket.
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, endpoint.wait_idle()).await;
            }
            let _ = done_tx.send(true);
        });

        let handle = NetworkHandle {
            commands: command_tx,
            query: query_client,
            query_addr,
            local_peer_id,
            network: network.into(),
            done: done_rx,
        };
        Ok((
            handle,
            NetworkEvents {
                rx: event_rx,
                priority: priority_rx,
            },
        ))
    }
}

/// A cheap, clonable handle to a running network.
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    query: Option<Arc<QueryClient>>,
    query_addr: Option<SocketAddr>,
    local_peer_id: PeerId,
    network: Arc<str>,
    done: tokio::sync::watch::Receiver<bool>,
}

impl NetworkHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetworkError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| NetworkError::Shutdown)?;
        answer.await.map_err(|_| NetworkError::Shutdown)
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// The network id used in protocol and topic names.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// Publishes `data` on `topic` (named without the `meshmind/<network>/` prefix).
    pub async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), NetworkError> {
        let topic = topic.to_string();
        self.ask(|reply| Command::Publish { topic, data, reply })
            .await?
    }

    /// Subscribes to `topic`; false if already subscribed.
    pub async fn subscribe(&self, topic: &str) -> Result<bool, NetworkError> {
        let topic = topic.to_string();
        self.ask(|reply| Command::Subscribe { topic, reply })
            .await?
    }

    /// Unsubscribes from `topic`; false if not subscribed.
    pub async fn unsubscribe(&self, topic: &str) -> Result<bool, NetworkError> {
        let topic = topic.to_string();
        self.ask(|reply| Command::Unsubscribe { topic, reply })
            .await
    }

    /// Announces in the DHT that this node provides `key`.
    pub async fn provide(&self, key: &[u8]) -> Result<(), NetworkError> {
        let key = key.to_vec();
        self.ask(|reply| Command::Provide { key, reply }).await?
    }

    /// Looks up the providers of `key` in the DHT.
    pub async fn find_providers(&self, key: &[u8]) -> Result<Vec<PeerId>, NetworkError> {
        let key = key.to_vec();
        self.ask(|reply| Command::FindProviders { key, reply })
            .await?
    }

    /// Looks up the peers closest to `target` in the DHT.
    pub async fn closest_peers(&self, target: PeerId) -> Result<Vec<PeerId>, NetworkError> {
        self.ask(|reply| Command::ClosestPeers { target, reply })
            .await?
    }

    /// Sends a sync-plane request and waits up to `timeout` for the answer.
    pub async fn request(
        &self,
        peer: PeerId,
        data: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Request { peer, data, reply })
            .await
            .map_err(|_| RequestError::Shutdown)?;
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RequestError::Shutdown),
            Err(_) => Err(RequestError::Timeout(peer)),
        }
    }

    fn query_client(&self) -> Result<&QueryClient, QueryError> {
        self.query.as_deref().ok_or(QueryError::Disabled)
    }

    /// Sends a query on the query plane and returns the first answer frame.
    pub async fn query(
        &self,
        peer: PeerId,
        payload: &[u8],
        deadline: Duration,
    ) -> Result<Vec<u8>, QueryError> {
        self.query_client()?.query(peer, payload, deadline).await
    }

    /// Sends a query on the query plane and returns its stream of answer frames.
    pub async fn query_stream(
        &self,
        peer: PeerId,
        payload: &[u8],
        deadline: Duration,
    ) -> Result<QueryStream, QueryError> {
        self.query_client()?
            .query_stream(peer, payload, deadline)
            .await
    }

    /// Records where `peer`'s query plane listens (learned, for example, from its capability ad).
    pub fn add_query_addr(&self, peer: PeerId, addr: SocketAddr) -> Result<(), QueryError> {
        self.query_client()?.add_address(peer, addr);
        Ok(())
    }

    /// This node's query-plane address, if it runs one.
    pub fn query_addr(&self) -> Option<SocketAddr> {
        self.query_addr
    }

    /// Dials `addr` (with a `/p2p/<peer id>` suffix, the peer also enters the routing table).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetworkError> {
        self.ask(|reply| Command::Dial { addr, reply }).await?
    }

    /// Refuses every connection with `peer` (closing the open ones) until [`Self::unblock_peer`].
    pub async fn block_peer(&self, peer: PeerId) -> Result<(), NetworkError> {
        self.ask(|reply| Command::Block {
            peer,
            blocked: true,
            reply,
        })
        .await
    }

    /// Lets `peer` connect again.
    pub async fn unblock_peer(&self, peer: PeerId) -> Result<(), NetworkError> {
        self.ask(|reply| Command::Block {
            peer,
            blocked: false,
            reply,
        })
        .await
    }

    /// Currently connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerId>, NetworkError> {
        self.ask(|reply| Command::Peers { reply }).await
    }

    /// Control-plane addresses this node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        self.ask(|reply| Command::ListenAddrs { reply }).await
    }

    /// The gossip score this node gives `peer`, if it knows the peer.
    pub async fn peer_score(&self, peer: PeerId) -> Result<Option<f64>, NetworkError> {
        self.ask(|reply| Command::PeerScore { peer, reply }).await
    }

    /// The peers this node forwards `topic`'s messages to (its gossip mesh for the topic).
    pub async fn mesh_peers(&self, topic: &str) -> Result<Vec<PeerId>, NetworkError> {
        let topic = topic.to_string();
        self.ask(|reply| Command::MeshPeers { topic, reply }).await
    }

    /// Stops the network: closes listeners and connections, and waits for the task to end.
    pub async fn shutdown(&self) {
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = answer.await;
        }
        let mut done = self.done.clone();
        let _ = done.wait_for(|finished| *finished).await;
    }

    /// Whether the network task has ended.
    pub fn is_shut_down(&self) -> bool {
        *self.done.borrow()
    }
}
