//! Network configuration, with documented defaults; serde-friendly for config files.

use std::net::SocketAddr;
use std::time::Duration;

use std::net::{IpAddr, Ipv4Addr};

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use serde::{Deserialize, Serialize};

use crate::error::NetworkError;

/// Which transports the control plane uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportMode {
    /// QUIC v1 first, TCP + noise + yamux as fallback (the default).
    #[default]
    QuicTcp,
    /// TCP + noise + yamux only, for networks that block UDP.
    Tcp,
    /// In-process memory transport (`/memory/<n>` addresses), for tests and simulations.
    Memory,
}

/// Everything the network layer needs to know; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// The network id as it appears in protocol and topic names (`/meshmind/<network>/kad/1`);
    /// peers of different networks never exchange messages. Default `"dev"`.
    pub network: String,
    /// Control-plane transports. Default QUIC with TCP fallback.
    pub transport: TransportMode,
    /// Control-plane listen addresses. Default `/ip4/0.0.0.0/udp/7400/quic-v1` and
    /// `/ip4/0.0.0.0/tcp/7400`.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start, each with a `/p2p/<peer id>` suffix. Default none.
    pub bootnodes: Vec<Multiaddr>,
    /// Dial again every bootnode not connected, this often; at the same period, dial peers from
    /// the Kademlia table while fewer than `target_peers` are connected. Default 5 s.
    #[serde(with = "millis")]
    pub bootnode_redial: Duration,
    /// Connected peers to keep, dialling known peers from the Kademlia table when short, so the
    /// gossip mesh does not stay a star around the bootnodes. Default 16.
    pub target_peers: usize,
    /// UDP address of the query plane, or none to run without one. Default `0.0.0.0:7401`.
    pub query_listen: Option<SocketAddr>,
    /// Local-testnet mode: keep loopback and private addresses learned from peers, and exempt
    /// loopback from gossipsub's same-IP penalty. Default off.
    pub local: bool,
    /// Answer Kademlia queries (server mode); bootnodes and validators must. Default on.
    pub kad_server: bool,
    /// Close a connection after this long without any stream. Default 60 s.
    #[serde(with = "millis")]
    pub idle_connection_timeout: Duration,
    /// Most established control-plane connections. Default 256.
    pub max_connections: u32,
    /// Most established control-plane connections per peer. Default 2.
    pub max_connections_per_peer: u32,
    /// Most connections being set up at once, each way. Default 64.
    pub max_pending_connections: u32,
    /// Largest gossip message, in bytes; larger ones are dropped by receivers. Default 1 MiB.
    pub max_gossip_bytes: usize,
    /// Gossipsub heartbeat. Default 700 ms.
    #[serde(with = "millis")]
    pub gossip_heartbeat: Duration,
    /// Gossip messages accepted per second from one origin before the rest are ignored. Default 200.
    pub gossip_rate_per_origin: u32,
    /// Burst allowance on top of the per-origin rate. Default 400.
    pub gossip_burst_per_origin: u32,
    /// Gossip messages accepted per second from one connected peer, whatever origins they name
    /// (origins are free keys; peers are connections), counted apart for priority topics.
    /// Default 1000.
    pub gossip_rate_per_peer: u32,
    /// Burst allowance on top of the per-peer rate. Default 2000.
    pub gossip_burst_per_peer: u32,
    /// Application topics (names after the `meshmind/<network>/` prefix) whose messages travel to
    /// the application on a queue of their own, read first, so floods on other topics cannot
    /// crowd them out. Default none.
    pub priority_topics: Vec<String>,
    /// Capacity of the priority topics' queue. Default 1024.
    pub priority_queue: usize,
    /// Largest sync-plane request, in bytes. Default 2 MiB (consensus batches travel on it).
    pub max_sync_request_bytes: usize,
    /// Largest sync-plane response, in bytes. Default 64 MiB.
    pub max_sync_response_bytes: usize,
    /// Sync-plane request timeout. Default 10 s.
    #[serde(with = "millis")]
    pub sync_timeout: Duration,
    /// Largest query-plane request, in bytes. Default 1 MiB + 64 KiB.
    pub max_query_bytes: usize,
    /// Largest single query-plane response frame, in bytes. Default 4 MiB.
    pub max_query_frame_bytes: usize,
    /// Concurrent inbound query streams one peer may hold open. Default 64.
    pub max_query_streams_per_peer: u32,
    /// Query-plane connections one peer may hold to us. Default 2.
    pub max_query_connections_per_peer: usize,
    /// Capacity of the event queue to the application; events beyond it are dropped and counted.
    /// Default 4096.
    pub event_queue: usize,
}

