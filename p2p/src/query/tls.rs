//! TLS for the query plane: libp2p's certificate scheme, so a connection proves the same `PeerId` as
//! the mesh, with the network named in the application protocol.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use libp2p::identity::Keypair;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};

use crate::error::NetworkError;

/// Server name sent in the TLS handshake; identity is checked by peer id, not by name.
pub(super) const SERVER_NAME: &str = "l";

fn transport_config(max_streams: u32) -> Result<quinn::TransportConfig, NetworkError> {
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(max_streams.into());
    transport.max_concurrent_uni_streams(0u32.into());
    let idle = quinn::IdleTimeout::try_from(Duration::from_secs(30))
        .map_err(|e| NetworkError::transport("query plane idle timeout", e))?;
    transport.max_idle_timeout(Some(idle));
    transport.keep_alive_interval(Some(Duration::from_secs(5)));
    Ok(transport)
}

/// Client configuration that accepts only `peer`'s key.
pub(super) fn client_config(
    keypair: &Keypair,
    peer: PeerId,
    alpn: &[u8],
) -> Result<quinn::ClientConfig, NetworkError> {
    let mut tls = libp2p_tls::make_client_config(keypair, Some(peer))
        .map_err(|e| NetworkError::transport("tls client config", e))?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    let crypto = QuicClientConfig::try_from(tls)
        .map_err(|e| NetworkError::transport("quic client config", e))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config(0)?));
    Ok(config)
}

/// Binds the query-plane endpoint, which both serves and dials.
pub(crate) fn endpoint(
    keypair: &Keypair,
    addr: SocketAddr,
    alpn: &[u8],
    max_streams_per_connection: u32,
) -> Result<quinn::Endpoint, NetworkError> {
    let mut tls = libp2p_tls::make_server_config(keypair)
        .map_err(|e| NetworkError::transport("tls server config", e))?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    let crypto = QuicServerConfig::try_from(tls)
        .map_err(|e| NetworkError::transport("quic server config", e))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport_config(max_streams_per_connection)?));
    quinn::Endpoint::server(server, addr)
        .map_err(|e| NetworkError::transport(format!("query plane bind {addr}"), e))
}

/// The peer id a connection's certificate proves.
pub(super) fn remote_peer(connection: &quinn::Connection) -> Option<PeerId> {
    let identity = connection.peer_identity()?;
    let certificates = identity
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    let first = certificates.first()?;
    libp2p_tls::certificate::parse(first)
        .ok()
        .map(|c| c.peer_id())
}
