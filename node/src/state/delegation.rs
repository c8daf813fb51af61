//! Delegation: the take a hotkey's owner keeps of its validator dividends, who owns a hotkey, and
//! stake moved between hotkeys and subnets.

use serde::{Deserialize, Serialize};

use super::{Key, State, TxError};

/// Highest take: the share of a validator's dividends its owner may keep, per mille.
pub const MAX_TAKE_PER_MILLE: u64 = 180;

/// A take set by a hotkey's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegate {
    /// The coldkey that owns the hotkey and set the take.
    pub owner: Key,
    /// Per mille of the hotkey's dividends its owner keeps.
    pub take_per_mille: u64,
    /// The epoch of the last change.
    pub changed_at: u64,
}

impl State {
    /// The take of `hotkey`: the one its owner set, or the network's default.
    pub fn take_of(&self, hotkey: &Key) -> u64 {
        self.delegates
            .get(hotkey)
            .map_or(self.params.validator_take_per_mille, |d| d.take_per_mille)
    }

    /// The coldkey that owns `hotkey`: the one every registration and finalizer declaration of it
    /// is under (none if it has neither, or they disagree).
    pub fn owner_of(&self, hotkey: &Key) -> Option<Key> {
        let registrations = self
            .subnets
            .values()
            .flat_map(|s| s.neurons.iter())
            .filter(|n| n.hotkey == *hotkey)
            .map(|n| n.owner);
        let declared = self.finalizers.get(hotkey).map(|f| f.coldkey);
        let mut owners = registrations.chain(declared);
        let first = owners.next()?;
        owners.all(|o| o == first).then_some(first)
    }

    /// The owner of every registered or declared hotkey, as [`Self::owner_of`] says, in one pass.
    pub fn hotkey_owners(&self) -> std::collections::BTreeMap<Key, Option<Key>> {
        let mut owners: std::collections::BTreeMap<Key, Option<Key>> = Default::default();
        let registrations = self
            .subnets
            .values()
            .flat_map(|s| s.neurons.iter())
            .map(|n| (n.hotkey, n.owner));
        let declared = self.finalizers.iter().map(|(h, f)| (*h, f.coldkey));
        for (hotkey, owner) in registrations.chain(declared) {
            owners
                .entry(hotkey)
                .and_modify(|o| {
                    if *o != Some(owner) {
                        *o = None;
                    }
                })
                .or_insert(Some(owner));
        }
        owners
    }

    /// Checks that `coldkey` owns `hotkey`.
    pub(super) fn check_owner(&self, coldkey: &Key, hotkey: &Key) -> Result<(), TxError> {
        match self.owner_of(hotkey) {
            Some(owner) if owner == *coldkey => Ok(()),
            _ => Err(TxError::NotOwner),
        }
    }

    /// The first epoch `hotkey`'s take may rise: `take_rate_limit` epochs after it last changed
    /// (for a hotkey that never set one, after its first registration), so nominators who came
    /// for a low take see a raise coming.
    pub fn next_raise_from(&self, hotkey: &Key) -> u64 {
        let since = match self.delegates.get(hotkey) {
            Some(d) => d.changed_at,
            None => self
                .subnets
                .values()
                .flat_map(|s| s.neurons.iter())
                .filter(|n| n.hotkey == *hotkey)
                .map(|n| n.registered_at)
                .min()
                .unwrap_or(self.epoch),
        };
        since.saturating_add(self.params.take_rate_limit)
    }

    /// Checks a take change by `coldkey`: it owns the hotkey, the take is at most
    /// [`MAX_TAKE_PER_MILLE`], and a raise waits for [`Self::next_raise_from`] (a cut never waits).
    pub(super) fn check_take(&self, coldkey: &Key, hotkey: &Key, take: u64) -> Result<(), TxError> {
        self.check_owner(coldkey, hotkey)?;
        if take > MAX_TAKE_PER_MILLE {
            return Err(TxError::TakeTooHigh {
                max: MAX_TAKE_PER_MILLE,
            });
        }
        let until = self.next_raise_from(hotkey);
        if take > self.take_of(hotkey) && self.epoch < until {
            return Err(TxError::RateLimited { until });
        }
        Ok(())
    }

    /// Sets `hotkey`'s take (checked by [`Self::check_take`]).
    pub(super) fn set_take(&mut self, coldkey: Key, hotkey: Key, take: u64) {
        let epoch = self.epoch;
        self.delegates.insert(
            hotkey,
            Delegate {
                owner: coldkey,
                take_per_mille: take,
                changed_at: epoch,
            },
        );
    }

    /// Checks a move of `amount` of `coldkey`'s stake: it holds it, the destination is
    /// registered, the source is not bonded to a finalizer (that stake leaves only by unbonding),
    /// and it moves somewhere.
    pub(super) fn check_move(
        &self,
        coldkey: &Key,
        from: (u32, Key),
        to: (u32, Key),
        amount: u64,
    ) -> Result<(), TxError> {
        if from == to {
            return Err(TxError::Malformed("moves stake onto itself".into()));
        }
        let held = self.stake(from.0, &from.1, coldkey);
        if held < amount {
            return Err(TxError::Insufficient {
                needed: amount,
                available: held,
            });
        }
        self.registered(to.0, &to.1)?;
        self.check_not_retired(&to.1)?;
        if self.bonded(&from.1) {
            return Err(TxError::Bonded);
        }
        Ok(())
    }

    /// Moves `amount` of `coldkey`'s stake (checked by [`Self::check_move`]).
    pub(super) fn move_stake(
        &mut self,
        coldkey: Key,
        from: (u32, Key),
        to: (u32, Key),
        amount: u64,
    ) {
        self.take_stake(from.0, &from.1, &coldkey, amount);
        self.record_flow(from.0, -(amount.min(i64::MAX as u64) as i64));
        self.add_stake(to.0, to.1, coldkey, amount);
        self.record_flow(to.0, amount.min(i64::MAX as u64) as i64);
    }
}