/// Whether `ip` is reachable from the internet: not loopback, private, link-local, unique-local,
/// unspecified or broadcast.
pub(crate) fn public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            // 100.64.0.0/10: carrier-grade NAT, shared address space.
            let shared = ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64;
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || shared)
        }
        // An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is what it maps to.
        IpAddr::V6(ip) if ip.to_ipv4_mapped().is_some() => ip
            .to_ipv4_mapped()
            .is_some_and(|v4| public_ip(IpAddr::V4(v4))),
        IpAddr::V6(ip) => {
            let unique_local = (ip.segments()[0] & 0xfe00) == 0xfc00;
            let link_local = (ip.segments()[0] & 0xffc0) == 0xfe80;
            !(ip.is_loopback() || ip.is_unspecified() || unique_local || link_local)
        }
    }
}

/// `/ip4/<ip>/udp/<port>/quic-v1`.
fn quic_addr(ip: Ipv4Addr, port: u16) -> Multiaddr {
    Multiaddr::empty()
        .with(Protocol::Ip4(ip))
        .with(Protocol::Udp(port))
        .with(Protocol::QuicV1)
}

/// `/ip4/<ip>/tcp/<port>`.
fn tcp_addr(ip: Ipv4Addr, port: u16) -> Multiaddr {
    Multiaddr::empty()
        .with(Protocol::Ip4(ip))
        .with(Protocol::Tcp(port))
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            network: "dev".into(),
            transport: TransportMode::QuicTcp,
            listen: vec![
                quic_addr(Ipv4Addr::UNSPECIFIED, 7400),
                tcp_addr(Ipv4Addr::UNSPECIFIED, 7400),
            ],
            bootnodes: Vec::new(),
            bootnode_redial: Duration::from_secs(5),
            target_peers: 16,
            query_listen: Some(SocketAddr::from(([0, 0, 0, 0], 7401))),
            local: false,
            kad_server: true,
            idle_connection_timeout: Duration::from_secs(60),
            max_connections: 256,
            max_connections_per_peer: 2,
            max_pending_connections: 64,
            max_gossip_bytes: 1 << 20,
            gossip_heartbeat: Duration::from_millis(700),
            gossip_rate_per_origin: 200,
            gossip_burst_per_origin: 400,
            gossip_rate_per_peer: 1000,
            gossip_burst_per_peer: 2000,
            priority_topics: Vec::new(),
            priority_queue: 1024,
            max_sync_request_bytes: 2 << 20,
            max_sync_response_bytes: 64 << 20,
            sync_timeout: Duration::from_secs(10),
            max_query_bytes: (1 << 20) + (64 << 10),
            max_query_frame_bytes: 4 << 20,
            max_query_streams_per_peer: 64,
            max_query_connections_per_peer: 2,
            event_queue: 4096,
        }
    }
}

impl NetworkConfig {
    /// A configuration for a node on loopback with OS-assigned ports, in local mode.
    pub fn local(network: &str) -> Self {
        Self {
            network: network.into(),
            listen: vec![
                quic_addr(Ipv4Addr::LOCALHOST, 0),
                tcp_addr(Ipv4Addr::LOCALHOST, 0),
            ],
            query_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            local: true,
            ..Self::default()
        }
    }

    /// A configuration for an in-process node on the memory transport, without a query plane.
    pub fn memory(network: &str) -> Self {
        Self {
            network: network.into(),
            transport: TransportMode::Memory,
            listen: vec![Multiaddr::empty().with(Protocol::Memory(0))],
            query_listen: None,
            local: true,
            ..Self::default()
        }
    }

