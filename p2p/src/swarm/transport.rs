//! Control-plane transports: QUIC with TCP fallback, TCP only, or in-process memory.

use std::time::Duration;

use futures::future::Either;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{Boxed, MemoryTransport, Transport};
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::{PeerId, noise, quic, tcp, yamux};

use crate::config::TransportMode;
use crate::error::NetworkError;

/// How long the security and multiplexer handshakes of a new connection may take.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(20);

/// Builds the boxed transport for `mode`.
pub(crate) fn build(
    keypair: &Keypair,
    mode: TransportMode,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, NetworkError> {
    let noise = || noise::Config::new(keypair).map_err(|e| NetworkError::transport("noise", e));
    Ok(match mode {
        TransportMode::Memory => MemoryTransport::default()
            .upgrade(Version::V1)
            .authenticate(noise()?)
            .multiplex(yamux::Config::default())
            .timeout(UPGRADE_TIMEOUT)
            .boxed(),
        TransportMode::Tcp => tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
            .upgrade(Version::V1)
            .authenticate(noise()?)
            .multiplex(yamux::Config::default())
            .timeout(UPGRADE_TIMEOUT)
            .boxed(),
        TransportMode::QuicTcp => {
            let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                .upgrade(Version::V1)
                .authenticate(noise()?)
                .multiplex(yamux::Config::default())
                .timeout(UPGRADE_TIMEOUT);
            let quic = quic::tokio::Transport::new(quic::Config::new(keypair))
                .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection)));
            quic.or_transport(tcp)
                .map(|either, _| match either {
                    Either::Left(out) => out,
                    Either::Right((peer, muxer)) => (peer, StreamMuxerBox::new(muxer)),
                })
                .boxed()
        }
    })
}
