//! The task that owns the swarm: runs commands from handles, turns swarm events into network events.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::kad::{self, QueryId, QueryResult};
use libp2p::metrics::{Metrics, Recorder};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};

use super::behaviour::{Behaviour, BehaviourEvent, content_id, topic_score_params};
use super::gossip_gate::{Class, GossipGate, Limited};
use crate::config::NetworkConfig;
use crate::config::public_ip;
use crate::error::{NetworkError, RequestError};
use crate::event::{
    EventSink, GossipMessage, InboundRequest, Internal, NetworkEvent, RequestResponder, Validation,
};
use crate::metrics::P2pMetrics;
use crate::query::QueryClient;

type Reply<T> = oneshot::Sender<T>;

/// What a handle asks the swarm task to do.
pub(crate) enum Command {
    Publish {
        topic: String,
        data: Vec<u8>,
        reply: Reply<Result<(), NetworkError>>,
    },
    Subscribe {
        topic: String,
        reply: Reply<Result<bool, NetworkError>>,
    },
    Unsubscribe {
        topic: String,
        reply: Reply<bool>,
    },
    Provide {
        key: Vec<u8>,
        reply: Reply<Result<(), NetworkError>>,
    },
    FindProviders {
        key: Vec<u8>,
        reply: Reply<Result<Vec<PeerId>, NetworkError>>,
    },
    ClosestPeers {
        target: PeerId,
        reply: Reply<Result<Vec<PeerId>, NetworkError>>,
    },
    Request {
        peer: PeerId,
        data: Vec<u8>,
        reply: Reply<Result<Vec<u8>, RequestError>>,
    },
    Dial {
        addr: Multiaddr,
        reply: Reply<Result<(), NetworkError>>,
    },
    Peers {
        reply: Reply<Vec<PeerId>>,
    },
    Block {
        peer: PeerId,
        blocked: bool,
        reply: Reply<()>,
    },
    ListenAddrs {
        reply: Reply<Vec<Multiaddr>>,
    },
    PeerScore {
        peer: PeerId,
        reply: Reply<Option<f64>>,
    },
    MeshPeers {
        topic: String,
        reply: Reply<Vec<PeerId>>,
    },
    Shutdown {
        reply: Reply<()>,
    },
}

/// A Kademlia query a handle is waiting on.
enum PendingKad {
    Provide(Reply<Result<(), NetworkError>>),
    Providers {
        reply: Reply<Result<Vec<PeerId>, NetworkError>>,
        found: HashSet<PeerId>,
    },
    Closest(Reply<Result<Vec<PeerId>, NetworkError>>),
}

/// The state of the swarm task.
pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    config: NetworkConfig,
    commands: mpsc::Receiver<Command>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    sink: EventSink,
    query: Option<Arc<QueryClient>>,
    metrics: Metrics,
    p2p_metrics: P2pMetrics,
    gossip_gate: GossipGate,
    pending_kad: HashMap<QueryId, PendingKad>,
    pending_requests: HashMap<OutboundRequestId, Reply<Result<Vec<u8>, RequestError>>>,
    connection_addrs: HashMap<ConnectionId, Multiaddr>,
    listen_addrs: Vec<Multiaddr>,
    topic_prefix: String,
}

/// The parts the event loop is built from.
pub(crate) struct Parts {
    pub swarm: Swarm<Behaviour>,
    pub config: NetworkConfig,
    pub commands: mpsc::Receiver<Command>,
    pub sink: EventSink,
    pub query: Option<Arc<QueryClient>>,
    pub metrics: Metrics,
    pub p2p_metrics: P2pMetrics,
}

/// Whether an address may enter the routing table: public addresses always, others in local mode.
fn routable(addr: &Multiaddr, local: bool) -> bool {
    if local {
        return true;
    }
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => public_ip(IpAddr::V4(ip)),
        Some(Protocol::Ip6(ip)) => public_ip(IpAddr::V6(ip)),
        Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_)) => true,
        _ => false,
    }
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// The query-plane port a peer advertises in its identify agent string (`... query=<port>`).
fn query_port(agent: &str) -> Option<u16> {
    agent
        .split_whitespace()
        .find_map(|part| part.strip_prefix("query="))
        .and_then(|port| port.parse().ok())
}

