//! Who finalizes: hotkeys declared finalizers (genesis validators are the first), the set of the
//! `max_finalizers` with the most stake from their own coldkey, unbonding of the stake behind
//! them, and jailing and slashing of one that equivocated.

use meshmind_protocols::v1;
use serde::{Deserialize, Serialize};

use super::{Key, State};

/// A hotkey declared a finalizer, lately so, or jailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finalizer {
    /// The coldkey that declared it: its stake behind the hotkey is the voting power.
    pub coldkey: Key,
    /// Declared now (a candidate for the set).
    pub declared: bool,
    /// The epoch it undeclared (meaningful when not declared).
    pub left_at: u64,
    /// Out of the set before this epoch.
    pub jailed_until: u64,
    /// The first epoch of its current run in the finalizing set; `None` when out of it.
    pub in_set_since: Option<u64>,
}

impl State {
    /// Declares `hotkey` a finalizer under `coldkey` (checked by the transaction rules).
    pub(super) fn declare(&mut self, hotkey: Key, coldkey: Key) {
        let (jailed_until, in_set_since) = self
            .finalizers
            .get(&hotkey)
            .map_or((0, None), |f| (f.jailed_until, f.in_set_since));
        self.finalizers.insert(
            hotkey,
            Finalizer {
                coldkey,
                declared: true,
                left_at: 0,
                jailed_until,
                in_set_since,
            },
        );
    }

    /// Withdraws `hotkey`'s declaration; the stake behind it still unbonds slowly.
    pub(super) fn undeclare(&mut self, hotkey: &Key) {
        let epoch = self.epoch;
        if let Some(f) = self.finalizers.get_mut(hotkey) {
            f.declared = false;
            f.left_at = epoch;
        }
    }

    /// Whether stake behind `hotkey` unbonds slowly: it is declared, undeclared less than
    /// `unbonding_epochs` ago, or jailed.
    pub fn bonded(&self, hotkey: &Key) -> bool {
        self.finalizers.get(hotkey).is_some_and(|f| {
            f.declared
                || self.epoch < f.left_at.saturating_add(self.params.unbonding_epochs)
                || f.jailed_until > self.epoch
        })
    }

    /// Puts `amount` unstaked from `hotkey` on its way back to `coldkey`, released
    /// `unbonding_epochs` from now.
    pub(super) fn unbond(&mut self, coldkey: Key, hotkey: Key, amount: u64) {
        let release = self.epoch.saturating_add(self.params.unbonding_epochs);
        let entry = self
            .unbonding
            .entry((release, coldkey, hotkey))
            .or_default();
        *entry = entry.saturating_add(amount);
    }

    /// At the end of an epoch: lapses declarations left without stake, credits unbonded stake
    /// that is due, and forgets finalizers that are neither declared, nor bonded, nor jailed.
    pub(super) fn settle_finalizers(&mut self) {
        // A declaration with no stake behind it lapses (it could never finalize).
        let lapsed: Vec<Key> = self
            .finalizers
            .iter()
            .filter(|(hotkey, f)| f.declared && self.own_stake(hotkey, &f.coldkey) == 0)
            .map(|(hotkey, _)| *hotkey)
            .collect();
        for hotkey in lapsed {
            self.undeclare(&hotkey);
        }
        let epoch = self.epoch;
        let due: Vec<((u64, Key, Key), u64)> = self
            .unbonding
            .range(..=(epoch, Key([0xff; 32]), Key([0xff; 32])))
            .map(|(k, &v)| (*k, v))
            .collect();
        for (entry, amount) in due {
            self.unbonding.remove(&entry);
            self.credit(entry.1, amount);
        }
        let unbonding = self.params.unbonding_epochs;
        self.finalizers.retain(|_, f| {
            f.declared || epoch < f.left_at.saturating_add(unbonding) || f.jailed_until > epoch
        });
    }

