//! Local meshmind testnets: generate keys and a genesis, launch nodes, inject faults, check scenarios.
//!
//! This crate is being built; the launcher arrives with the testnet work.

pub use meshmind_node as node;
