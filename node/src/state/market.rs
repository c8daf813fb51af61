//! The market among subnets: moving averages of the stake on each and of its net inflows, each
//! subnet's share of emission from them, and deregistration of the weakest when a new one comes.

use serde::{Deserialize, Serialize};

use super::{Key, State, TxError};

/// A subnet holding less than this share (per mille) of the market's measure (the moving average
/// emission follows) earns no emission, so a subnet of one hotkey and a token of stake farms
/// nothing.
pub const MIN_SUBNET_STAKE_PER_MILLE: u64 = 10;

/// How emission is shared among subnets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EmissionMode {
    /// In proportion to the moving average of the stake on each subnet.
    #[default]
    StakeEma,
    /// In proportion to the moving average of each subnet's net stake inflow (positive part);
    /// by stake when no subnet has a positive one.
    FlowEma,
}

impl EmissionMode {
    /// Its number in the canonical state.
    pub fn to_wire(self) -> u32 {
        match self {
            EmissionMode::StakeEma => 0,
            EmissionMode::FlowEma => 1,
        }
    }

    /// The mode numbered `n` in the canonical state.
    pub fn from_wire(n: u32) -> Option<Self> {
        match n {
            0 => Some(EmissionMode::StakeEma),
            1 => Some(EmissionMode::FlowEma),
            _ => None,
        }
    }

    /// Its name in the genesis and the API.
    pub fn name(self) -> &'static str {
        match self {
            EmissionMode::StakeEma => "stake",
            EmissionMode::FlowEma => "flows",
        }
    }
}

/// `ema` moved `1 / epochs` of the way to `value`.
fn ema_step(ema: i128, value: i128, epochs: u64) -> i128 {
    ema + (value - ema) / i128::from(epochs.max(1))
}

impl State {
    /// Adds `delta` to `subnet`'s net stake inflow this epoch.
    pub(super) fn record_flow(&mut self, subnet: u32, delta: i64) {
        if let Some(s) = self.subnets.get_mut(&subnet) {
            s.flow = s.flow.saturating_add(delta);
        }
    }

    /// Moves every subnet's moving averages one epoch: stake towards the stake on it now, inflow
    /// towards this epoch's net inflow (which starts again from zero).
    pub(super) fn update_market(&mut self) {
        let epochs = self.params.emission_smoothing_epochs;
        let stakes: Vec<(u32, u64)> = self
            .subnets
            .keys()
            .map(|&id| (id, self.subnet_stake(id)))
            .collect();
        for (id, stake) in stakes {
            if let Some(s) = self.subnets.get_mut(&id) {
                let ema = ema_step(i128::from(s.stake_ema), i128::from(stake), epochs);
                s.stake_ema = u64::try_from(ema.max(0)).unwrap_or(u64::MAX);
                let flow = ema_step(i128::from(s.flow_ema), i128::from(s.flow), epochs);
                s.flow_ema =
                    i64::try_from(flow).unwrap_or(if flow < 0 { i64::MIN } else { i64::MAX });
                s.flow = 0;
            }
        }
    }

    /// What `subnet` weighs in the market under the emission mode.
    fn market_weight(&self, subnet: u32, mode: EmissionMode) -> u128 {
        self.subnets.get(&subnet).map_or(0, |s| match mode {
            EmissionMode::StakeEma => u128::from(s.stake_ema),
            EmissionMode::FlowEma => u128::try_from(s.flow_ema.max(0)).unwrap_or(0),
        })
    }

    /// Each of `subnets`' part of `emission`: in proportion to its market weight, among those
    /// holding at least [`MIN_SUBNET_STAKE_PER_MILLE`] of the weight of all of them (rounded down).
    pub(super) fn emission_shares(&self, subnets: &[u32], emission: u64) -> Vec<u64> {
        let mut mode = self.params.emission_mode;
        let mut weights: Vec<u128> = subnets
            .iter()
            .map(|&id| self.market_weight(id, mode))
            .collect();
        if mode == EmissionMode::FlowEma && weights.iter().all(|&w| w == 0) {
            mode = EmissionMode::StakeEma;
            weights = subnets
                .iter()
                .map(|&id| self.market_weight(id, mode))
                .collect();
        }
        let all: u128 = weights.iter().sum();
        let eligible = |w: u128| w > 0 && w * 1000 >= all * u128::from(MIN_SUBNET_STAKE_PER_MILLE);
        let counted: u128 = weights.iter().copied().filter(|&w| eligible(w)).sum();
        weights
            .into_iter()
            .map(|w| match eligible(w) {
                // w <= counted, so the share is at most `emission`.
                true => (u128::from(emission) * w / counted) as u64,
                false => 0,
            })
            .collect()
    }

    /// What each subnet with neurons gets of `emission` by the averages as they stand (at the
    /// last epoch's end, the shares that epoch paid).
    pub fn market_shares(&self, emission: u64) -> std::collections::BTreeMap<u32, u64> {
        let live: Vec<u32> = self
            .subnets
            .iter()
            .filter(|(_, s)| !s.neurons.is_empty())
            .map(|(&id, _)| id)
            .collect();
        let shares = self.emission_shares(&live, emission);
        live.into_iter().zip(shares).collect()
    }

    /// The subnet creating one more would deregister: an owned one (the genesis's subnets without
    /// an owner are the network's own) past its immunity, with the least stake by moving average
    /// (ties: the older, then the lower id).
    pub fn weakest_subnet(&self) -> Option<u32> {
        let immunity = self.params.subnet_immunity_epochs;
        self.subnets
            .iter()
            .filter(|(_, s)| s.owner.is_some())
            .filter(|(_, s)| self.epoch.saturating_sub(s.created_at) >= immunity)
            .min_by_key(|&(&id, s)| (s.stake_ema, s.created_at, id))
            .map(|(&id, _)| id)
    }

    /// Checks there is room for one more subnet: under `max_subnets`, or one to deregister.
    pub(super) fn check_room(&self) -> Result<Option<u32>, TxError> {
        if self.subnets.len() < self.params.max_subnets as usize {
            return Ok(None);
        }
        self.weakest_subnet()
            .map(Some)
            .ok_or(TxError::TooManySubnets(self.params.max_subnets))
    }

    /// Removes subnet `id`: the stake on it goes back to its stakers (through unbonding when behind
    /// a finalizer), the lock to its owner, and what it had not been paid yet is never minted.
    pub(super) fn deregister(&mut self, id: u32) {
        let Some(subnet) = self.subnets.remove(&id) else {
            return;
        };
        let stakes: Vec<(Key, Key, u64)> = self
            .stakes
            .remove(&id)
            .into_iter()
            .flatten()
            .flat_map(|(hotkey, by_coldkey)| {
                by_coldkey
                    .into_iter()
                    .map(move |(coldkey, amount)| (hotkey, coldkey, amount))
            })
            .collect();
        for (hotkey, coldkey, amount) in stakes {
            if self.bonded(&hotkey) {
                self.unbond(coldkey, hotkey, amount);
            } else {
                self.credit(coldkey, amount);
            }
        }
        match subnet.owner {
            Some(owner) => self.credit(owner, subnet.locked),
            None => self.supply.burned = self.supply.burned.saturating_add(subnet.locked),
        }
        tracing::info!(subnet = id, name = %subnet.name, "subnet deregistered");
    }
}