    /// Checks the values that cannot be checked by their types.
    pub fn check(&self) -> Result<(), NetworkError> {
        let bad = |what: &str| Err(NetworkError::Config(what.to_string()));
        if self.network.is_empty()
            || self.network.len() > 80
            || !self
                .network
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return bad("network: 1-80 characters from a-z A-Z 0-9 - _ .");
        }
        if self.listen.is_empty() {
            return bad("listen: at least one address");
        }
        if self.local {
            let public = self.listen.iter().find(|addr| {
                let ip = match addr.iter().next() {
                    Some(Protocol::Ip4(ip)) => IpAddr::V4(ip),
                    Some(Protocol::Ip6(ip)) => IpAddr::V6(ip),
                    _ => return false,
                };
                // Every interface may include a public one.
                ip.is_unspecified() || public_ip(ip)
            });
            if let Some(addr) = public {
                return Err(NetworkError::Config(format!(
                    "local = true (local-testnet mode: private addresses from peers are trusted, \
                     loopback is exempt from gossip's same-address penalty) with the public listen \
                     address {addr} (or every interface); set local = false for a public node, or \
                     listen on loopback or a private address"
                )));
            }
        }
        if self.event_queue == 0 || self.priority_queue == 0 {
            return bad("event_queue and priority_queue: must be at least 1");
        }
        if self.max_gossip_bytes < 1024 {
            return bad("max_gossip_bytes: must be at least 1024");
        }
        if self.gossip_rate_per_origin == 0
            || self.gossip_burst_per_origin == 0
            || self.gossip_rate_per_peer == 0
            || self.gossip_burst_per_peer == 0
        {
            return bad("gossip rates and bursts (per origin and per peer): must be at least 1");
        }
        if self.max_query_streams_per_peer == 0 || self.max_query_connections_per_peer == 0 {
            return bad(
                "max_query_streams_per_peer and max_query_connections_per_peer: at least 1",
            );
        }
        Ok(())
    }

    /// The Kademlia protocol name of this network.
    pub fn kad_protocol(&self) -> String {
        format!("/meshmind/{}/kad/1", self.network)
    }

    /// The ledger-sync protocol name of this network.
    pub fn sync_protocol(&self) -> String {
        format!("/meshmind/{}/sync/1", self.network)
    }

    /// The identify protocol version string of this network.
    pub fn identify_protocol(&self) -> String {
        format!("/meshmind/{}/1", self.network)
    }

    /// The TLS application protocol (ALPN) of this network's query plane. Version 2: queries and
    /// answers carry a media type, which signatures and query hashes cover, so a version-1 peer
    /// is refused at the handshake rather than failing every signature check.
    pub fn query_alpn(&self) -> Vec<u8> {
        format!("meshmind/{}/query/2", self.network).into_bytes()
    }

    /// The full name of an application topic on this network: `meshmind/<network>/<topic>`.
    pub fn topic(&self, topic: &str) -> String {
        format!("meshmind/{}/{topic}", self.network)
    }
}

/// Serde for durations as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(value.as_millis().min(u128::from(u64::MAX)) as u64)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_partial_files_fill_in_defaults() {
        let config = NetworkConfig::default();
        let json = serde_json::to_string(&config).expect("serialize");
        let back: NetworkConfig = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, config);
        let partial: NetworkConfig = serde_json::from_str(
            r#"{"network": "testnet-7", "local": true, "sync_timeout": 2500,
                "listen": ["/ip4/127.0.0.1/tcp/0"]}"#,
        )
        .expect("partial config");
        assert_eq!(partial.network, "testnet-7");
        assert!(partial.local);
        assert_eq!(partial.sync_timeout, Duration::from_millis(2500));
        assert_eq!(partial.max_gossip_bytes, config.max_gossip_bytes);
        partial.check().expect("valid");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let err = serde_json::from_str::<NetworkConfig>(r#"{"netwrok": "x"}"#).expect_err("typo");
        assert!(err.to_string().contains("netwrok"), "{err}");
        let mut config = NetworkConfig::local("ok");
        config.network = "has spaces".into();
        assert!(config.check().is_err());
        let mut config = NetworkConfig::local("ok");
        config.event_queue = 0;
        assert!(config.check().is_err());
        // Local-testnet mode is refused on a public address, allowed on private ones.
        let mut config = NetworkConfig::local("ok");
        config.listen = vec!["/ip4/203.0.113.7/tcp/7400".parse().expect("address")];
        let err = config.check().expect_err("local mode on a public address");
        assert!(err.to_string().contains("local = false"), "{err}");
        config.listen = vec!["/ip4/10.200.0.3/tcp/7400".parse().expect("address")];
        config.check().expect("a private address is fine");
        config.local = false;
        config.listen = vec!["/ip4/203.0.113.7/tcp/7400".parse().expect("address")];
        config.check().expect("a public node");
        // What a peer may not pass off as public: mapped loopback, shared address space.
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
        ] {
            assert!(!public_ip(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "203.0.113.7",
            "::ffff:203.0.113.7",
            "100.128.0.1",
            "2001:db8::1",
        ] {
            assert!(public_ip(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn names_carry_the_network() {
        let config = NetworkConfig::local("abc");
        assert_eq!(config.kad_protocol(), "/meshmind/abc/kad/1");
        assert_eq!(config.sync_protocol(), "/meshmind/abc/sync/1");
        assert_eq!(config.topic("caps/1"), "meshmind/abc/caps/1");
        assert_eq!(config.query_alpn(), b"meshmind/abc/query/2".to_vec());
    }
}
