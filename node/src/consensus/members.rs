//! The validator set as it travels and is signed: hotkeys and stakes, its hash, and the index of
//! each member in the core's [`ValidatorSet`].

use std::collections::HashMap;

use meshmind_protocols::{PublicKey, hash, v1};

use super::valset::{ValidatorIndex, ValidatorSet};
use crate::genesis::Genesis;

/// Why a validator set is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembersError {
    /// A hotkey is not a valid public key.
    #[error("validators[{index}].hotkey: {reason}")]
    BadKey {
        /// Position in the set.
        index: usize,
        /// Why.
        reason: String,
    },
    /// Hotkeys are not strictly increasing.
    #[error("validators[{index}]: hotkeys must be sorted and distinct")]
    Unsorted {
        /// Position in the set.
        index: usize,
    },
    /// No stake at all.
    #[error("the validator set holds no stake")]
    NoStake,
}

/// A checked validator set.
#[derive(Debug, Clone)]
pub struct Members {
    wire: v1::ValidatorSet,
    keys: Vec<PublicKey>,
    index: HashMap<[u8; 32], ValidatorIndex>,
    set: ValidatorSet,
    hash: [u8; 32],
}

impl Members {
    /// Checks a wire validator set: keys valid, sorted and distinct, some stake.
    pub fn new(wire: v1::ValidatorSet) -> Result<Self, MembersError> {
        let mut keys = Vec::with_capacity(wire.validators.len());
        let mut index = HashMap::new();
        for (i, entry) in wire.validators.iter().enumerate() {
            let key = PublicKey::from_bytes(&entry.hotkey).map_err(|e| MembersError::BadKey {
                index: i,
                reason: e.to_string(),
            })?;
            if keys.last().is_some_and(|last: &PublicKey| *last >= key) {
                return Err(MembersError::Unsorted { index: i });
            }
            index.insert(key.to_bytes(), i);
            keys.push(key);
        }
        let set = ValidatorSet::new(wire.validators.iter().map(|v| v.stake).collect());
        if set.total() == 0 {
            return Err(MembersError::NoStake);
        }
        let hash = *hash(&wire).as_bytes();
        Ok(Self {
            wire,
            keys,
            index,
            set,
            hash,
        })
    }

    /// The genesis validators, sorted by hotkey.
    pub fn from_genesis(genesis: &Genesis) -> Result<Self, MembersError> {
        let mut validators: Vec<v1::ValidatorEntry> = genesis
            .message
            .validators
            .iter()
            .map(|v| v1::ValidatorEntry {
                hotkey: v.hotkey.clone(),
                coldkey: v.coldkey.clone(),
                stake: v.stake,
            })
            .collect();
        validators.sort_by(|a, b| a.hotkey.cmp(&b.hotkey));
        Self::new(v1::ValidatorSet { validators })
    }

    /// The wire form.
    pub fn wire(&self) -> &v1::ValidatorSet {
        &self.wire
    }

    /// The set as genesis validators (the inverse of [`Self::from_genesis`]).
    pub fn genesis_validators(&self) -> Vec<v1::GenesisValidator> {
        self.wire
            .validators
            .iter()
            .map(|v| v1::GenesisValidator {
                hotkey: v.hotkey.clone(),
                coldkey: v.coldkey.clone(),
                stake: v.stake,
            })
            .collect()
    }

    /// The set's hash, which votes and certificates name.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// Stakes by index, for the core.
    pub fn set(&self) -> &ValidatorSet {
        &self.set
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The index of a hotkey given as bytes.
    pub fn index_of(&self, hotkey: &[u8]) -> Option<ValidatorIndex> {
        let key: [u8; 32] = hotkey.try_into().ok()?;
        self.index.get(&key).copied()
    }

    /// The hotkey at `index`.
    pub fn key(&self, index: ValidatorIndex) -> Option<&PublicKey> {
        self.keys.get(index)
    }

    /// The members' hotkeys, sorted.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// The members' peer ids (a node's peer id is its hotkey).
    pub fn peer_ids(&self) -> std::collections::HashSet<meshmind_p2p::PeerId> {
        self.keys.iter().map(PublicKey::peer_id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshmind_protocols::Keypair;

    fn entry(seed: u8, stake: u64) -> v1::ValidatorEntry {
        v1::ValidatorEntry {
            hotkey: Keypair::from_secret(&[seed; 32])
                .public()
                .to_bytes()
                .to_vec(),
            coldkey: Vec::new(),
            stake,
        }
    }

    #[test]
    fn unsorted_duplicate_and_stakeless_sets_are_refused() {
        let mut validators = vec![entry(1, 5), entry(2, 5)];
        validators.sort_by(|a, b| a.hotkey.cmp(&b.hotkey));
        let ok = Members::new(v1::ValidatorSet {
            validators: validators.clone(),
        })
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok.index_of(&validators[1].hotkey), Some(1));
        validators.reverse();
        assert_eq!(
            Members::new(v1::ValidatorSet { validators }).unwrap_err(),
            MembersError::Unsorted { index: 1 }
        );
        let twice = vec![entry(1, 5), entry(1, 5)];
        // The same validator twice would count its stake twice.
        assert_eq!(
            Members::new(v1::ValidatorSet { validators: twice }).unwrap_err(),
            MembersError::Unsorted { index: 1 }
        );
        let empty = vec![entry(1, 0)];
        assert_eq!(
            Members::new(v1::ValidatorSet { validators: empty }).unwrap_err(),
            MembersError::NoStake
        );
    }

    #[test]
    fn peer_ids_are_the_members_hotkeys() {
        let mut validators = vec![entry(1, 5), entry(2, 5)];
        validators.sort_by(|a, b| a.hotkey.cmp(&b.hotkey));
        let members = Members::new(v1::ValidatorSet { validators }).unwrap();
        let ids = members.peer_ids();
        for seed in [1u8, 2] {
            assert!(ids.contains(&Keypair::from_secret(&[seed; 32]).public().peer_id()));
        }
        assert!(!ids.contains(&Keypair::from_secret(&[3; 32]).public().peer_id()));
    }
}
