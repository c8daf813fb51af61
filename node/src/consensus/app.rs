//! The boundary between the finality gadget and what it finalizes: the engine decides on opaque
//! values (one snapshot per height) and asks the application to build, check and apply them.

use meshmind_protocols::{NetworkId, PublicKey, v1};

use super::members::Members;
use super::votes::ValueId;

/// Where a value is decided: the height and what it chains to.
#[derive(Debug, Clone, Copy)]
pub struct Height<'a> {
    /// The network.
    pub network_id: NetworkId,
    /// The height (epoch).
    pub epoch: u64,
    /// The previous height's value id (the network id for height 0).
    pub parent: [u8; 32],
    /// The validators that decide it.
    pub members: &'a Members,
}

/// What a proposer builds its value from: what this node holds when asked.
#[derive(Debug, Clone, Default)]
pub struct ValueInputs {
    /// Weight reveals of the previous epoch's commitments.
    pub reveals: Vec<v1::WeightReveal>,
    /// Evidence not yet included in a finalized value.
    pub evidence: Vec<v1::Evidence>,
    /// Candidate transactions, in the pool's order.
    pub transactions: Vec<v1::Transaction>,
}

/// The application behind the engine (the chain): builds, checks and applies values.
pub trait App {
    /// Why a value is refused.
    type Error: std::error::Error;

    /// The id votes and certificates name for `value`.
    fn value_id(&self, value: &v1::Snapshot) -> ValueId;

    /// The value `proposer` offers at `at`.
    fn build_value(
        &self,
        at: &Height<'_>,
        proposer: &PublicKey,
        inputs: ValueInputs,
    ) -> v1::Snapshot;

    /// Checks a value proposed at `at` in `round` (rules may loosen in later rounds).
    fn check_value(
        &self,
        at: &Height<'_>,
        value: &v1::Snapshot,
        round: u32,
    ) -> Result<(), Self::Error>;

    /// Checks a finalized value (snapshot and certificate) at `at` and applies it; returns the
    /// application state after it, encoded, to store beside it.
    fn commit(
        &mut self,
        at: &Height<'_>,
        finalized: &v1::FinalizedSnapshot,
    ) -> Result<Vec<u8>, Self::Error>;

    /// The validator set that decides the height after `value`, if it names one (else the set
    /// stays).
    fn next_validators(&self, value: &v1::Snapshot) -> Option<v1::ValidatorSet>;

    /// Whether `hotkey` answers for faults beyond the current set (a finalizer whose stake is
    /// still bonded after it left). None by default.
    fn accountable(&self, hotkey: &[u8]) -> bool {
        let _ = hotkey;
        false
    }
}
