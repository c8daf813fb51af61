//! The RocksDB ledger: finalized snapshots with their certificates, the consensus write-ahead log,
//! evidence, and the head, each in its own column family; and the [`Store`] trait it implements with
//! an in-memory twin.

mod store;

pub use store::{MemStore, Store};

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use meshmind_protocols::{Wire, decode, hash, v1};
use prost::Message;
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode, Options,
    WriteBatch, WriteOptions,
};

/// The on-disk layout version this build reads and writes (2: the economy is stored, and its root
/// hashed, in its canonical protobuf encoding; 3: that economy records finalizers, unbonding and
/// tenure, so its root differs; a ledger of an earlier version belongs to another chain).
pub const SCHEMA_VERSION: u32 = 4;

/// Column family of finalized snapshots, by epoch.
pub const CF_SNAPSHOTS: &str = "snapshots";
/// Column family of certificates, by epoch.
pub const CF_CERTS: &str = "certs";
/// Column family of derived state (the validator set after the head).
pub const CF_STATE: &str = "state";
/// Column family of the consensus write-ahead log, by (epoch, sequence).
pub const CF_WAL: &str = "wal";
/// Column family of evidence, by hash.
pub const CF_EVIDENCE: &str = "evidence";
/// Column family of metadata: schema version and head.
pub const CF_META: &str = "meta";

const FAMILIES: [&str; 6] = [
    CF_SNAPSHOTS,
    CF_CERTS,
    CF_STATE,
    CF_WAL,
    CF_EVIDENCE,
    CF_META,
];
const KEY_SCHEMA: &[u8] = b"schema_version";
const KEY_HEAD: &[u8] = b"head";
const KEY_NEXT_VALSET: &[u8] = b"next_valset";
const KEY_ECONOMY: &[u8] = b"economy";

/// What went wrong in the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// RocksDB failed.
    #[error("ledger {path}: {source}")]
    Db {
        /// The database directory.
        path: PathBuf,
        /// The RocksDB error.
        source: rocksdb::Error,
    },
    /// The database was written by a different layout version.
    #[error("ledger {path}: schema version {found}, this build reads {SCHEMA_VERSION}")]
    Schema {
        /// The database directory.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// Stored bytes do not decode or do not fit together.
    #[error("ledger corrupt in column family {cf}{}: {reason}", epoch.map(|e| format!(" at epoch {e}")).unwrap_or_default())]
    Corrupt {
        /// Column family.
        cf: &'static str,
        /// The epoch concerned, if any.
        epoch: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// A commit that does not extend the head.
    #[error("cannot commit epoch {epoch}: {reason}")]
    NotNext {
        /// The epoch offered.
        epoch: u64,
        /// Why it does not fit.
        reason: String,
    },
}

/// The newest finalized epoch and its header hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Epoch.
    pub epoch: u64,
    /// blake3 hash of the epoch's snapshot header.
    pub hash: [u8; 32],
}

/// The ledger of one node.
pub struct Ledger {
    db: rocksdb::DB,
    path: PathBuf,
    next_seq: Mutex<u64>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("path", &self.path).finish()
    }
}

fn epoch_key(epoch: u64) -> [u8; 8] {
    epoch.to_be_bytes()
}

fn wal_key(epoch: u64, seq: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&epoch.to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_compression_type(DBCompressionType::Lz4);
    opts
}

