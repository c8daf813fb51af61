//! The roles a node plays.

pub mod miner;
pub mod validator;
