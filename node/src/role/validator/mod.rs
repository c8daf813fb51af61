//! The validator role: metagraph, challenges, scoring, routing and weights.

pub mod gossip;
pub mod metagraph;
pub mod service;
pub mod weights;

pub use metagraph::{Metagraph, MinerEntry};
pub use service::{Validator, ValidatorConfig, challenge};
