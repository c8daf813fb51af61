//! Checking finalized snapshots: one against the epoch it must extend, and a whole ledger from
//! genesis.

use meshmind_protocols::v1;

use super::snapshot::{self, Expect};
use super::{Ledger, LedgerError};
use crate::consensus::certificate;
use crate::consensus::members::Members;

/// Checks that `finalized` is epoch `epoch` extending `parent`, finalized by `members`: the snapshot
/// is valid for the round its certificate names, and the certificate proves it. Returns its hash.
pub fn check_finalized(
    finalized: &v1::FinalizedSnapshot,
    network_id: [u8; 32],
    epoch: u64,
    parent: [u8; 32],
    members: &Members,
) -> Result<[u8; 32], String> {
    let snapshot = finalized.snapshot.as_ref().ok_or("snapshot missing")?;
    let cert = finalized
        .certificate
        .as_ref()
        .ok_or("certificate missing")?;
    let next = snapshot
        .next_validators
        .as_ref()
        .ok_or("next validators missing")?;
    let expect = Expect {
        network_id,
        epoch,
        parent_hash: parent,
        members,
        next,
    };
    let value = snapshot::check(snapshot, &expect, cert.round).map_err(|e| e.to_string())?;
    certificate::verify(cert, network_id, members, epoch, &value).map_err(|e| e.to_string())?;
    Ok(value)
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
/// validator set handed over by the epoch before; returns the number of epochs checked.
pub fn verify_ledger(
    ledger: &Ledger,
    network_id: [u8; 32],
    genesis: &Members,
) -> Result<u64, VerifyError> {
    let Some(head) = ledger.head()? else {
        return Ok(0);
    };
    let mut members = genesis.clone();
    let mut parent = network_id;
    for epoch in 0..=head.epoch {
        let finalized = ledger.finalized(epoch)?.ok_or(VerifyError::Epoch {
            epoch,
            reason: "missing below the head".into(),
        })?;
        parent = check_finalized(&finalized, network_id, epoch, parent, &members)
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
