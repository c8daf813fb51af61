//! What the node keeps, as a trait: the finalized chain with the application state after its head,
//! the consensus write-ahead log, and evidence. [`super::Ledger`] keeps it in RocksDB;
//! [`MemStore`] keeps it in memory, for simulations and engine tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use meshmind_protocols::{hash, v1};

use super::{Head, Ledger, LedgerError};

/// Storage of the chain and of consensus.
pub trait Store: Send + Sync {
    /// The newest finalized epoch and its header hash, if any.
    fn head(&self) -> Result<Option<Head>, LedgerError>;
    /// The finalized snapshot of `epoch`.
    fn snapshot(&self, epoch: u64) -> Result<Option<v1::Snapshot>, LedgerError>;
    /// The snapshot of `epoch` with its certificate.
    fn finalized(&self, epoch: u64) -> Result<Option<v1::FinalizedSnapshot>, LedgerError>;
    /// The validator set that finalizes the epoch after the head.
    fn next_validators(&self) -> Result<Option<v1::ValidatorSet>, LedgerError>;
    /// The application state after the head, as committed with it.
    fn economy(&self) -> Result<Option<Vec<u8>>, LedgerError>;
    /// All stored evidence, in hash order.
    fn evidence(&self) -> Result<Vec<v1::Evidence>, LedgerError>;
    /// The write-ahead log of `epoch`, in write order.
    fn wal(&self, epoch: u64) -> Result<Vec<v1::WalEntry>, LedgerError>;
    /// Appends to the write-ahead log of `epoch` (`sync`: on disk before returning).
    fn wal_append(&self, epoch: u64, entry: &v1::WalEntry, sync: bool) -> Result<(), LedgerError>;
    /// Stores a finalized snapshot extending the head, with the state after it, as the new head,
    /// and drops the logs up to its epoch, at once.
    fn commit(&self, finalized: &v1::FinalizedSnapshot, economy: &[u8]) -> Result<(), LedgerError>;
    /// Stores evidence; `false` if it was stored already.
    fn add_evidence(&self, evidence: &v1::Evidence) -> Result<bool, LedgerError>;
    /// Deletes stored evidence (what is not stored is skipped).
    fn remove_evidence(&self, evidence: &[v1::Evidence]) -> Result<(), LedgerError>;
}

/// Checks that `finalized` extends `head`; returns its parts and the head it makes.
pub(super) fn next_head(
    head: Option<Head>,
    finalized: &v1::FinalizedSnapshot,
) -> Result<(&v1::Snapshot, &v1::Certificate, Head), LedgerError> {
    let (snapshot, certificate) = match (&finalized.snapshot, &finalized.certificate) {
        (Some(s), Some(c)) => (s, c),
        _ => {
            return Err(LedgerError::NotNext {
                epoch: 0,
                reason: "snapshot or certificate missing".into(),
            });
        }
    };
    let header = snapshot.header.as_ref().ok_or(LedgerError::NotNext {
        epoch: certificate.epoch,
        reason: "snapshot without header".into(),
    })?;
    let epoch = header.epoch;
    let expected = head.map_or(0, |h| h.epoch + 1);
    if epoch != expected {
        return Err(LedgerError::NotNext {
            epoch,
            reason: format!("the next epoch is {expected}"),
        });
    }
    if let Some(head) = head
        && header.parent_hash != head.hash
    {
        return Err(LedgerError::NotNext {
            epoch,
            reason: "parent hash is not the head's hash".into(),
        });
    }
    let next = Head {
        epoch,
        hash: *hash(header).as_bytes(),
    };
    Ok((snapshot, certificate, next))
}

impl Store for Ledger {
    fn head(&self) -> Result<Option<Head>, LedgerError> {
        Ledger::head(self)
    }
    fn snapshot(&self, epoch: u64) -> Result<Option<v1::Snapshot>, LedgerError> {
        Ledger::snapshot(self, epoch)
    }
    fn finalized(&self, epoch: u64) -> Result<Option<v1::FinalizedSnapshot>, LedgerError> {
        Ledger::finalized(self, epoch)
    }
    fn next_validators(&self) -> Result<Option<v1::ValidatorSet>, LedgerError> {
        Ledger::next_validators(self)
    }
    fn economy(&self) -> Result<Option<Vec<u8>>, LedgerError> {
        Ledger::economy(self)
    }
    fn evidence(&self) -> Result<Vec<v1::Evidence>, LedgerError> {
        Ledger::evidence(self)
    }
    fn wal(&self, epoch: u64) -> Result<Vec<v1::WalEntry>, LedgerError> {
        Ledger::wal(self, epoch)
    }
    fn wal_append(&self, epoch: u64, entry: &v1::WalEntry, sync: bool) -> Result<(), LedgerError> {
        Ledger::wal_append(self, epoch, entry, sync)
    }
    fn commit(&self, finalized: &v1::FinalizedSnapshot, economy: &[u8]) -> Result<(), LedgerError> {
        Ledger::commit(self, finalized, economy)
    }
    fn add_evidence(&self, evidence: &v1::Evidence) -> Result<bool, LedgerError> {
        Ledger::add_evidence(self, evidence)
    }
    fn remove_evidence(&self, evidence: &[v1::Evidence]) -> Result<(), LedgerError> {
        Ledger::remove_evidence(self, evidence)
    }
}

/// A [`Store`] in memory: what a process keeps until it exits.
#[derive(Debug, Default)]
pub struct MemStore {
    inner: Mutex<Memory>,
}

