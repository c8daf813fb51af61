//! The embeddable meshmind network layer: discovery, gossip, ledger sync and the query plane.
//!
//! This crate is being built; today it re-exports the identity types every network peer needs.

pub use meshmind_protocols::{Keypair, PeerId, PublicKey};