impl EventLoop {
    /// Assembles the loop.
    pub(crate) fn new(parts: Parts) -> Self {
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let gossip_gate = GossipGate::new(&parts.config);
        let topic_prefix = parts.config.topic("");
        Self {
            swarm: parts.swarm,
            config: parts.config,
            commands: parts.commands,
            internal_rx,
            internal_tx,
            sink: parts.sink,
            query: parts.query,
            metrics: parts.metrics,
            p2p_metrics: parts.p2p_metrics,
            gossip_gate,
            pending_kad: HashMap::new(),
            pending_requests: HashMap::new(),
            connection_addrs: HashMap::new(),
            listen_addrs: Vec::new(),
            topic_prefix,
        }
    }

    /// Runs until shutdown is asked for or every handle is gone.
    pub(crate) async fn run(mut self) {
        let mut redial =
            tokio::time::interval(self.config.bootnode_redial.max(Duration::from_millis(100)));
        redial.tick().await;
        let shutdown_reply = loop {
            tokio::select! {
                _ = redial.tick() => {
                    self.redial_bootnodes();
                    self.fill_peers();
                }
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown { reply }) => break Some(reply),
                    Some(command) => self.on_command(command),
                    None => break None,
                },
                Some(internal) = self.internal_rx.recv() => self.on_internal(internal),
            }
        };
        let listeners: Vec<_> = self.listen_addrs.drain(..).collect();
        tracing::debug!(addrs = listeners.len(), "network shutting down");
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        drop(self.swarm);
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    /// Dials every bootnode that is not connected (it may have restarted, or dropped us).
    fn redial_bootnodes(&mut self) {
        for addr in self.config.bootnodes.clone() {
            let Some(Protocol::P2p(peer)) = addr.iter().last() else {
                continue;
            };
            if peer != *self.swarm.local_peer_id() && !self.swarm.is_connected(&peer) {
                tracing::debug!(%addr, "redialling bootnode");
                if let Err(e) = self.swarm.dial(addr.clone()) {
                    tracing::debug!(%addr, error = %e, "bootnode redial failed");
                }
            }
        }
    }

    /// Dials a few peers from the Kademlia table while fewer than `target_peers` are connected,
    /// and refreshes the table now and then.
    fn fill_peers(&mut self) {
        let connected: HashSet<PeerId> = self.swarm.connected_peers().copied().collect();
        let missing = self.config.target_peers.saturating_sub(connected.len());
        if missing == 0 {
            return;
        }
        let local = *self.swarm.local_peer_id();
        let mut candidates: Vec<PeerId> = Vec::new();
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            for entry in bucket.iter() {
                let peer = *entry.node.key.preimage();
                if peer != local && !connected.contains(&peer) {
                    candidates.push(peer);
                }
            }
        }
        // At most 4 new dials per period, so a big table does not cause a dial storm.
        for peer in candidates.into_iter().take(missing.min(4)) {
            tracing::debug!(%peer, "dialling a known peer to reach the target peer count");
            let _ = self.swarm.dial(peer);
        }
        if connected.len() < 2 {
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
    }

    fn full_topic(&self, topic: &str) -> IdentTopic {
        IdentTopic::new(format!("{}{topic}", self.topic_prefix))
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data, reply } => {
                let topic = self.full_topic(&topic);
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic, data)
                    .map(|_| ())
                    .map_err(|e| match e {
                        gossipsub::PublishError::NoPeersSubscribedToTopic => NetworkError::NoPeers,
                        other => NetworkError::Publish(other),
                    });
                let _ = reply.send(result);
            }
            Command::Subscribe { topic, reply } => {
                let topic = self.full_topic(&topic);
                let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
                let result = gossipsub
                    .subscribe(&topic)
                    .map_err(NetworkError::Subscription);
                if result.is_ok() {
                    let _ = gossipsub.set_topic_params(topic, topic_score_params());
                }
                let _ = reply.send(result);
            }
            Command::Unsubscribe { topic, reply } => {
                let topic = self.full_topic(&topic);
                let _ = reply.send(self.swarm.behaviour_mut().gossipsub.unsubscribe(&topic));
            }
            Command::Provide { key, reply } => {
                match self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .start_providing(kad::RecordKey::new(&key))
                {
                    Ok(id) => {
                        self.pending_kad.insert(id, PendingKad::Provide(reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NetworkError::Dht(e.into())));
                    }
                }
            }
            Command::FindProviders { key, reply } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_providers(kad::RecordKey::new(&key));
                self.pending_kad.insert(
                    id,
                    PendingKad::Providers {
                        reply,
                        found: HashSet::new(),
                    },
                );
            }
            Command::ClosestPeers { target, reply } => {
                let id = self.swarm.behaviour_mut().kad.get_closest_peers(target);
                self.pending_kad.insert(id, PendingKad::Closest(reply));
            }
            Command::Request { peer, data, reply } => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, data);
                self.pending_requests.insert(id, reply);
            }
            Command::Dial { addr, reply } => {
                if let Some(Protocol::P2p(peer)) = addr.iter().last() {
                    let mut plain = addr.clone();
                    plain.pop();
                    self.swarm.behaviour_mut().kad.add_address(&peer, plain);
                }
                let result = self
                    .swarm
                    .dial(addr)
                    .map_err(|e| NetworkError::Dial(Box::new(e)));
                let _ = reply.send(result);
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Block {
                peer,
                blocked,
                reply,
            } => {
                let list = &mut self.swarm.behaviour_mut().blocked;
                if blocked {
                    tracing::info!(%peer, "peer blocked");
                    list.block_peer(peer);
                } else {
                    tracing::info!(%peer, "peer unblocked");
                    list.unblock_peer(peer);
                }
                let _ = reply.send(());
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.listen_addrs.clone());
            }
            Command::PeerScore { peer, reply } => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Command::MeshPeers { topic, reply } => {
                let topic = self.full_topic(&topic).hash();
                let peers = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .mesh_peers(&topic)
                    .copied()
                    .collect();
                let _ = reply.send(peers);
            }
            Command::Shutdown { reply } => {
                // Handled by the run loop; answering here keeps the match total.
                let _ = reply.send(());
            }
        }
    }

    fn on_internal(&mut self, internal: Internal) {
        match internal {
            Internal::Validated {
                id,
                propagation_source,
                acceptance,
            } => self.report(&id, &propagation_source, acceptance),
            Internal::Respond { channel, data } => {
                if self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, data)
                    .is_err()
                {
                    tracing::debug!("sync response not sent: the requester is gone");
                }
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.metrics.record(&event);
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => {
                self.metrics.record(&event);
                self.on_gossip(event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => {
                self.metrics.record(&event);
                self.on_kad(event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => {
                self.metrics.record(&event);
                self.on_identify(event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(event)) => {
                self.metrics.record(&event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Limits(never)) => match never {},
            SwarmEvent::Behaviour(BehaviourEvent::Blocked(never)) => match never {},
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                self.connection_addrs
                    .insert(connection_id, endpoint.get_remote_address().clone());
                if num_established.get() == 1 {
                    let _ = self
                        .sink
                        .emit(NetworkEvent::PeerConnected(peer_id), "peer_connected");
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.connection_addrs.remove(&connection_id);
                if num_established == 0 {
                    let _ = self
                        .sink
                        .emit(NetworkEvent::PeerDisconnected(peer_id), "peer_disconnected");
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.listen_addrs.push(address.clone());
                let _ = self
                    .sink
                    .emit(NetworkEvent::ListenAddr(address), "listen_addr");
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| *a != address);
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, %error, "outgoing connection failed");
            }
            _ => {}
        }
    }

    /// Tells gossipsub whether to forward a message (and whether to penalise its sender).
    fn report(
        &mut self,
        id: &gossipsub::MessageId,
        source: &PeerId,
        acceptance: MessageAcceptance,
    ) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, acceptance);
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            return;
        };
        let origin = message.source;
        let full_topic = message.topic.as_str();
        let Some(topic) = full_topic.strip_prefix(&self.topic_prefix) else {
            // Not one of this network's topics: never forwarded.
            self.report(&message_id, &propagation_source, MessageAcceptance::Reject);
            return;
        };
        let class = self.gossip_gate.class(topic);
        if let Err(limit) =
            self.gossip_gate
                .admit(propagation_source, origin, class, Instant::now())
        {
            let by = match limit {
                Limited::Peer => "peer",
                Limited::Origin => "origin",
            };
            if limit == Limited::Peer {
                // gossipsub counts a message as seen before it is validated, so whatever this
                // peer relays past its budget would be lost even when honest peers bring it
                // later: a peer that pushes that much is cut off instead of being heard less.
                tracing::debug!(peer = %propagation_source, "gossip over the per-peer rate; disconnecting");
                let _ = self.swarm.disconnect_peer_id(propagation_source);
            }
            self.p2p_metrics
                .gossip_rate_limited
                .get_or_create(&vec![("by", by)])
                .inc();
            self.report(&message_id, &propagation_source, MessageAcceptance::Ignore);
            return;
        }
        let id = content_id(full_topic, &message.data);
        let gossip = GossipMessage {
            topic: topic.to_string(),
            origin,
            propagation_source,
            data: message.data,
            id,
            validation: Validation::new(message_id, propagation_source, self.internal_tx.clone()),
        };
        // A full queue drops the message; its validation handle reports Ignore as it drops.
        let event = NetworkEvent::Gossip(gossip);
        let _ = match class {
            Class::Priority => self.sink.emit_priority(event, "priority_gossip"),
            Class::Ordinary => self.sink.emit(event, "gossip"),
        };
    }

    fn on_identify(&mut self, event: libp2p::identify::Event) {
        let libp2p::identify::Event::Received {
            peer_id,
            connection_id,
            info,
        } = event
        else {
            return;
        };
        // A peer of this network says so by the protocol version meshmind nodes send, or, on any
        // other libp2p stack (whose identify cannot send ours), by serving this network's
        // Kademlia protocol. Anyone else is of another network.
        let kad_protocol = self.config.kad_protocol();
        let speaks_kad = info.protocols.iter().any(|p| p.as_ref() == kad_protocol);
        if info.protocol_version != self.config.identify_protocol() && !speaks_kad {
            tracing::debug!(%peer_id, version = %info.protocol_version, "peer of another network; disconnecting");
            let _ = self.swarm.disconnect_peer_id(peer_id);
            return;
        }
        if speaks_kad {
            for addr in info.listen_addrs {
                if routable(&addr, self.config.local) {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
        }
        if let (Some(query), Some(port)) = (&self.query, query_port(&info.agent_version))
            && let Some(ip) = self.connection_addrs.get(&connection_id).and_then(ip_of)
        {
            query.add_address(peer_id, SocketAddr::new(ip, port));
        }
    }

    fn on_kad(&mut self, event: kad::Event) {
        let kad::Event::OutboundQueryProgressed {
            id, result, step, ..
        } = event
        else {
            return;
        };
        match result {
            QueryResult::StartProviding(result) => {
                if let Some(PendingKad::Provide(reply)) = self.pending_kad.remove(&id) {
                    let _ = reply.send(result.map(|_| ()).map_err(|e| NetworkError::Dht(e.into())));
                }
            }
            QueryResult::GetProviders(result) => {
                let finished = step.last;
                if let Some(PendingKad::Providers { found, .. }) = self.pending_kad.get_mut(&id)
                    && let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = &result
                {
                    found.extend(providers.iter().copied());
                }
                if finished
                    && let Some(PendingKad::Providers { reply, found }) =
                        self.pending_kad.remove(&id)
                {
                    {
                        let answer = if found.is_empty() {
                            match result {
                                Err(e) => Err(NetworkError::Dht(e.into())),
                                Ok(_) => Ok(Vec::new()),
                            }
                        } else {
                            Ok(found.into_iter().collect())
                        };
                        let _ = reply.send(answer);
                    }
                }
            }
            QueryResult::GetClosestPeers(result) => {
                if let Some(PendingKad::Closest(reply)) = self.pending_kad.remove(&id) {
                    let answer = match result {
                        Ok(ok) => Ok(ok.peers.into_iter().map(|p| p.peer_id).collect()),
                        Err(kad::GetClosestPeersError::Timeout { peers, .. })
                            if !peers.is_empty() =>
                        {
                            Ok(peers.into_iter().map(|p| p.peer_id).collect())
                        }
                        Err(e) => Err(NetworkError::Dht(e.into())),
                    };
                    let _ = reply.send(answer);
                }
            }
            _ => {}
        }
    }

    fn on_sync(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let inbound = InboundRequest {
                        peer,
                        data: request,
                        responder: RequestResponder::new(channel, self.internal_tx.clone()),
                    };
                    let _ = self
                        .sink
                        .emit(NetworkEvent::InboundRequest(inbound), "inbound_request");
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending_requests.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(reply) = self.pending_requests.remove(&request_id) {
                    let error = match error {
                        request_response::OutboundFailure::Timeout => RequestError::Timeout(peer),
                        request_response::OutboundFailure::Io(e)
                            if e.kind() == std::io::ErrorKind::InvalidData
                                || e.kind() == std::io::ErrorKind::InvalidInput =>
                        {
                            RequestError::TooLarge
                        }
                        other => RequestError::Failed {
                            peer,
                            source: other,
                        },
                    };
                    let _ = reply.send(Err(error));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}
