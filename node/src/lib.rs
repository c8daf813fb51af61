//! meshmind node roles (miner, validator, observer), consensus, ledger and operator tooling.
//!
//! Miners serve queries, validators score them, route client queries, publish weights and finalize
//! one snapshot per epoch with a BFT gadget into a RocksDB ledger; observers follow the ledger.

pub mod answer;
pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod consensus;
pub mod genesis;
pub mod http_client;
pub mod ledger;
pub mod role;
pub mod runtime;
pub mod scoring;
pub mod state;
pub mod wallet;
pub mod yuma;

pub use meshmind_p2p as p2p;
pub use meshmind_protocols as protocols;
