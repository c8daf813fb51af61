//! The end of an epoch: weight vectors recorded, Yuma consensus per subnet, emission credited.

use meshmind_protocols::v1;

use super::{Key, State};
use crate::yuma::{self, BondsMode, LiquidAlpha, SubnetState, YumaParams};

/// A subnet holding less than this share (per mille) of the stake on all subnets with neurons
/// earns no emission, so a subnet of one hotkey and a token of stake farms nothing.
pub const MIN_SUBNET_STAKE_PER_MILLE: u64 = 10;

/// `amount · per_mille / 1000`, rounded down.
fn per_mille(amount: u64, per_mille: u64) -> u64 {
    ((u128::from(amount) * u128::from(per_mille.min(1000))) / 1000) as u64
}

impl State {
    /// Ends epoch `self.epoch`: records each weight vector on its validator's neuron, shares
    /// `emission` between the subnets that have neurons in proportion to the stake on each (none
    /// for a subnet under [`MIN_SUBNET_STAKE_PER_MILLE`] of it; the owner's cut first, the rest
    /// through Yuma consensus), credits it as stake, lowers registration burns, and moves to the
    /// next epoch. Returns each live subnet's results.
    pub fn end_epoch(
        &mut self,
        weights: &[v1::WeightReveal],
        emission: u64,
    ) -> Vec<v1::SubnetResult> {
        let epoch = self.epoch;
        for reveal in weights {
            let Some(validator) = Key::from_slice(&reveal.validator) else {
                continue;
            };
            let Some(subnet) = self.subnets.get_mut(&reveal.subnet) else {
                continue;
            };
            let Some(uid) = subnet.uid_of(&validator) else {
                continue;
            };
            let n = u32::try_from(subnet.neurons.len()).unwrap_or(u32::MAX);
            let row: Vec<(u32, u16)> = reveal
                .uids
                .iter()
                .zip(&reveal.weights)
                .filter(|(u, _)| **u < n)
                .map(|(&u, &w)| (u, u16::try_from(w).unwrap_or(u16::MAX)))
                .collect();
            if let Some(neuron) = subnet.neurons.get_mut(uid as usize) {
                neuron.weights = row;
                neuron.last_update = epoch;
            }
        }
        let live: Vec<u32> = self
            .subnets
            .iter()
            .filter(|(_, s)| !s.neurons.is_empty())
            .map(|(&id, _)| id)
            .collect();
        let shares = self.emission_shares(&live, emission);
        let results = live
            .into_iter()
            .zip(shares)
            .map(|(id, share)| self.run_subnet(id, share))
            .collect();
        let (min, decay) = (self.params.min_burn, self.params.burn_decay_per_mille);
        for subnet in self.subnets.values_mut() {
            subnet.burn = subnet
                .burn
                .saturating_sub(per_mille(subnet.burn, decay))
                .max(min);
        }
        self.epoch += 1;
        self.settle_finalizers();
        results
    }

    /// Each of `subnets`' part of `emission`: in proportion to the stake on it, among those that
    /// hold at least [`MIN_SUBNET_STAKE_PER_MILLE`] of the stake on all of them (rounded down).
    fn emission_shares(&self, subnets: &[u32], emission: u64) -> Vec<u64> {
        let stakes: Vec<u128> = subnets
            .iter()
            .map(|id| {
                self.stakes.get(id).map_or(0, |hotkeys| {
                    hotkeys
                        .values()
                        .flat_map(|by_coldkey| by_coldkey.values())
                        .map(|&s| u128::from(s))
                        .sum()
                })
            })
            .collect();
        let all: u128 = stakes.iter().sum();
        let eligible = |s: u128| s > 0 && s * 1000 >= all * u128::from(MIN_SUBNET_STAKE_PER_MILLE);
        let counted: u128 = stakes.iter().copied().filter(|&s| eligible(s)).sum();
        stakes
            .into_iter()
            .map(|s| match eligible(s) {
                // s <= counted, so the share is at most `emission`.
                true => (u128::from(emission) * s / counted) as u64,
                false => 0,
            })
            .collect()
    }