impl Ledger {
    /// Opens (or creates) the ledger in `path` for reading and writing.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let opts = options();
        let families = FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, options()));
        let db = rocksdb::DB::open_cf_descriptors(&opts, path, families).map_err(|source| {
            LedgerError::Db {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let ledger = Self::wrap(db, path)?;
        if ledger.get(CF_META, KEY_SCHEMA)?.is_none() {
            let mut write = WriteOptions::default();
            write.set_sync(true);
            ledger
                .db
                .put_cf_opt(
                    ledger.cf(CF_META)?,
                    KEY_SCHEMA,
                    SCHEMA_VERSION.to_be_bytes(),
                    &write,
                )
                .map_err(|e| ledger.db_error(e))?;
        }
        Ok(ledger)
    }

    /// Opens an existing ledger read-only, alongside a running node.
    pub fn open_read_only(path: &Path) -> Result<Self, LedgerError> {
        let db = rocksdb::DB::open_cf_for_read_only(&options(), path, FAMILIES, false).map_err(
            |source| LedgerError::Db {
                path: path.to_path_buf(),
                source,
            },
        )?;
        Self::wrap(db, path)
    }

    fn wrap(db: rocksdb::DB, path: &Path) -> Result<Self, LedgerError> {
        let ledger = Self {
            db,
            path: path.to_path_buf(),
            next_seq: Mutex::new(0),
        };
        if let Some(bytes) = ledger.get(CF_META, KEY_SCHEMA)? {
            let found = <[u8; 4]>::try_from(bytes.as_slice())
                .map(u32::from_be_bytes)
                .map_err(|_| LedgerError::Corrupt {
                    cf: CF_META,
                    epoch: None,
                    reason: format!("schema version is {} bytes, not 4", bytes.len()),
                })?;
            if found != SCHEMA_VERSION {
                return Err(LedgerError::Schema {
                    path: path.to_path_buf(),
                    found,
                });
            }
        }
        let last = ledger
            .db
            .iterator_cf(ledger.cf(CF_WAL)?, IteratorMode::End)
            .next()
            .transpose()
            .map_err(|e| ledger.db_error(e))?;
        if let Some((key, _)) = last {
            let seq = key
                .get(8..16)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| LedgerError::Corrupt {
                    cf: CF_WAL,
                    epoch: None,
                    reason: format!("key of {} bytes, not 16", key.len()),
                })?;
            *ledger.next_seq.lock().unwrap_or_else(|p| p.into_inner()) = seq + 1;
        }
        Ok(ledger)
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db_error(&self, source: rocksdb::Error) -> LedgerError {
        LedgerError::Db {
            path: self.path.clone(),
            source,
        }
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, LedgerError> {
        self.db.cf_handle(name).ok_or(LedgerError::Corrupt {
            cf: name,
            epoch: None,
            reason: "column family missing".into(),
        })
    }

    fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        self.db
            .get_cf(self.cf(cf)?, key)
            .map_err(|e| self.db_error(e))
    }

    fn read<M: Wire + Default>(
        &self,
        cf: &'static str,
        epoch: u64,
    ) -> Result<Option<M>, LedgerError> {
        self.get(cf, &epoch_key(epoch))?
            .map(|bytes| {
                decode::<M>(&bytes).map_err(|e| LedgerError::Corrupt {
                    cf,
                    epoch: Some(epoch),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// The newest finalized epoch, if any.
    pub fn head(&self) -> Result<Option<Head>, LedgerError> {
        let Some(bytes) = self.get(CF_META, KEY_HEAD)? else {
            return Ok(None);
        };
        let bytes = <[u8; 40]>::try_from(bytes.as_slice()).map_err(|_| LedgerError::Corrupt {
            cf: CF_META,
            epoch: None,
            reason: format!("head is {} bytes, not 40", bytes.len()),
        })?;
        let mut epoch = [0u8; 8];
        epoch.copy_from_slice(&bytes[..8]);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[8..]);
        Ok(Some(Head {
            epoch: u64::from_be_bytes(epoch),
            hash,
        }))
    }

    /// The next epoch to finalize: one past the head, or 0.
    pub fn next_epoch(&self) -> Result<u64, LedgerError> {
        Ok(self.head()?.map_or(0, |h| h.epoch + 1))
    }

    /// The finalized snapshot of `epoch`.
    pub fn snapshot(&self, epoch: u64) -> Result<Option<v1::Snapshot>, LedgerError> {
        self.read(CF_SNAPSHOTS, epoch)
    }

    /// The certificate of `epoch`.
    pub fn certificate(&self, epoch: u64) -> Result<Option<v1::Certificate>, LedgerError> {
        self.read(CF_CERTS, epoch)
    }

    /// The snapshot of `epoch` with its certificate; corrupt if only one of them is stored.
    pub fn finalized(&self, epoch: u64) -> Result<Option<v1::FinalizedSnapshot>, LedgerError> {
        match (self.snapshot(epoch)?, self.certificate(epoch)?) {
            (None, None) => Ok(None),
            (Some(snapshot), Some(certificate)) => Ok(Some(v1::FinalizedSnapshot {
                snapshot: Some(snapshot),
                certificate: Some(certificate),
            })),
            (snapshot, _) => Err(LedgerError::Corrupt {
                cf: if snapshot.is_some() {
                    CF_CERTS
                } else {
                    CF_SNAPSHOTS
                },
                epoch: Some(epoch),
                reason: "snapshot and certificate are not stored together".into(),
            }),
        }
    }

    /// The validator set that finalizes the epoch after the head (`None` before the first commit).
    pub fn next_validators(&self) -> Result<Option<v1::ValidatorSet>, LedgerError> {
        self.get(CF_STATE, KEY_NEXT_VALSET)?
            .map(|bytes| {
                decode(&bytes).map_err(|e| LedgerError::Corrupt {
                    cf: CF_STATE,
                    epoch: None,
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// The stored economy after the head (`None` before the first commit).
    pub fn economy(&self) -> Result<Option<Vec<u8>>, LedgerError> {
        self.get(CF_STATE, KEY_ECONOMY)
    }

    /// Stores a finalized snapshot as the new head with the economy after it, and drops the epoch's
    /// WAL, in one synced batch. The caller has verified the certificate; this checks that the
    /// epoch extends the head.
    pub fn commit(
        &self,
        finalized: &v1::FinalizedSnapshot,
        economy: &[u8],
    ) -> Result<(), LedgerError> {
        let (snapshot, certificate, next) = store::next_head(self.head()?, finalized)?;
        let epoch = next.epoch;
        let mut head_bytes = epoch.to_be_bytes().to_vec();
        head_bytes.extend_from_slice(&next.hash);
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_SNAPSHOTS)?,
            epoch_key(epoch),
            snapshot.encode_to_vec(),
        );
        batch.put_cf(
            self.cf(CF_CERTS)?,
            epoch_key(epoch),
            certificate.encode_to_vec(),
        );
        if let Some(next) = &snapshot.next_validators {
            batch.put_cf(self.cf(CF_STATE)?, KEY_NEXT_VALSET, next.encode_to_vec());
        }
        batch.put_cf(self.cf(CF_STATE)?, KEY_ECONOMY, economy);
        batch.put_cf(self.cf(CF_META)?, KEY_HEAD, head_bytes);
        batch.delete_range_cf(
            self.cf(CF_WAL)?,
            wal_key(0, 0),
            wal_key(epoch.saturating_add(1), 0),
        );
        let mut write = WriteOptions::default();
        write.set_sync(true);
        self.db
            .write_opt(batch, &write)
            .map_err(|e| self.db_error(e))
    }

    /// Appends an entry to the WAL of `epoch`; `sync` waits until it is on disk (with everything before).
    pub fn wal_append(
        &self,
        epoch: u64,
        entry: &v1::WalEntry,
        sync: bool,
    ) -> Result<(), LedgerError> {
        let seq = {
            let mut next = self.next_seq.lock().unwrap_or_else(|p| p.into_inner());
            let seq = *next;
            *next += 1;
            seq
        };
        let mut write = WriteOptions::default();
        write.set_sync(sync);
        self.db
            .put_cf_opt(
                self.cf(CF_WAL)?,
                wal_key(epoch, seq),
                entry.encode_to_vec(),
                &write,
            )
            .map_err(|e| self.db_error(e))
    }

    /// Writes raw bytes as the next WAL record of `epoch` (for tests of corrupt logs).
    #[cfg(test)]
    pub fn wal_append_raw(&self, epoch: u64, bytes: &[u8]) -> Result<(), LedgerError> {
        let seq = {
            let mut next = self.next_seq.lock().unwrap_or_else(|p| p.into_inner());
            let seq = *next;
            *next += 1;
            seq
        };
        self.db
            .put_cf(self.cf(CF_WAL)?, wal_key(epoch, seq), bytes)
            .map_err(|e| self.db_error(e))
    }

    /// The WAL of `epoch` in write order. A record that does not decode is tolerated only as the
    /// last one (a torn tail, dropped); anywhere else it is corruption.
    pub fn wal(&self, epoch: u64) -> Result<Vec<v1::WalEntry>, LedgerError> {
        let start = wal_key(epoch, 0);
        let mut records = Vec::new();
        for item in self.db.iterator_cf(
            self.cf(CF_WAL)?,
            IteratorMode::From(&start, Direction::Forward),
        ) {
            let (key, value) = item.map_err(|e| self.db_error(e))?;
            if key.get(..8) != Some(&epoch.to_be_bytes()[..]) {
                break;
            }
            records.push(value);
        }
        let last = records.len().saturating_sub(1);
        let mut entries = Vec::with_capacity(records.len());
        for (index, bytes) in records.iter().enumerate() {
            match decode::<v1::WalEntry>(bytes) {
                Ok(entry) => entries.push(entry),
                Err(e) if index == last => {
                    tracing::warn!(epoch, error = %e, "dropping a torn record at the WAL tail");
                }
                Err(e) => {
                    return Err(LedgerError::Corrupt {
                        cf: CF_WAL,
                        epoch: Some(epoch),
                        reason: format!("record {index} of {}: {e}", records.len()),
                    });
                }
            }
        }
        Ok(entries)
    }

    /// Stores evidence; false if it was already stored.
    pub fn add_evidence(&self, evidence: &v1::Evidence) -> Result<bool, LedgerError> {
        let key = hash(evidence);
        if self.get(CF_EVIDENCE, key.as_bytes())?.is_some() {
            return Ok(false);
        }
        let mut write = WriteOptions::default();
        write.set_sync(true);
        self.db
            .put_cf_opt(
                self.cf(CF_EVIDENCE)?,
                key.as_bytes(),
                evidence.encode_to_vec(),
                &write,
            )
            .map_err(|e| self.db_error(e))?;
        Ok(true)
    }

    /// Deletes stored evidence (what is not stored is skipped), in one write.
    pub fn remove_evidence(&self, evidence: &[v1::Evidence]) -> Result<(), LedgerError> {
        let mut batch = WriteBatch::default();
        for item in evidence {
            batch.delete_cf(self.cf(CF_EVIDENCE)?, hash(item).as_bytes());
        }
        self.db.write(batch).map_err(|e| self.db_error(e))
    }

    /// All stored evidence, in hash order.
    pub fn evidence(&self) -> Result<Vec<v1::Evidence>, LedgerError> {
        let mut all = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_EVIDENCE)?, IteratorMode::Start)
        {
            let (_, value) = item.map_err(|e| self.db_error(e))?;
            all.push(decode(&value).map_err(|e| LedgerError::Corrupt {
                cf: CF_EVIDENCE,
                epoch: None,
                reason: e.to_string(),
            })?);
        }
        Ok(all)
    }

    /// Overwrites a stored value (for tests of corrupt data).
    #[cfg(test)]
    pub fn put_raw(&self, cf: &'static str, epoch: u64, bytes: &[u8]) -> Result<(), LedgerError> {
        self.db
            .put_cf(self.cf(cf)?, epoch_key(epoch), bytes)
            .map_err(|e| self.db_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(epoch: u64) -> v1::WalEntry {
        v1::WalEntry {
            kind: Some(v1::wal_entry::Kind::Start(epoch)),
        }
    }

    #[test]
    fn a_torn_wal_tail_is_dropped_and_corruption_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        ledger.wal_append(5, &start(5), true).unwrap();
        ledger.wal_append(5, &start(5), false).unwrap();
        ledger.wal_append_raw(5, &[0xff, 0xff, 0x01]).unwrap();
        ledger.wal_append(6, &start(6), false).unwrap();
        assert_eq!(ledger.wal(5).unwrap().len(), 2, "torn tail dropped");
        assert_eq!(ledger.wal(6).unwrap().len(), 1, "epochs are kept apart");
        drop(ledger);
        // Reopened, sequence numbers continue after the last record; a record appended after
        // the bad one puts it in the middle, where it is corruption.
        let ledger = Ledger::open(dir.path()).unwrap();
        assert_eq!(ledger.wal(5).unwrap().len(), 2);
        ledger.wal_append(5, &start(5), false).unwrap();
        let err = ledger.wal(5).unwrap_err().to_string();
        assert!(err.contains("column family wal at epoch 5"), "{err}");
    }

    #[test]
    fn corrupt_records_name_the_epoch_and_column_family() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        ledger.put_raw(CF_CERTS, 3, b"not a certificate").unwrap();
        let err = ledger.certificate(3).unwrap_err().to_string();
        assert!(err.contains("column family certs at epoch 3"), "{err}");
        ledger.put_raw(CF_SNAPSHOTS, 4, &[]).unwrap();
        let err = ledger.finalized(4).unwrap_err().to_string();
        assert!(err.contains("at epoch 4"), "{err}");
    }

    #[test]
    fn a_different_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        ledger
            .db
            .put_cf(ledger.cf(CF_META).unwrap(), KEY_SCHEMA, 99u32.to_be_bytes())
            .unwrap();
        drop(ledger);
        let err = Ledger::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, LedgerError::Schema { found: 99, .. }),
            "{err}"
        );
    }

    #[test]
    fn commits_must_extend_the_head_and_drop_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let header = |epoch: u64, parent: Vec<u8>| v1::SnapshotHeader {
            epoch,
            parent_hash: parent,
            ..Default::default()
        };
        let finalized = |h: v1::SnapshotHeader| v1::FinalizedSnapshot {
            snapshot: Some(v1::Snapshot {
                header: Some(h.clone()),
                ..Default::default()
            }),
            certificate: Some(v1::Certificate {
                epoch: h.epoch,
                ..Default::default()
            }),
        };
        let err = ledger
            .commit(&finalized(header(1, vec![])), b"{}")
            .unwrap_err();
        assert!(err.to_string().contains("the next epoch is 0"), "{err}");
        ledger.wal_append(0, &start(0), false).unwrap();
        ledger
            .commit(&finalized(header(0, vec![1; 32])), b"{}")
            .unwrap();
        assert_eq!(
            ledger.economy().unwrap().as_deref(),
            Some(&b"{}"[..]),
            "stored with the head"
        );
        assert!(
            ledger.wal(0).unwrap().is_empty(),
            "the decided epoch's WAL is gone"
        );
        let head = ledger.head().unwrap().unwrap();
        assert_eq!(head.epoch, 0);
        let err = ledger
            .commit(&finalized(header(1, vec![9; 32])), b"{}")
            .unwrap_err();
        assert!(err.to_string().contains("parent hash"), "{err}");
        ledger
            .commit(&finalized(header(1, head.hash.to_vec())), b"{}")
            .unwrap();
        assert_eq!(ledger.next_epoch().unwrap(), 2);
    }
}
