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
    /// By (coldkey, nonce): the transaction and what it costs its signer.
    waiting: BTreeMap<(Key, u64), (v1::Transaction, u64)>,
    capacity: usize,
}

/// Why the pool did not take a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// It cannot apply now (malformed, or refused by the current state).
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
    /// The nonce before it is neither used nor waiting, so it cannot apply after what waits.
    #[error("nonce {got} leaves a gap after the account's next nonce {next}")]
    Gap {
        /// The account's next nonce.
        next: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The account's waiting transactions and this one cost more than its balance.
    #[error("the waiting transactions and this one need {needed}, the balance is {available}")]
    Unaffordable {
        /// What all of them cost.
        needed: u64,
        /// The balance.
        available: u64,
    },
    /// The pool is full; try again after the next snapshot.
    #[error("the pool holds {0} transactions already")]
    Full(usize),
}

impl PoolError {
    /// Whether the sender broke a rule no honest relay would (as opposed to a transaction that
    /// raced a commit or found the pool full).
    pub fn penalise(&self) -> bool {
        matches!(
            self,
            PoolError::Invalid(
                TxError::Malformed(_)
                    | TxError::WrongNetwork
                    | TxError::BadSignature
                    | TxError::NoHotkeyConsent
            )
        )
    }
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

    /// Takes in `tx` if it can apply after what its account has waiting (its nonce follows, the
    /// state takes it, the balance covers all of them with their fees); `Ok(false)` if that
    /// nonce is already waiting.
    pub fn insert(&mut self, tx: v1::Transaction, state: &State) -> Result<bool, PoolError> {
        let coldkey = Key::from_slice(&tx.coldkey)
            .ok_or_else(|| TxError::Malformed("coldkey is not 32 bytes".into()))?;
        if self.waiting.contains_key(&(coldkey, tx.nonce)) {
            return Ok(false);
        }
        let account = state.account(&coldkey);
        let next = account.nonce;
        if tx.nonce > next.saturating_add(MAX_NONCE_AHEAD) {
            return Err(PoolError::TooFarAhead {
                next,
                got: tx.nonce,
            });
        }
        if tx.nonce > next && !self.waiting.contains_key(&(coldkey, tx.nonce - 1)) {
            return Err(PoolError::Gap {
                next,
                got: tx.nonce,
            });
        }
        state.precheck(&tx)?;
        let cost = state.cost(&coldkey, &tx)?;
        let needed = self
            .waiting
            .range((coldkey, next)..(coldkey, tx.nonce))
            .fold(cost, |sum, (_, (_, c))| sum.saturating_add(*c));
        if needed > account.balance {
            return Err(PoolError::Unaffordable {
                needed,
                available: account.balance,
            });
        }
        if self.waiting.len() >= self.capacity {
            return Err(PoolError::Full(self.capacity));
        }
        self.waiting.insert((coldkey, tx.nonce), (tx, cost));
        Ok(true)
    }

    /// Every waiting transaction, by coldkey and nonce.
    pub fn candidates(&self) -> Vec<v1::Transaction> {
        self.waiting.values().map(|(tx, _)| tx.clone()).collect()
    }

    /// After a commit: drops what `state` used up, and every transaction that can no longer
    /// apply (its price rose, the balance fell, a nonce before it is gone) with all that follow
    /// it from the same account. Returns how many were evicted without being used.
    pub fn prune(&mut self, state: &State) -> usize {
        let mut evicted = 0;
        let mut kept = BTreeMap::new();
        // The account being walked: (coldkey, its next nonce in the state, the next nonce a
        // kept transaction must have, the balance not yet spoken for).
        let mut account: Option<(Key, u64, u64, u64)> = None;
        for ((coldkey, nonce), (tx, _)) in std::mem::take(&mut self.waiting) {
            if account.is_none_or(|(k, ..)| k != coldkey) {
                let a = state.account(&coldkey);
                account = Some((coldkey, a.nonce, a.nonce, a.balance));
            }
            let Some((_, used_below, next, left)) = account.as_mut() else {
                continue;
            };
            if nonce < *used_below {
                continue;
            }
            match state.cost(&coldkey, &tx) {
                Ok(cost) if nonce == *next && cost <= *left => {
                    *next += 1;
                    *left -= cost;
                    kept.insert((coldkey, nonce), (tx, cost));
                }
                _ => evicted += 1,
            }
        }
        self.waiting = kept;
        evicted
    }
}
