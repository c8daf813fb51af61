//! Hotkey swaps: a hotkey's owner replaces it with a fresh key at the next epoch boundary, and
//! evidence against the old key still punishes the new one while it may come.

use serde::{Deserialize, Serialize};

use super::{Key, State, TxError};

/// Most hotkey swaps waiting for one epoch boundary, so checking a new key stays cheap.
pub const MAX_SWAPS_PER_EPOCH: usize = 64;

/// A hotkey swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotkeySwap {
    /// The new hotkey.
    pub hotkey: Key,
    /// The owner coldkey that asked for it.
    pub coldkey: Key,
    /// The epoch it was asked for (pending) or made (done).
    pub epoch: u64,
}

impl State {
    /// Whether `hotkey` appears anywhere: registered, staked on, declared, with a take, or in a
    /// swap.
    fn known(&self, hotkey: &Key) -> bool {
        self.subnets
            .values()
            .any(|s| s.neurons.iter().any(|n| n.hotkey == *hotkey))
            || self.stakes.values().any(|h| h.contains_key(hotkey))
            || self.finalizers.contains_key(hotkey)
            || self.delegates.contains_key(hotkey)
            || self.unbonding.keys().any(|(_, _, h)| h == hotkey)
            || self.swaps.contains_key(hotkey)
            || self.swaps.values().any(|s| s.hotkey == *hotkey)
            || self.swapped.contains_key(hotkey)
            || self.swapped.values().any(|s| s.hotkey == *hotkey)
    }

    /// Whether `hotkey` was swapped away (or is being): it may not be registered, staked on or
    /// declared again while evidence against it may still come.
    pub fn retired(&self, hotkey: &Key) -> bool {
        self.swapped.contains_key(hotkey) || self.swaps.contains_key(hotkey)
    }

    /// Refuses a transaction that would give `hotkey` standing again after a swap.
    pub(super) fn check_not_retired(&self, hotkey: &Key) -> Result<(), TxError> {
        match self.retired(hotkey) {
            true => Err(TxError::HotkeyRetired),
            false => Ok(()),
        }
    }

    /// Checks a swap of `old` for `new` by `coldkey`: it owns `old`, which is not jailed nor
    /// already being swapped, `new` is a key the network has never seen, and the epoch has room.
    pub(super) fn check_swap(&self, coldkey: &Key, old: &Key, new: &Key) -> Result<(), TxError> {
        self.check_owner(coldkey, old)?;
        if self.swaps.contains_key(old) {
            return Err(TxError::SwapPending);
        }
        if self.swaps.len() >= MAX_SWAPS_PER_EPOCH {
            return Err(TxError::TooManySwaps(MAX_SWAPS_PER_EPOCH));
        }
        if let Some(f) = self.finalizers.get(old)
            && f.jailed_until > self.epoch
        {
            return Err(TxError::Jailed(f.jailed_until));
        }
        if old == new || self.known(new) {
            return Err(TxError::HotkeyInUse);
        }
        Ok(())
    }

    /// Records a swap for the epoch boundary (checked by [`Self::check_swap`]).
    pub(super) fn request_swap(&mut self, coldkey: Key, old: Key, new: Key) {
        let epoch = self.epoch;
        self.swaps.insert(
            old,
            HotkeySwap {
                hotkey: new,
                coldkey,
                epoch,
            },
        );
    }

    /// Makes the pending swaps that still hold (a jailed or disowned old key, or a new key taken
    /// meanwhile, drops one), and forgets finished ones once no evidence against the old key can
    /// come and no stake it held can still be unbonding.
    pub(super) fn settle_swaps(&mut self) {
        let pending = std::mem::take(&mut self.swaps);
        for (old, swap) in pending {
            match self.check_swap(&swap.coldkey, &old, &swap.hotkey) {
                Ok(()) => self.swap(old, swap),
                Err(e) => tracing::info!(old = %old.to_hex(), error = %e, "hotkey swap dropped"),
            }
        }
        let keep = self
            .params
            .unbonding_epochs
            .max(self.params.jail_epochs)
            .max(crate::consensus::evidence::MAX_EVIDENCE_AGE)
            .saturating_add(2);
        let epoch = self.epoch;
        self.swapped
            .retain(|_, s| epoch < s.epoch.saturating_add(keep));
    }

    /// Moves everything of `old` to the swap's new hotkey.
    fn swap(&mut self, old: Key, swap: HotkeySwap) {
        let new = swap.hotkey;
        for subnet in self.subnets.values_mut() {
            for neuron in subnet.neurons.iter_mut().filter(|n| n.hotkey == old) {
                neuron.hotkey = new;
            }
        }
        for hotkeys in self.stakes.values_mut() {
            if let Some(by_coldkey) = hotkeys.remove(&old) {
                let merged = hotkeys.entry(new).or_default();
                for (coldkey, amount) in by_coldkey {
                    let entry = merged.entry(coldkey).or_default();
                    *entry = entry.saturating_add(amount);
                }
            }
        }
        if let Some(mut finalizer) = self.finalizers.remove(&old) {
            // The new key enters the finalizing set at the next hand-over.
            finalizer.in_set_since = None;
            self.finalizers.insert(new, finalizer);
        }
        if let Some(delegate) = self.delegates.remove(&old) {
            self.delegates.insert(new, delegate);
        }
        let unbonding: Vec<((u64, Key, Key), u64)> = self
            .unbonding
            .iter()
            .filter(|((_, _, h), _)| *h == old)
            .map(|(k, &v)| (*k, v))
            .collect();
        for ((release, coldkey, _), amount) in unbonding {
            self.unbonding.remove(&(release, coldkey, old));
            let entry = self.unbonding.entry((release, coldkey, new)).or_default();
            *entry = entry.saturating_add(amount);
        }
        let epoch = self.epoch;
        // Keys swapped to `old` earlier now answer through `new`: one hop from any of them.
        for earlier in self.swapped.values_mut().filter(|s| s.hotkey == old) {
            earlier.hotkey = new;
        }
        self.swapped.insert(old, HotkeySwap { epoch, ..swap });
        tracing::info!(old = %old.to_hex(), new = %new.to_hex(), "hotkey swapped");
    }

    /// The hotkey that now stands for `hotkey`: itself, or the key it was lately swapped to
    /// (through any number of swaps since: each swap points the earlier ones at its new key).
    pub fn successor(&self, hotkey: &Key) -> Key {
        self.swapped.get(hotkey).map_or(*hotkey, |s| s.hotkey)
    }
}
