//! The chain as the finality gadget's application: snapshots are the values, the economy is the
//! state they move, and each snapshot names the validator set of the next epoch.

use meshmind_protocols::{PublicKey, v1};

use super::snapshot::{self, Expect};
use super::verify::{FinalizedError, check_finalized};
use crate::consensus::app::{App, Height, ValueInputs};
use crate::consensus::engine::Restored;
use crate::consensus::votes::ValueId;
use crate::ledger::{Head, LedgerError, Store};
use crate::state::State;

/// The chain after the ledger head: the economy, and the rules every snapshot follows.
#[derive(Debug, Clone)]
pub struct Chain {
    state: State,
    emission: u64,
}

impl Chain {
    /// A chain whose economy is `state`, minting `emission` per epoch.
    pub fn new(state: State, emission: u64) -> Self {
        Self { state, emission }
    }

    /// The chain after the head of `ledger`: its stored economy, or, when missing or unreadable (a
    /// ledger written before the economy existed), the economy rebuilt by replaying every
    /// finalized snapshot from `genesis`.
    pub fn load(ledger: &dyn Store, genesis: State, emission: u64) -> Result<Self, LedgerError> {
        let Some(head) = ledger.head()? else {
            return Ok(Self::new(genesis, emission));
        };
        if let Some(bytes) = ledger.economy()? {
            match State::from_bytes(&bytes) {
                Ok(state) if state.epoch == head.epoch + 1 => {
                    return Ok(Self::new(state, emission));
                }
                Ok(state) => {
                    tracing::warn!(
                        stored = state.epoch,
                        head = head.epoch,
                        "stored economy is not at the head; rebuilding"
                    )
                }
                Err(e) => tracing::warn!(error = %e, "stored economy unreadable; rebuilding"),
            }
        }
        Ok(Self::new(
            replay(ledger, genesis, emission, head)?,
            emission,
        ))
    }

    /// The economy after the head.
    pub fn state(&self) -> &State {
        &self.state
    }

    fn expect<'a>(&'a self, at: &Height<'a>) -> Expect<'a> {
        Expect {
            network_id: at.network_id,
            epoch: at.epoch,
            parent_hash: at.parent,
            members: at.members,
            state: &self.state,
            emission: self.emission,
        }
    }
}

/// What the engine resumes from in `ledger`: the head, the next validator set, the evidence, and
/// the write-ahead log of the epoch being decided.
pub fn restore(ledger: &dyn Store) -> Result<Restored, LedgerError> {
    let head = ledger.head()?;
    let next = head.map_or(0, |h| h.epoch + 1);
    Ok(Restored {
        head,
        next_validators: ledger.next_validators()?,
        evidence: ledger.evidence()?,
        wal: ledger.wal(next)?,
    })
}

/// The economy after `head`, replayed from `genesis` through every finalized snapshot.
fn replay(
    ledger: &dyn Store,
    genesis: State,
    emission: u64,
    head: Head,
) -> Result<State, LedgerError> {
    let mut state = genesis;
    // The set finalizing each epoch: the genesis's, then what each snapshot handed over to.
    let mut current = state.voting_set(&v1::ValidatorSet::default());
    for epoch in 0..=head.epoch {
        let Some(snapshot) = ledger.snapshot(epoch)? else {
            break;
        };
        for (i, tx) in snapshot.transactions.iter().enumerate() {
            if let Err(e) = state.apply(tx) {
                tracing::warn!(epoch, transaction = i, error = %e, "replaying the economy: transaction refused");
            }
        }
        // The same steps, in the same order, as building and checking a snapshot.
        state.end_epoch(&snapshot.weights, emission);
        for evidence in &snapshot.evidence {
            snapshot::punish(&mut state, evidence);
        }
        let next = state.hand_over(&current);
        if let Some(header) = &snapshot.header
            && header.state_root != state.root()
        {
            tracing::warn!(
                epoch,
                "replaying the economy: state root differs from the snapshot's"
            );
        }
        current = snapshot.next_validators.clone().unwrap_or(next);
    }
    Ok(state)
}

impl App for Chain {
    type Error = FinalizedError;

    fn value_id(&self, value: &v1::Snapshot) -> ValueId {
        snapshot::value_id(value)
    }

    fn build_value(
        &self,
        at: &Height<'_>,
        proposer: &PublicKey,
        inputs: ValueInputs,
    ) -> v1::Snapshot {
        snapshot::build(
            &self.expect(at),
            proposer,
            inputs.reveals,
            inputs.evidence,
            inputs.transactions,
        )
    }

    fn check_value(
        &self,
        at: &Height<'_>,
        value: &v1::Snapshot,
        round: u32,
    ) -> Result<(), Self::Error> {
        snapshot::check(value, &self.expect(at), round)?;
        Ok(())
    }

    fn commit(
        &mut self,
        at: &Height<'_>,
        finalized: &v1::FinalizedSnapshot,
    ) -> Result<Vec<u8>, Self::Error> {
        let (_, state) = check_finalized(finalized, &self.expect(at))?;
        if let Err(e) = state.check_invariants() {
            tracing::error!(epoch = at.epoch, error = %e, "the economy after this snapshot breaks an invariant");
        }
        let bytes = state.to_bytes();
        self.state = state;
        Ok(bytes)
    }

    fn next_validators(&self, value: &v1::Snapshot) -> Option<v1::ValidatorSet> {
        value.next_validators.clone()
    }

    fn accountable(&self, hotkey: &[u8]) -> bool {
        crate::state::Key::from_slice(hotkey).is_some_and(|key| self.state().bonded(&key))
    }
}
