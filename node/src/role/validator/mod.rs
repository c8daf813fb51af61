//! The validator role: metagraph, challenges, scoring, routing and weights.

mod challenger;
pub mod epoch;
pub mod gossip;
pub mod hedge;
pub mod metagraph;
pub mod node;
mod router;
pub mod scorer;
pub mod service;
pub mod set;
pub mod weights;

pub use metagraph::{Metagraph, MinerEntry};
pub use node::ValidatorService;
pub use service::{Client, Validator, ValidatorConfig};
pub use set::Validators;
