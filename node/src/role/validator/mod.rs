//! The validator role: metagraph, challenges, scoring, routing and weights.

pub mod epoch;
pub mod gossip;
pub mod hedge;
pub mod metagraph;
pub mod node;
pub mod service;
pub mod weights;

pub use metagraph::{Metagraph, MinerEntry};
pub use node::ValidatorService;
pub use service::{Validator, ValidatorConfig};