    /// What Yuma consensus sees of subnet `id` this epoch: stake behind each UID, weights and bonds,
    /// activity (weights set, or registered, within the cutoff) and registration epochs.
    pub(crate) fn yuma_input(&self, id: u32) -> Option<SubnetState> {
        let subnet = self.subnets.get(&id)?;
        Some(SubnetState {
            stake: subnet
                .neurons
                .iter()
                .map(|n| self.hotkey_stake(id, &n.hotkey))
                .collect(),
            weights: subnet.neurons.iter().map(|n| n.weights.clone()).collect(),
            bonds: subnet.neurons.iter().map(|n| n.bonds.clone()).collect(),
            validator_permit: None,
            active: Some(subnet.neurons.iter().map(|n| self.active(n)).collect()),
            last_update: Some(subnet.neurons.iter().map(|n| n.last_update).collect()),
            registered_at: Some(subnet.neurons.iter().map(|n| n.registered_at).collect()),
        })
    }

    /// One subnet's epoch with `emission` to hand out.
    fn run_subnet(&mut self, id: u32, emission: u64) -> v1::SubnetResult {
        let (Some(subnet), Some(input)) = (self.subnets.get(&id), self.yuma_input(id)) else {
            return v1::SubnetResult::default();
        };
        let owner = subnet.owner;
        let hotkeys: Vec<(Key, Key)> = subnet.neurons.iter().map(|n| (n.hotkey, n.owner)).collect();
        let bonds_mode = match (self.params.yuma3, self.params.liquid_alpha) {
            (false, _) => BondsMode::Classic,
            (true, liquid) => BondsMode::Yuma3 {
                liquid_alpha: liquid.then(LiquidAlpha::default),
            },
        };
        let params = YumaParams {
            max_validators: self.params.max_validators as usize,
            bonds_mode,
            ..Default::default()
        };
        let owner_cut = match owner {
            Some(_) => per_mille(emission, self.params.owner_cut_per_mille),
            None => 0,
        };
        let result = yuma::epoch(&input, &params, emission - owner_cut);
        let mut minted = 0u64;
        if let Some(owner) = owner {
            self.credit(owner, owner_cut);
            minted += owner_cut;
        }
        for (uid, &(hotkey, neuron_owner)) in hotkeys.iter().enumerate() {
            let total = result.emission.get(uid).copied().unwrap_or(0);
            let as_miner = result
                .miner_emission
                .get(uid)
                .copied()
                .unwrap_or(0)
                .min(total);
            self.add_stake(id, hotkey, neuron_owner, as_miner);
            self.pay_dividends(id, hotkey, neuron_owner, total - as_miner);
            minted = minted.saturating_add(total);
        }
        self.supply.emitted = self.supply.emitted.saturating_add(minted);
        if let Some(subnet) = self.subnets.get_mut(&id) {
            for (uid, neuron) in subnet.neurons.iter_mut().enumerate() {
                let at = |v: &Vec<u16>| v.get(uid).copied().unwrap_or(0);
                neuron.last_emission = result.emission.get(uid).copied().unwrap_or(0);
                neuron.bonds = result.bonds.get(uid).cloned().unwrap_or_default();
                neuron.results = [
                    at(&result.consensus),
                    at(&result.incentive),
                    at(&result.dividends),
                    at(&result.validator_trust),
                ];
            }
        }
        let to_u32 = |v: &[u16]| v.iter().map(|&x| u32::from(x)).collect();
        v1::SubnetResult {
            subnet: id,
            uids: (0..u32::try_from(hotkeys.len()).unwrap_or(0)).collect(),
            consensus: to_u32(&result.consensus),
            incentive: to_u32(&result.incentive),
            dividends: to_u32(&result.dividends),
            validator_trust: to_u32(&result.validator_trust),
            emission: result.emission,
        }
    }

    /// A validator's dividends: the owner's take, the rest pro rata to the hotkey's stakers (what
    /// rounding leaves goes to the owner), all as stake on the hotkey.
    pub(crate) fn pay_dividends(&mut self, id: u32, hotkey: Key, owner: Key, amount: u64) {
        if amount == 0 {
            return;
        }
        let take = per_mille(amount, self.params.validator_take_per_mille);
        let rest = amount - take;
        let stakers: Vec<(Key, u64)> = self
            .stakes
            .get(&id)
            .and_then(|h| h.get(&hotkey))
            .map(|c| c.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        let total: u128 = stakers.iter().map(|&(_, s)| u128::from(s)).sum();
        let mut paid = 0u64;
        for (coldkey, stake) in stakers {
            let part = (u128::from(rest) * u128::from(stake))
                .checked_div(total)
                .map_or(0, |p| p as u64);
            self.add_stake(id, hotkey, coldkey, part);
            paid += part;
        }
        self.add_stake(id, hotkey, owner, take + (rest - paid));
    }
}
