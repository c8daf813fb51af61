//! meshmind node roles (miner, validator, observer), consensus, ledger and operator tooling.
//!
//! The roles, consensus engine and ledger arrive with their own work; today the crate holds the
//! operator's key commands and Yuma consensus.

pub mod api;
pub mod cli;
pub mod config;
pub mod consensus;
pub mod genesis;
pub mod http_client;
pub mod role;
pub mod runtime;
pub mod scoring;
pub mod yuma;

pub use meshmind_p2p as p2p;
pub use meshmind_protocols as protocols;
