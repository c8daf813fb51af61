//! The roles a node plays.

pub mod miner;
