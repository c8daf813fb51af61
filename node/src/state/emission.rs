//! The end of an epoch: weight vectors recorded, Yuma consensus per subnet, emission credited.

use meshmind_protocols::v1;

use super::{Key, State, SubnetParams};
use crate::yuma::{self, SubnetState};

#[cfg(doc)]
use super::MIN_SUBNET_STAKE_PER_MILLE;

/// Epochs after an owner's change during which a weight vector may still keep the rules before
/// it: validators see the change only once a snapshot with it is finalized.
const PRIOR_RULES_EPOCHS: u64 = 2;

/// `amount · per_mille / 1000`, rounded down.
fn per_mille(amount: u64, per_mille: u64) -> u64 {
    ((u128::from(amount) * u128::from(per_mille.min(1000))) / 1000) as u64
}

impl State {
    /// Ends epoch `self.epoch`: records each weight vector the subnet's rules take on its
    /// validator's neuron, moves the market's averages, shares `emission` between the subnets that
    /// have neurons by them (none for a subnet under [`MIN_SUBNET_STAKE_PER_MILLE`]), runs Yuma
    /// on each subnet whose tempo comes round (the owner's cut first) and credits what it earned
    /// since as stake, lowers registration burns, brings in owners' parameter changes and hotkey
    /// swaps, and moves to the next epoch. Returns the results of the subnets Yuma ran on.
    pub fn end_epoch(
        &mut self,
        weights: &[v1::WeightReveal],
        emission: u64,
    ) -> Vec<v1::SubnetResult> {
        let epoch = self.epoch;
        let mut rows = Vec::with_capacity(weights.len());
        for reveal in weights {
            match self.check_weights(reveal) {
                Ok((uid, row)) => rows.push((reveal.subnet, uid, row)),
                Err(e) => tracing::debug!(
                    subnet = reveal.subnet,
                    validator = %hex::encode(&reveal.validator),
                    error = %e,
                    "weight vector refused by the subnet's rules"
                ),
            }
        }
        for (subnet, uid, row) in rows {
            if let Some(neuron) = self
                .subnets
                .get_mut(&subnet)
                .and_then(|s| s.neurons.get_mut(uid as usize))
            {
                neuron.weights = row;
                neuron.last_update = epoch;
            }
        }
        self.update_market();
        let mut results = Vec::new();
        for (id, share) in self.market_shares(emission) {
            let Some(subnet) = self.subnets.get_mut(&id) else {
                continue;
            };
            subnet.pending_emission = subnet.pending_emission.saturating_add(share);
            if (epoch + 1).is_multiple_of(subnet.params.tempo.max(1)) {
                let due = std::mem::take(&mut subnet.pending_emission);
                results.push(self.run_subnet(id, due));
            }
        }
        let decay = self.params.burn_decay_per_mille;
        for subnet in self.subnets.values_mut() {
            if subnet.prior.is_some_and(|(_, until)| epoch + 1 >= until) {
                subnet.prior = None;
            }
            if let Some(next) = subnet.pending.take() {
                // Vectors made in this epoch and the next were made under the old rules.
                subnet.prior = Some((subnet.params, epoch + PRIOR_RULES_EPOCHS + 1));
                subnet.params = SubnetParams {
                    // Registrations since the change may have filled past a lowered limit.
                    max_uids: next.max_uids.max(subnet.neurons.len() as u32),
                    ..next
                };
            }
            subnet.burn = subnet
                .burn
                .saturating_sub(per_mille(subnet.burn, decay))
                .clamp(subnet.params.min_burn, subnet.params.max_burn);
        }
        self.settle_swaps();
        self.epoch += 1;
        self.settle_finalizers();
        results
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
            active: Some(
                subnet
                    .neurons
                    .iter()
                    .map(|n| self.active(n, subnet.params.activity_cutoff))
                    .collect(),
            ),
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
        let params = subnet.params.yuma();
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
                let as_miner = result.miner_emission.get(uid).copied().unwrap_or(0);
                neuron.last_dividends = neuron.last_emission.saturating_sub(as_miner);
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

    /// A validator's dividends: the owner's take (the hotkey's own, or the network's default),
    /// the rest pro rata to the hotkey's stakers (what rounding leaves goes to the owner), all as
    /// stake on the hotkey.
    pub(crate) fn pay_dividends(&mut self, id: u32, hotkey: Key, owner: Key, amount: u64) {
        if amount == 0 {
            return;
        }
        let take = per_mille(amount, self.take_of(&hotkey));
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