#[derive(Debug, Default)]
struct Memory {
    head: Option<Head>,
    finalized: BTreeMap<u64, v1::FinalizedSnapshot>,
    next_validators: Option<v1::ValidatorSet>,
    economy: Option<Vec<u8>>,
    wal: BTreeMap<u64, Vec<v1::WalEntry>>,
    /// WAL entries appended without a sync since the last synced write, by epoch, oldest first:
    /// what a power failure may lose.
    unsynced: Vec<u64>,
    evidence: BTreeMap<[u8; 32], v1::Evidence>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loses the WAL entries written without a sync since the last synced write, as a power
    /// failure may; returns how many were lost.
    pub fn lose_unsynced(&self) -> usize {
        let mut memory = self.memory();
        let unsynced = std::mem::take(&mut memory.unsynced);
        for epoch in unsynced.iter().rev() {
            if let Some(entries) = memory.wal.get_mut(epoch) {
                entries.pop();
            }
        }
        unsynced.len()
    }
}

impl Store for MemStore {
    fn head(&self) -> Result<Option<Head>, LedgerError> {
        Ok(self.memory().head)
    }
    fn snapshot(&self, epoch: u64) -> Result<Option<v1::Snapshot>, LedgerError> {
        Ok(self
            .memory()
            .finalized
            .get(&epoch)
            .and_then(|f| f.snapshot.clone()))
    }
    fn finalized(&self, epoch: u64) -> Result<Option<v1::FinalizedSnapshot>, LedgerError> {
        Ok(self.memory().finalized.get(&epoch).cloned())
    }
    fn next_validators(&self) -> Result<Option<v1::ValidatorSet>, LedgerError> {
        Ok(self.memory().next_validators.clone())
    }
    fn economy(&self) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.memory().economy.clone())
    }
    fn evidence(&self) -> Result<Vec<v1::Evidence>, LedgerError> {
        Ok(self.memory().evidence.values().cloned().collect())
    }
    fn wal(&self, epoch: u64) -> Result<Vec<v1::WalEntry>, LedgerError> {
        Ok(self.memory().wal.get(&epoch).cloned().unwrap_or_default())
    }
    fn wal_append(&self, epoch: u64, entry: &v1::WalEntry, sync: bool) -> Result<(), LedgerError> {
        let mut memory = self.memory();
        memory.wal.entry(epoch).or_default().push(entry.clone());
        if sync {
            // A synced write makes everything before it durable too.
            memory.unsynced.clear();
        } else {
            memory.unsynced.push(epoch);
        }
        Ok(())
    }
    fn commit(&self, finalized: &v1::FinalizedSnapshot, economy: &[u8]) -> Result<(), LedgerError> {
        let mut memory = self.memory();
        let (snapshot, certificate, head) = next_head(memory.head, finalized)?;
        if let Some(next) = &snapshot.next_validators {
            memory.next_validators = Some(next.clone());
        }
        memory.finalized.insert(
            head.epoch,
            v1::FinalizedSnapshot {
                snapshot: Some(snapshot.clone()),
                certificate: Some(certificate.clone()),
            },
        );
        memory.economy = Some(economy.to_vec());
        memory.wal.retain(|&epoch, _| epoch > head.epoch);
        // The commit is a synced batch.
        memory.unsynced.clear();
        memory.head = Some(head);
        Ok(())
    }
    fn add_evidence(&self, evidence: &v1::Evidence) -> Result<bool, LedgerError> {
        let key = *hash(evidence).as_bytes();
        Ok(self
            .memory()
            .evidence
            .insert(key, evidence.clone())
            .is_none())
    }
    fn remove_evidence(&self, evidence: &[v1::Evidence]) -> Result<(), LedgerError> {
        let mut memory = self.memory();
        for item in evidence {
            memory.evidence.remove(hash(item).as_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finalized(epoch: u64, parent: [u8; 32]) -> v1::FinalizedSnapshot {
        v1::FinalizedSnapshot {
            snapshot: Some(v1::Snapshot {
                header: Some(v1::SnapshotHeader {
                    epoch,
                    parent_hash: parent.to_vec(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            certificate: Some(v1::Certificate {
                epoch,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn memory_and_disk_agree_on_what_extends_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Ledger::open(dir.path()).unwrap();
        let memory = MemStore::new();
        for store in [&disk as &dyn Store, &memory] {
            let entry = v1::WalEntry {
                kind: Some(v1::wal_entry::Kind::Start(0)),
            };
            store.wal_append(0, &entry, true).unwrap();
            assert!(matches!(
                store.commit(&finalized(1, [0; 32]), b"s"),
                Err(LedgerError::NotNext { epoch: 1, .. })
            ));
            store.commit(&finalized(0, [0; 32]), b"state").unwrap();
            let head = store.head().unwrap().expect("a head");
            assert_eq!(head.epoch, 0);
            assert!(store.wal(0).unwrap().is_empty(), "the epoch's log is gone");
            assert_eq!(store.economy().unwrap().as_deref(), Some(&b"state"[..]));
            assert!(matches!(
                store.commit(&finalized(1, [7; 32]), b"s"),
                Err(LedgerError::NotNext { epoch: 1, .. })
            ));
            store.commit(&finalized(1, head.hash), b"s").unwrap();
            assert_eq!(store.finalized(1).unwrap(), Some(finalized(1, head.hash)));
            let evidence = v1::Evidence::default();
            assert!(store.add_evidence(&evidence).unwrap());
            assert!(!store.add_evidence(&evidence).unwrap());
            assert_eq!(store.evidence().unwrap().len(), 1);
            store
                .remove_evidence(std::slice::from_ref(&evidence))
                .unwrap();
            assert!(store.evidence().unwrap().is_empty());
            store.remove_evidence(&[evidence]).unwrap();
        }
        assert_eq!(disk.head().unwrap(), memory.head().unwrap());
    }
}
