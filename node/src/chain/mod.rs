//! The chain: the application the finality gadget agrees on. Snapshots of an epoch (weights,
//! transactions, evidence, Yuma results, the economy's state root, the next validator set), how a
//! proposer builds one and every node checks one, and the replay of a finalized ledger from genesis.

pub mod app;
pub mod driver;
pub mod service;
pub mod snapshot;
pub mod sources;
pub mod sync;
pub mod verify;
