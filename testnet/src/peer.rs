//! A throwaway peer of a local testnet, as the hostile peer and the load tool join it: a fresh
//! key, loopback addresses, no DHT service, and nobody answering what arrives.

use meshmind_p2p::{Multiaddr, Network, NetworkConfig, NetworkError, NetworkHandle};
use meshmind_protocols::Keypair;

/// Why the peer could not start.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// No key could be made (the OS random source failed).
    #[error("a key for the peer: {0}")]
    Key(String),
    /// The network layer failed.
    #[error(transparent)]
    Network(#[from] NetworkError),
}

/// Starts a peer on the network tagged `tag`, dialling `bootnode` if given; whatever the
/// network delivers to it is dropped unanswered.
pub fn spawn(tag: &str, bootnode: Option<Multiaddr>) -> Result<NetworkHandle, PeerError> {
    let mut config = NetworkConfig::local(tag);
    config.bootnodes = bootnode.into_iter().collect();
    config.kad_server = false;
    let keypair = Keypair::generate().map_err(|e| PeerError::Key(e.to_string()))?;
    let (network, mut events) = Network::builder(config, &keypair).spawn()?;
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    Ok(network)
}
