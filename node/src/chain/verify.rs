//! Checking finalized snapshots: one against the epoch it must extend, and a whole ledger from
//! genesis.

use meshmind_protocols::{NetworkId, v1};

use super::snapshot::{self, Expect, SnapshotError};
use crate::consensus::certificate::{self, CertificateError};
use crate::consensus::members::Members;
use crate::ledger::{LedgerError, Store};
use crate::state::State;

/// Why a finalized snapshot does not extend its epoch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FinalizedError {
    /// The snapshot or its certificate is absent.
    #[error("{0} missing")]
    Missing(&'static str),
    /// The snapshot is not valid for the epoch.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The certificate does not prove it.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
}

/// Checks that `finalized` is the snapshot `expect` describes: valid for the round its certificate
/// names, and proven by the certificate. Returns its hash and the economy after it.
pub fn check_finalized(
    finalized: &v1::FinalizedSnapshot,
    expect: &Expect<'_>,
) -> Result<([u8; 32], State), FinalizedError> {
    let snapshot = finalized
        .snapshot
        .as_ref()
        .ok_or(FinalizedError::Missing("snapshot"))?;
    let cert = finalized
        .certificate
        .as_ref()
        .ok_or(FinalizedError::Missing("certificate"))?;
    let (value, state) = snapshot::check(snapshot, expect, cert.round)?;
    certificate::verify(
        cert,
        expect.network_id,
        expect.members,
        expect.epoch,
        &value,
    )?;
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
    ledger: &dyn Store,
    network_id: NetworkId,
    genesis: &Members,
    state: State,
    emission: u64,
) -> Result<u64, VerifyError> {
    let Some(head) = ledger.head()? else {
        return Ok(0);
    };
    let mut members = genesis.clone();
    let mut parent = *network_id.as_bytes();
    let mut state = state;
    for epoch in 0..=head.epoch {
        let finalized = ledger.finalized(epoch)?.ok_or(VerifyError::Epoch {
            epoch,
            reason: "missing below the head".into(),
        })?;
        let expect = Expect {
            network_id,
            epoch,
            parent_hash: parent,
            members: &members,
            state: &state,
            emission,
        };
        (parent, state) = check_finalized(&finalized, &expect).map_err(|e| VerifyError::Epoch {
            epoch,
            reason: e.to_string(),
        })?;
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
