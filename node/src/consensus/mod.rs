//! The BFT finality gadget: a pure Tendermint state machine ([`core`]) that decides one value per
//! height (epoch), with stake-weighted votes.
//!
//! The core does no I/O and reads no clock: it takes [`core::Input`]s (proposals, votes, fired
//! timeouts) and returns [`core::Output`]s (messages to broadcast, timeouts to schedule, decisions,
//! evidence). A driver performs the outputs; seeded simulations drive many cores in one process.

pub mod app;
pub mod certificate;
pub mod core;
pub mod engine;
pub mod evidence;
pub mod members;
pub mod valset;
pub mod votes;
pub mod wire;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod sim;