    /// Punishes `offender` for equivocating: out of the set for `jail_epochs` and
    /// `slash_per_mille` of every stake behind it (on every subnet, and unbonding) burned. Does
    /// nothing while it is jailed already, so one offence cannot be punished twice. Returns the
    /// amount burned.
    pub fn punish(&mut self, offender: &Key) -> u64 {
        // A key swapped away since it offended answers through its successor.
        let offender = &self.successor(offender);
        let epoch = self.epoch;
        let (jail, share) = (self.params.jail_epochs, self.params.slash_per_mille);
        let finalizer = self.finalizers.entry(*offender).or_insert(Finalizer {
            coldkey: Key::default(),
            declared: false,
            left_at: epoch,
            jailed_until: 0,
            in_set_since: None,
        });
        if finalizer.jailed_until > epoch {
            return 0;
        }
        finalizer.jailed_until = epoch.saturating_add(jail);
        let cut = |amount: &mut u64| {
            let slashed = ((u128::from(*amount) * u128::from(share.min(1000))) / 1000) as u64;
            *amount -= slashed;
            slashed
        };
        let mut burned = 0u64;
        for hotkeys in self.stakes.values_mut() {
            if let Some(coldkeys) = hotkeys.get_mut(offender) {
                for amount in coldkeys.values_mut() {
                    burned = burned.saturating_add(cut(amount));
                }
                coldkeys.retain(|_, amount| *amount > 0);
            }
            hotkeys.retain(|_, coldkeys| !coldkeys.is_empty());
        }
        self.stakes.retain(|_, hotkeys| !hotkeys.is_empty());
        for (entry, amount) in self.unbonding.iter_mut() {
            if entry.2 == *offender {
                burned = burned.saturating_add(cut(amount));
            }
        }
        self.unbonding.retain(|_, amount| *amount > 0);
        self.supply.burned = self.supply.burned.saturating_add(burned);
        burned
    }

    /// The power `hotkey` would finalize with under `coldkey`: the stake `coldkey` has behind
    /// it over every subnet.
    pub fn own_stake(&self, hotkey: &Key, coldkey: &Key) -> u64 {
        self.subnets.keys().fold(0u64, |sum, &id| {
            sum.saturating_add(self.stake(id, hotkey, coldkey))
        })
    }

    /// Ends the epoch's changes to who finalizes and validates: the set that finalizes the next
    /// epoch ([`Self::voting_set`]), with the tenure of each hotkey recorded (since when it is
    /// in that set, and since when it holds each validator permit). Called once per snapshot,
    /// after its transactions, Yuma and punishments.
    pub fn hand_over(&mut self, current: &v1::ValidatorSet) -> v1::ValidatorSet {
        let next = self.voting_set(current);
        self.record_tenure(&next);
        next
    }

    /// Records, for the epoch the state is at, who is in `set` and who holds permits: a run
    /// that goes on keeps its start, one that begins starts now, one that ended is forgotten.
    pub(super) fn record_tenure(&mut self, set: &v1::ValidatorSet) {
        let now = self.epoch;
        let in_set: std::collections::BTreeSet<&[u8]> =
            set.validators.iter().map(|v| v.hotkey.as_slice()).collect();
        for (hotkey, f) in self.finalizers.iter_mut() {
            f.in_set_since = match in_set.contains(&hotkey.0[..]) {
                true => f.in_set_since.or(Some(now)),
                false => None,
            };
        }
        let holders = self.permit_holders();
        for (id, subnet) in self.subnets.iter_mut() {
            for neuron in &mut subnet.neurons {
                let holds = holders.get(id).is_some_and(|h| h.contains(&neuron.hotkey));
                neuron.permit_since = match holds {
                    true => neuron.permit_since.or(Some(now)),
                    false => None,
                };
            }
        }
    }

    /// The validator set that finalizes the next epoch: of the declared, unjailed finalizers, the
    /// `max_finalizers` with the most stake from their own coldkey (ties to the lower hotkey), each
    /// with that stake as its voting power, sorted by hotkey. If none has any, `current` stays as
    /// it is (jailed or not: a chain that cannot finalize helps no one), until someone declares.
    ///
    /// Stake from other coldkeys earns with the validator but carries no voting power: otherwise
    /// anyone could stake a validator that is offline past a third of the power and halt finality.
    pub fn voting_set(&self, current: &v1::ValidatorSet) -> v1::ValidatorSet {
        let epoch = self.epoch;
        let mut candidates: Vec<(u64, Key, Key)> = self
            .finalizers
            .iter()
            .filter(|(_, f)| f.declared && f.jailed_until <= epoch)
            .map(|(hotkey, f)| (self.own_stake(hotkey, &f.coldkey), *hotkey, f.coldkey))
            .filter(|(stake, _, _)| *stake > 0)
            .collect();
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        candidates.truncate(self.params.max_finalizers as usize);
        candidates.sort_by_key(|c| c.1);
        if candidates.is_empty() {
            return current.clone();
        }
        v1::ValidatorSet {
            validators: candidates
                .into_iter()
                .map(|(stake, hotkey, coldkey)| v1::ValidatorEntry {
                    hotkey: hotkey.0.to_vec(),
                    coldkey: coldkey.0.to_vec(),
                    stake,
                })
                .collect(),
        }
    }
}
