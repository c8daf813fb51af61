//! Checking finalized snapshots: one against the epoch it must extend, and a whole ledger from
//! genesis.

use meshmind_protocols::v1;

use super::snapshot::{self, Expect};
use crate::consensus::certificate;
use crate::consensus::members::Members;
use crate::ledger::{Ledger, LedgerError};
use crate::state::State;

/// What a finalized snapshot must extend.
#[derive(Debug, Clone, Copy)]
pub struct Extends<'a> {
    /// The network.
    pub network_id: [u8; 32],
    /// Its epoch.
    pub epoch: u64,
    /// The previous epoch's hash (the network id for epoch 0).
    pub parent: [u8; 32],
    /// The validators that finalize it.
    pub members: &'a Members,
    /// The economy after the previous epoch.
    pub state: &'a State,
    /// Emission of one epoch.
    pub emission: u64,
}

/// Checks that `finalized` extends `at`: the snapshot is valid for the round its certificate
/// names, and the certificate proves it. Returns its hash and the economy after it.
pub fn check_finalized(
    finalized: &v1::FinalizedSnapshot,
    at: &Extends<'_>,
) -> Result<([u8; 32], State), String> {
    let Extends {
        network_id,
        epoch,
        parent,
        members,
        ..
    } = *at;
    let snapshot = finalized.snapshot.as_ref().ok_or("snapshot missing")?;
    let cert = finalized
        .certificate
        .as_ref()
        .ok_or("certificate missing")?;
    let expect = Expect {
        network_id,
        epoch,
        parent_hash: parent,
        members,
        state: at.state,
        emission: at.emission,
    };
    let (value, state) =
        snapshot::check(snapshot, &expect, cert.round).map_err(|e| e.to_string())?;
    certificate::verify(cert, network_id, members, epoch, &value).map_err(|e| e.to_string())?;
    Ok((value, state))
}

/// Why a ledger does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Reading failed or stored bytes are corrupt.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// An epoch is missing or does not check.
    #[error("epoch {epoch}: {reason}")]
    Epoch {
        /// The epoch.
        epoch: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Walks every finalized epoch from genesis, checking each snapshot and certificate against the
/// validator set handed over by the epoch before and replaying the economy from `state` (the
/// genesis state); returns the number of epochs checked.
pub fn verify_ledger(
    ledger: &Ledger,
    network_id: [u8; 32],
    genesis: &Members,
    state: State,
    emission: u64,
) -> Result<u64, VerifyError> {
    let Some(head) = ledger.head()? else {
        return Ok(0);
    };
    let mut members = genesis.clone();
    let mut parent = network_id;
    let mut state = state;
    for epoch in 0..=head.epoch {
        let finalized = ledger.finalized(epoch)?.ok_or(VerifyError::Epoch {
            epoch,
            reason: "missing below the head".into(),
        })?;
        let at = Extends {
            network_id,
            epoch,
            parent,
            members: &members,
            state: &state,
            emission,
        };
        (parent, state) = check_finalized(&finalized, &at)
            .map_err(|reason| VerifyError::Epoch { epoch, reason })?;
        if let Some(next) = finalized.snapshot.and_then(|s| s.next_validators) {
            members = Members::new(next).map_err(|e| VerifyError::Epoch {
                epoch,
                reason: e.to_string(),
            })?;
        }
    }
    if parent != head.hash {
        return Err(VerifyError::Epoch {
            epoch: head.epoch,
            reason: "the head hash is not the last snapshot's hash".into(),
        });
    }
    Ok(head.epoch + 1)
}
