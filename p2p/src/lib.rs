//! The embeddable meshmind network: libp2p for discovery, gossip and ledger sync (the control plane),
//! and a bare-QUIC endpoint for queries (the query plane).
//!
//! One task owns the libp2p swarm; callers drive it through a clonable [`NetworkHandle`] and read what
//! happens from one [`NetworkEvents`] stream. The crate knows nothing of miners, validators or
//! consensus: it moves authenticated bytes between peers, finds peers and providers, and protects
//! itself (size caps, connection limits, per-origin gossip rate limits, peer scoring).
//!
//! ```no_run
//! use std::time::Duration;
//! use meshmind_p2p::{Network, NetworkConfig, NetworkEvent};
//! use meshmind_protocols::Keypair;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let (network, mut events) = Network::spawn(NetworkConfig::local("demo"), &Keypair::generate()?)?;
//! network.subscribe("chat").await?;
//! while let Some(event) = events.recv().await {
//!     if let NetworkEvent::Gossip(message) = event {
//!         println!("{}: {}", message.topic, String::from_utf8_lossy(&message.data));
//!         message.validation.accept();
//!     }
//! }
//! network.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Run `cargo run -p meshmind-p2p --example chat` in two terminals (the second with the first's
//! printed address) for a mesh you can type into.

#![warn(missing_docs, unreachable_pub)]

pub mod config;
pub mod error;
pub mod event;
mod handle;
mod metrics;
pub mod query;
pub mod rate_limit;
mod swarm;

pub use config::{NetworkConfig, TransportMode};
pub use error::{NetworkError, QueryError, QueryErrorCode, RequestError, Source};
pub use event::{
    GossipMessage, InboundQuery, InboundRequest, NetworkEvent, NetworkEvents, RequestResponder,
    Validation, Verdict,
};
pub use handle::{Network, NetworkBuilder, NetworkHandle};
pub use libp2p::{Multiaddr, PeerId, multiaddr};
pub use meshmind_protocols::{Keypair, PublicKey};
pub use query::{QueryResponder, QueryStream};
pub use rate_limit::RateLimiter;
