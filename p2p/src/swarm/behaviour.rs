//! The composed libp2p behaviour of a meshmind node.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, allow_block_list, connection_limits, gossipsub, identify, kad, ping};

use super::sync_codec::SyncCodec;
use crate::config::NetworkConfig;
use crate::error::NetworkError;

/// Every protocol a node speaks on the control plane.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Connection caps.
    pub limits: connection_limits::Behaviour,
    /// Peers this node refuses to be connected to.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Exchange of listen addresses, protocols and versions.
    pub identify: identify::Behaviour,
    /// Liveness.
    pub ping: ping::Behaviour,
    /// Peer and provider discovery.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// Publish/subscribe with application validation.
    pub gossipsub: gossipsub::Behaviour,
    /// Request-response for ledger sync.
    pub sync: request_response::Behaviour<SyncCodec>,
}

/// The content id of a gossip message: blake3 of the topic, a zero byte and the body.
pub(crate) fn content_id(topic: &str, data: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(topic.as_bytes());
    hasher.update(&[0]);
    hasher.update(data);
    *hasher.finalize().as_bytes()
}

/// Score parameters for one topic: rejected messages cost their sender, quiet topics cost nothing.
pub(crate) fn topic_score_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        // Each rejected message adds one to a counter whose square is weighted here.
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.9,
        // Low-traffic topics (weights once per epoch) must not penalise honest mesh peers.
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        ..Default::default()
    }
}

fn protocol(name: String) -> Result<StreamProtocol, NetworkError> {
    StreamProtocol::try_from_owned(name).map_err(|e| NetworkError::library("protocol name", e))
}

impl Behaviour {
    /// Builds the behaviour for `config`, advertising the query plane's UDP port if there is one.
    pub(crate) fn new(
        keypair: &Keypair,
        config: &NetworkConfig,
        query_port: Option<u16>,
    ) -> Result<Self, NetworkError> {
        let peer_id = keypair.public().to_peer_id();

        let limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_established(Some(config.max_connections))
                .with_max_established_per_peer(Some(config.max_connections_per_peer))
                .with_max_pending_incoming(Some(config.max_pending_connections))
                .with_max_pending_outgoing(Some(config.max_pending_connections)),
        );

        let mut agent = format!("meshmind/{}", env!("CARGO_PKG_VERSION"));
        if let Some(port) = query_port {
            agent.push_str(&format!(" query={port}"));
        }
        let identify = identify::Behaviour::new(
            identify::Config::new(config.identify_protocol(), keypair.public())
                .with_agent_version(agent)
                .with_push_listen_addr_updates(true),
        );

        let ping = ping::Behaviour::new(ping::Config::new());

        let mut kad_config = kad::Config::new(protocol(config.kad_protocol())?);
        kad_config.set_query_timeout(Duration::from_secs(30));
        let kad =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);

        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .message_id_fn(|message: &gossipsub::Message| {
                gossipsub::MessageId::from(
                    content_id(message.topic.as_str(), &message.data).to_vec(),
                )
            })
            .max_transmit_size(config.max_gossip_bytes)
            .heartbeat_interval(config.gossip_heartbeat)
            .duplicate_cache_time(Duration::from_secs(120))
            .build()
            .map_err(|e| NetworkError::library("gossipsub", e))?;
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(keypair.clone()),
            gossip_config,
        )
        .map_err(|e| NetworkError::library("gossipsub", e))?;
        let mut score = gossipsub::PeerScoreParams::default();
        if config.local {
            // Every peer of a local testnet shares 127.0.0.1; without this they graylist each other.
            score.ip_colocation_factor_whitelist = HashSet::from([
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]);
        }
        gossipsub
            .with_peer_score(score, gossipsub::PeerScoreThresholds::default())
            .map_err(|e| NetworkError::library("gossipsub scoring", e))?;

        let sync = request_response::Behaviour::with_codec(
            SyncCodec::new(
                config.max_sync_request_bytes,
                config.max_sync_response_bytes,
            ),
            [(protocol(config.sync_protocol())?, ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(config.sync_timeout),
        );

        Ok(Self {
            limits,
            blocked: allow_block_list::Behaviour::default(),
            identify,
            ping,
            kad,
            gossipsub,
            sync,
        })
    }
}
