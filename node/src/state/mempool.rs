//! Transactions waiting for a snapshot: checked on arrival, bounded in total and per account,
//! kept in the order a snapshot carries them, dropped once their nonce is used.

use std::collections::BTreeMap;

use meshmind_protocols::v1;

use super::{Key, State, TxError};

/// How far past an account's next nonce a waiting transaction may be.
pub const MAX_NONCE_AHEAD: u64 = 16;

/// Transactions waiting for a snapshot.
#[derive(Debug, Clone)]
pub struct Mempool {
    waiting: BTreeMap<(Key, u64), v1::Transaction>,
    capacity: usize,
}

/// Why the pool did not take a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// It is not valid against the current state.
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// Its nonce is too far past the account's next one.
    #[error("nonce {got} is more than {MAX_NONCE_AHEAD} past the account's next nonce {next}")]
    TooFarAhead {
        /// The account's next nonce.
        next: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The pool is full.
    #[error("the pool holds {0} transactions already")]
    Full(usize),
}

impl Mempool {
    /// An empty pool of at most `capacity` transactions.
    pub fn new(capacity: usize) -> Self {
        Self {
            waiting: BTreeMap::new(),
            capacity,
        }
    }

    /// Number waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Takes in `tx` if it checks against `state`; `Ok(false)` if it is already here.
    pub fn insert(&mut self, tx: v1::Transaction, state: &State) -> Result<bool, PoolError> {
        state.precheck(&tx)?;
        let coldkey = Key::from_slice(&tx.coldkey)
            .ok_or_else(|| TxError::Malformed("coldkey is not 32 bytes".into()))?;
        let next = state.account(&coldkey).nonce;
        if tx.nonce > next.saturating_add(MAX_NONCE_AHEAD) {
            return Err(PoolError::TooFarAhead {
                next,
                got: tx.nonce,
            });
        }
        if self.waiting.contains_key(&(coldkey, tx.nonce)) {
            return Ok(false);
        }
        if self.waiting.len() >= self.capacity {
            return Err(PoolError::Full(self.capacity));
        }
        self.waiting.insert((coldkey, tx.nonce), tx);
        Ok(true)
    }

    /// Every waiting transaction, by coldkey and nonce.
    pub fn candidates(&self) -> Vec<v1::Transaction> {
        self.waiting.values().cloned().collect()
    }

    /// Drops what `state` has used up (nonces below each account's next one).
    pub fn prune(&mut self, state: &State) {
        self.waiting
            .retain(|(coldkey, nonce), _| *nonce >= state.account(coldkey).nonce);
    }
}
