//! The token economy: accounts, stake, subnets and their registered neurons, moved by signed
//! transactions and by each epoch's emission, identically on every node.
//!
//! Everything is kept in ordered maps and integers, so the state (and its root) is a pure function
//! of the genesis and the finalized snapshots applied to it.

mod canonical;
mod delegation;
mod emission;
mod finalizers;
mod market;
mod mempool;
mod subnet_params;
mod swap;
mod transaction;
mod weight_rules;

#[cfg(test)]
mod market_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use meshmind_protocols::{NetworkId, v1};
use serde::{Deserialize, Serialize};

pub use delegation::{Delegate, MAX_TAKE_PER_MILLE};
pub use finalizers::Finalizer;
pub use market::EmissionMode;
pub use market::MIN_SUBNET_STAKE_PER_MILLE;
pub use mempool::{MAX_NONCE_AHEAD, Mempool, PoolError};
pub use subnet_params::{Bounds, PARAM_COUNT, PARAMS, ParamError, ParamSpec, SubnetParams};
pub use swap::{HotkeySwap, MAX_SWAPS_PER_EPOCH};
pub use transaction::{TxError, order_transactions};
pub use weight_rules::{WeightRuleError, fit_to_max_weight};

/// A 32-byte public key (a coldkey or a hotkey), written as hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// The key in `bytes`, if they are 32 long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Key)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(&text)
            .ok()
            .and_then(|bytes| Key::from_slice(&bytes))
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not 64 hex digits")))
    }
}

/// `kind` on `network_id`, signed by `signer` with `nonce` (for tests).
#[cfg(test)]
pub(crate) fn signed_tx(
    network_id: NetworkId,
    signer: &meshmind_protocols::Keypair,
    nonce: u64,
    kind: v1::transaction::Kind,
) -> v1::Transaction {
    v1::Transaction::new_signed(&network_id.to_vec(), nonce, kind, signer)
}

/// The shortest jail: as long as evidence of an offence is taken, so it is punished once.
pub const MIN_JAIL_EPOCHS: u64 = crate::consensus::evidence::MAX_EVIDENCE_AGE;

/// The rules of the economy, the same on every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Per-mille fall of a subnet's burn each epoch (it doubles on each registration).
    pub burn_decay_per_mille: u64,
    /// Amount locked to create a subnet.
    pub subnet_lock: u64,
    /// Most subnets; at the limit, creating one deregisters the one with the least stake.
    pub max_subnets: u32,
    /// Per-mille of a subnet's emission paid to its owner.
    pub owner_cut_per_mille: u64,
    /// Per-mille of a validator's dividends kept by its owner, for hotkeys that set no take.
    pub validator_take_per_mille: u64,
    /// Burned from the signer's balance by every applied transaction, so none is free.
    pub tx_fee: u64,
    /// Most finalizers.
    pub max_finalizers: u32,
    /// Epochs unstaked stake behind a finalizer takes to return.
    pub unbonding_epochs: u64,
    /// Epochs an equivocating finalizer is kept out of the set (at least the age evidence is
    /// taken at, so one offence is punished once).
    pub jail_epochs: u64,
    /// Per-mille of the stake behind an equivocating finalizer burned.
    pub slash_per_mille: u64,
    /// Rules a new subnet starts with.
    pub subnet_defaults: SubnetParams,
    /// Bounds of the rules a subnet's owner may set.
    pub bounds: Bounds,
    /// Epochs between two parameter changes by a subnet's owner.
    pub owner_rate_limit: u64,
    /// Epochs after a take's last change (or its hotkey's first registration) before it may rise.
    pub take_rate_limit: u64,
    /// Epochs after creation during which a subnet cannot be deregistered.
    pub subnet_immunity_epochs: u64,
    /// How emission is shared among subnets.
    pub emission_mode: EmissionMode,
    /// Epochs of the moving averages emission follows.
    pub emission_smoothing_epochs: u64,
}

impl Params {
    /// The genesis's rules, defaults where it sets none.
    pub fn from_genesis(economy: Option<&v1::EconomyParams>) -> Result<Self, StateError> {
        let mut params = Params::default();
        let Some(e) = economy else {
            return Ok(params);
        };
        let set = |value: u64, default: u64| if value == 0 { default } else { value };
        let d = &mut params.subnet_defaults;
        d.max_uids = set(u64::from(e.max_uids), u64::from(d.max_uids))
            .min(meshmind_protocols::codec::MAX_UIDS as u64) as u32;
        d.immunity_epochs = set(e.immunity_epochs, d.immunity_epochs);
        d.min_burn = set(e.min_burn, d.min_burn);
        d.max_burn = set(e.max_burn, d.max_burn).max(d.min_burn);
        d.activity_cutoff = set(e.activity_cutoff, d.activity_cutoff);
        d.yuma3 = e.yuma3;
        d.liquid_alpha = e.yuma3 && e.liquid_alpha;
        params.subnet_lock = set(e.subnet_lock, params.subnet_lock);
        params.validator_take_per_mille = set(
            u64::from(e.validator_take_per_mille),
            params.validator_take_per_mille,
        )
        .min(MAX_TAKE_PER_MILLE);
        params.tx_fee = set(e.tx_fee, params.tx_fee);
        params.max_finalizers = set(
            u64::from(e.max_finalizers),
            u64::from(params.max_finalizers),
        )
        .min(meshmind_protocols::codec::MAX_VALIDATORS as u64)
            as u32;
        params.unbonding_epochs = set(e.unbonding_epochs, params.unbonding_epochs);
        params.jail_epochs = set(e.jail_epochs, params.jail_epochs).max(MIN_JAIL_EPOCHS);
        params.slash_per_mille =
            set(u64::from(e.slash_per_mille), params.slash_per_mille).min(1000);
        params.owner_rate_limit = set(e.owner_rate_limit, params.owner_rate_limit);
        params.take_rate_limit = set(e.take_rate_limit, params.take_rate_limit);
        params.max_subnets = set(u64::from(e.max_subnets), u64::from(params.max_subnets))
            .min(meshmind_protocols::validate::MAX_SUBNETS as u64)
            as u32;
        params.subnet_immunity_epochs =
            set(e.subnet_immunity_epochs, params.subnet_immunity_epochs);
        params.emission_smoothing_epochs = set(
            e.emission_smoothing_epochs,
            params.emission_smoothing_epochs,
        );
        params.emission_mode = match e.emission_mode.as_str() {
            "" | "stake" => EmissionMode::StakeEma,
            "flows" => EmissionMode::FlowEma,
            other => {
                return Err(genesis_error(
                    "economy.emission_mode",
                    format!("{other:?} is neither \"stake\" nor \"flows\""),
                ));
            }
        };
        let narrower: Vec<(String, u64, u64)> = e
            .bounds
            .iter()
            .map(|b| (b.name.clone(), b.min, b.max))
            .collect();
        params.bounds = Bounds::narrowed(&narrower)
            .map_err(|err| genesis_error("economy.bounds", err.to_string()))?;
        let values: Vec<(&str, u64)> = e
            .subnet_defaults
            .iter()
            .map(|v| (v.name.as_str(), v.value))
            .collect();
        // The built-in defaults clamped into narrower bounds, then the genesis's own.
        let mut clamped = params.subnet_defaults;
        for (spec, (min, max)) in PARAMS.iter().zip(params.bounds.0) {
            let value = spec.get(&clamped).clamp(min, max);
            clamped = clamped
                .with(&[(spec.name, value)], &Bounds::default())
                .unwrap_or(clamped);
        }
        params.subnet_defaults = clamped
            .with(&values, &params.bounds)
            .map_err(|err| genesis_error("economy.subnet_defaults", err.to_string()))?;
        if !params.subnet_defaults.within(&params.bounds) {
            return Err(genesis_error(
                "economy.subnet_defaults",
                "the defaults do not lie within the bounds",
            ));
        }
        Ok(params)
    }
}

impl Default for Params {
    fn default() -> Self {
        Self {
            burn_decay_per_mille: 50,
            subnet_lock: 1_000_000,
            max_subnets: 64,
            owner_cut_per_mille: 180,
            validator_take_per_mille: MAX_TAKE_PER_MILLE,
            tx_fee: 100,
            max_finalizers: 64,
            unbonding_epochs: 64,
            jail_epochs: MIN_JAIL_EPOCHS,
            slash_per_mille: 100,
            subnet_defaults: SubnetParams::default(),
            bounds: Bounds::default(),
            owner_rate_limit: 100,
            take_rate_limit: 100,
            subnet_immunity_epochs: 64,
            emission_mode: EmissionMode::StakeEma,
            emission_smoothing_epochs: 64,
        }
    }
}

/// A coldkey's account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Account {
    /// Free balance.
    pub balance: u64,
    /// Number of transactions applied; the next one must carry this nonce.
    pub nonce: u64,
}

/// A hotkey registered on a subnet, at a UID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neuron {
    /// The registered hotkey.
    pub hotkey: Key,
    /// The coldkey that registered it; it receives the neuron's own earnings.
    pub owner: Key,
    /// Epoch of registration.
    pub registered_at: u64,
    /// Epoch its latest weights were recorded (0: never).
    pub last_update: u64,
    /// Its latest weights: `(uid, u16)`.
    pub weights: Vec<(u32, u16)>,
    /// Its bonds after the last epoch: `(uid, u16)`.
    pub bonds: Vec<(u32, u16)>,
    /// Emission it received in the last epoch.
    pub last_emission: u64,
    /// Last epoch's consensus, incentive, dividends and validator trust (u16 fractions).
    pub results: [u16; 4],
    /// The first epoch of its current run holding a validator permit; `None` without one.
    pub permit_since: Option<u64>,
    /// The part of `last_emission` earned as a validator.
    pub last_dividends: u64,
}

/// A subnet and its neurons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    /// Name.
    pub name: String,
    /// Tasks served on it.
    pub tasks: Vec<String>,
    /// Owner coldkey; receives the owner's cut.
    pub owner: Option<Key>,
    /// Amount its creator locked.
    pub locked: u64,
    /// Current registration burn.
    pub burn: u64,
    /// Neurons by UID.
    pub neurons: Vec<Neuron>,
    /// Its rules in force.
    pub params: SubnetParams,
    /// The owner's change waiting for the epoch boundary.
    pub pending: Option<SubnetParams>,
    /// The epoch of the owner's last change.
    pub params_changed_at: Option<u64>,
    /// When each parameter last changed, by name.
    pub changes: BTreeMap<String, u64>,
    /// The epoch it was created.
    pub created_at: u64,
    /// Moving average of the stake on it.
    pub stake_ema: u64,
    /// Moving average of its net stake inflow per epoch.
    pub flow_ema: i64,
    /// This epoch's net stake inflow so far.
    pub flow: i64,
    /// Emission earned since Yuma last ran on it, not minted yet.
    pub pending_emission: u64,
    /// The rules before the owner's last change and the epoch until which weight vectors may
    /// still keep them instead (those made before validators could know of the change).
    pub prior: Option<(SubnetParams, u64)>,
}

impl Subnet {
    /// A new subnet with no neurons, under `params`, created at `epoch`.
    pub fn new(
        name: String,
        tasks: Vec<String>,
        owner: Option<Key>,
        locked: u64,
        params: SubnetParams,
        epoch: u64,
    ) -> Self {
        Self {
            name,
            tasks,
            owner,
            locked,
            burn: params.min_burn,
            neurons: Vec::new(),
            params,
            pending: None,
            params_changed_at: None,
            changes: BTreeMap::new(),
            created_at: epoch,
            stake_ema: 0,
            flow_ema: 0,
            flow: 0,
            pending_emission: 0,
            prior: None,
        }
    }

    /// The UID of `hotkey`, if registered.
    pub fn uid_of(&self, hotkey: &Key) -> Option<u32> {
        self.neurons
            .iter()
            .position(|n| n.hotkey == *hotkey)
            .and_then(|i| u32::try_from(i).ok())
    }
}

/// Where every unit of supply came from and went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Supply {
    /// Balances and stakes at genesis.
    pub genesis: u64,
    /// Minted by emission since.
    pub emitted: u64,
    /// Burned by registrations since.
    pub burned: u64,
}

/// Why a state cannot be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The genesis is unusable as an economy.
    #[error("genesis {field}: {reason}")]
    Genesis {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Stored state does not parse.
    #[error("stored economy state: {0}")]
    Corrupt(String),
    /// An invariant does not hold.
    #[error("invariant broken: {0}")]
    Invariant(String),
}

/// The whole economy after some number of epochs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The network.
    pub network_id: Key,
    /// The rules.
    pub params: Params,
    /// The next epoch to apply.
    pub epoch: u64,
    /// Accounts by coldkey.
    pub accounts: BTreeMap<Key, Account>,
    /// Stake by subnet, hotkey and coldkey.
    pub stakes: BTreeMap<u32, BTreeMap<Key, BTreeMap<Key, u64>>>,
    /// Subnets by id.
    pub subnets: BTreeMap<u32, Subnet>,
    /// Supply accounting.
    pub supply: Supply,
    /// Declared finalizers (and lately declared, and jailed ones) by hotkey.
    pub finalizers: BTreeMap<Key, Finalizer>,
    /// Stake on its way back to balances, by (release epoch, coldkey, hotkey).
    pub unbonding: BTreeMap<(u64, Key, Key), u64>,
    /// Takes set by hotkeys' owners, by hotkey.
    pub delegates: BTreeMap<Key, Delegate>,
    /// The id the next subnet created gets.
    pub next_subnet: u32,
    /// Hotkey swaps waiting for the epoch boundary, by old hotkey.
    pub swaps: BTreeMap<Key, HotkeySwap>,
    /// Hotkeys swapped away lately, by old hotkey: evidence against one punishes its successor.
    pub swapped: BTreeMap<Key, HotkeySwap>,
}

fn genesis_error(field: impl Into<String>, reason: impl Into<String>) -> StateError {
    StateError::Genesis {
        field: field.into(),
        reason: reason.into(),
    }
}

impl State {
    /// The state at genesis: balances, subnets, and every genesis validator registered on every
    /// genesis subnet with its stake split evenly over them (the remainder on the first).
    pub fn from_genesis(genesis: &v1::Genesis, network_id: NetworkId) -> Result<Self, StateError> {
        let mut state = State {
            network_id: Key(*network_id.as_bytes()),
            params: Params::from_genesis(genesis.economy.as_ref())?,
            epoch: 0,
            accounts: BTreeMap::new(),
            stakes: BTreeMap::new(),
            subnets: BTreeMap::new(),
            supply: Supply::default(),
            finalizers: BTreeMap::new(),
            unbonding: BTreeMap::new(),
            delegates: BTreeMap::new(),
            next_subnet: 1,
            swaps: BTreeMap::new(),
            swapped: BTreeMap::new(),
        };
        let mut total: u64 = 0;
        let mut add = |amount: u64, field: &str| {
            total = total
                .checked_add(amount)
                .ok_or_else(|| genesis_error(field, "supply overflows u64"))?;
            Ok::<(), StateError>(())
        };
        for (i, balance) in genesis.balances.iter().enumerate() {
            let field = format!("balances[{i}]");
            let key = Key::from_slice(&balance.coldkey)
                .ok_or_else(|| genesis_error(&field, "coldkey is not 32 bytes"))?;
            add(balance.amount, &field)?;
            let account = state.accounts.entry(key).or_default();
            account.balance = account.balance.saturating_add(balance.amount);
        }
        for spec in &genesis.subnets {
            let owner = match spec.owner.is_empty() {
                true => None,
                false => Some(Key::from_slice(&spec.owner).ok_or_else(|| {
                    genesis_error(format!("subnets[{}].owner", spec.id), "not 32 bytes")
                })?),
            };
            let subnet = Subnet::new(
                spec.name.clone(),
                spec.tasks.clone(),
                owner,
                0,
                state.params.subnet_defaults,
                0,
            );
            state.subnets.insert(spec.id, subnet);
            state.next_subnet = state.next_subnet.max(spec.id.saturating_add(1));
        }
        let first = state.subnets.keys().next().copied();
        for (i, validator) in genesis.validators.iter().enumerate() {
            let field = format!("validators[{i}]");
            let (Some(hotkey), Some(coldkey)) = (
                Key::from_slice(&validator.hotkey),
                Key::from_slice(&validator.coldkey),
            ) else {
                return Err(genesis_error(field, "keys must be 32 bytes"));
            };
            add(validator.stake, &field)?;
            // Genesis validators are the first declared finalizers.
            state.declare(hotkey, coldkey);
            for subnet in state.subnets.values_mut() {
                if subnet.uid_of(&hotkey).is_none() {
                    subnet.neurons.push(Neuron::new(hotkey, coldkey, 0));
                }
            }
            // Genesis validators validate every subnet: their stake is split evenly over the
            // subnets (the remainder on the first), so each subnet's Yuma has their rows.
            let ids: Vec<u32> = state.subnets.keys().copied().collect();
            match first {
                Some(id) => {
                    let share = validator.stake / ids.len() as u64;
                    let rest = validator.stake - share * ids.len() as u64;
                    for &subnet in &ids {
                        let amount = share + if subnet == id { rest } else { 0 };
                        state.add_stake(subnet, hotkey, coldkey, amount);
                    }
                }
                None => {
                    let account = state.accounts.entry(coldkey).or_default();
                    account.balance = account.balance.saturating_add(validator.stake);
                }
            }
        }
        for (i, neuron) in genesis.neurons.iter().enumerate() {
            let field = format!("neurons[{i}]");
            let (Some(hotkey), Some(coldkey)) = (
                Key::from_slice(&neuron.hotkey),
                Key::from_slice(&neuron.coldkey),
            ) else {
                return Err(genesis_error(field, "keys must be 32 bytes"));
            };
            let subnet = state
                .subnets
                .get_mut(&neuron.subnet)
                .ok_or_else(|| genesis_error(&field, format!("no subnet {}", neuron.subnet)))?;
            let max = subnet.params.max_uids as usize;
            if subnet.uid_of(&hotkey).is_none() {
                if subnet.neurons.len() >= max {
                    return Err(genesis_error(
                        field,
                        format!("subnet is full at {max} UIDs"),
                    ));
                }
                subnet.neurons.push(Neuron::new(hotkey, coldkey, 0));
            }
        }
        state.supply.genesis = total;
        for (id, subnet) in state.subnets.iter_mut() {
            subnet.stake_ema = state
                .stakes
                .get(id)
                .map_or(0, |h| h.values().flat_map(|c| c.values()).sum());
        }
        // The genesis validators finalize epoch 0; permits are held from it.
        let genesis_set = state.voting_set(&v1::ValidatorSet::default());
        state.record_tenure(&genesis_set);
        state.check_invariants()?;
        Ok(state)
    }

    /// An account (empty if it never held anything).
    pub fn account(&self, coldkey: &Key) -> Account {
        self.accounts.get(coldkey).copied().unwrap_or_default()
    }

    /// The stake `coldkey` holds on `hotkey` in `subnet`.
    pub fn stake(&self, subnet: u32, hotkey: &Key, coldkey: &Key) -> u64 {
        self.stakes
            .get(&subnet)
            .and_then(|h| h.get(hotkey))
            .and_then(|c| c.get(coldkey))
            .copied()
            .unwrap_or(0)
    }

    /// Total stake behind `hotkey` in `subnet`.
    pub fn hotkey_stake(&self, subnet: u32, hotkey: &Key) -> u64 {
        self.stakes
            .get(&subnet)
            .and_then(|h| h.get(hotkey))
            .map_or(0, |c| c.values().fold(0u64, |a, &b| a.saturating_add(b)))
    }

    /// The rules in force on `subnet` (the defaults for one that does not exist).
    pub fn subnet_params(&self, subnet: u32) -> SubnetParams {
        self.subnets
            .get(&subnet)
            .map_or(self.params.subnet_defaults, |s| s.params)
    }

    /// Whether `neuron` set weights, or registered, within the subnet's last `activity_cutoff`
    /// epochs.
    pub fn active(&self, neuron: &Neuron, cutoff: u64) -> bool {
        let since = neuron.last_update.max(neuron.registered_at);
        self.epoch.saturating_sub(since) <= cutoff
    }

    /// The hotkeys holding a validator permit on `subnet`, with the stake behind each: the
    /// registered ones with the most stake (none without), at most `max_validators`, as Yuma
    /// grants them.
    pub fn permits(&self, subnet: u32) -> Vec<(Key, u64)> {
        let Some(chain) = self.subnets.get(&subnet) else {
            return Vec::new();
        };
        let stake: Vec<u64> = chain
            .neurons
            .iter()
            .map(|n| self.hotkey_stake(subnet, &n.hotkey))
            .collect();
        let permit = crate::yuma::top_k_permits(&stake, chain.params.max_validators as usize);
        chain
            .neurons
            .iter()
            .zip(stake.iter().zip(permit))
            .filter(|&(_, (&stake, permit))| permit && stake > 0)
            .map(|(n, (&stake, _))| (n.hotkey, stake))
            .collect()
    }

    /// The permit holders of every subnet: only their weight vectors enter snapshots.
    pub fn permit_holders(&self) -> BTreeMap<u32, BTreeSet<Key>> {
        self.subnets
            .keys()
            .map(|&subnet| {
                let holders = self.permits(subnet).into_iter().map(|(key, _)| key);
                (subnet, holders.collect())
            })
            .collect()
    }

    /// The permit holders of `subnet` that validate, with the stake behind each: those that set
    /// weights within the last `activity_cutoff` epochs. They share a miner's capacity.
    pub fn validators(&self, subnet: u32) -> Vec<(Key, u64)> {
        let Some(chain) = self.subnets.get(&subnet) else {
            return Vec::new();
        };
        // Active by its weights, not by a recent registration.
        let validating = |key: &Key| {
            chain.neurons.iter().any(|n| {
                n.hotkey == *key
                    && !n.weights.is_empty()
                    && self.epoch.saturating_sub(n.last_update) <= chain.params.activity_cutoff
            })
        };
        self.permits(subnet)
            .into_iter()
            .filter(|(key, _)| validating(key))
            .collect()
    }

    pub(crate) fn add_stake(&mut self, subnet: u32, hotkey: Key, coldkey: Key, amount: u64) {
        if amount == 0 {
            return;
        }
        let entry = self
            .stakes
            .entry(subnet)
            .or_default()
            .entry(hotkey)
            .or_default()
            .entry(coldkey)
            .or_default();
        *entry = entry.saturating_add(amount);
    }

    /// Removes up to `amount` of stake (entries that reach zero are dropped).
    pub(crate) fn take_stake(&mut self, subnet: u32, hotkey: &Key, coldkey: &Key, amount: u64) {
        let Some(hotkeys) = self.stakes.get_mut(&subnet) else {
            return;
        };
        let Some(coldkeys) = hotkeys.get_mut(hotkey) else {
            return;
        };
        if let Some(held) = coldkeys.get_mut(coldkey) {
            *held = held.saturating_sub(amount);
            if *held == 0 {
                coldkeys.remove(coldkey);
            }
        }
        if coldkeys.is_empty() {
            hotkeys.remove(hotkey);
        }
        if hotkeys.is_empty() {
            self.stakes.remove(&subnet);
        }
    }

    /// Total stake on `subnet`.
    pub fn subnet_stake(&self, subnet: u32) -> u64 {
        self.stakes.get(&subnet).map_or(0, |hotkeys| {
            hotkeys
                .values()
                .flat_map(|by_coldkey| by_coldkey.values())
                .fold(0u64, |a, &b| a.saturating_add(b))
        })
    }

    /// Every unit held: balances, stakes, unbonding stake and subnet locks.
    pub fn held(&self) -> u128 {
        let balances: u128 = self.accounts.values().map(|a| u128::from(a.balance)).sum();
        let stakes: u128 = self
            .stakes
            .values()
            .flat_map(|h| h.values())
            .flat_map(|c| c.values())
            .map(|&s| u128::from(s))
            .sum();
        let locked: u128 = self.subnets.values().map(|s| u128::from(s.locked)).sum();
        let unbonding: u128 = self.unbonding.values().map(|&a| u128::from(a)).sum();
        balances + stakes + locked + unbonding
    }

    /// Checks that supply = genesis + emitted - burned equals everything held, that no subnet holds
    /// more UIDs than allowed, and that no hotkey is registered twice on a subnet.
    pub fn check_invariants(&self) -> Result<(), StateError> {
        let held = self.held();
        let expected = (u128::from(self.supply.genesis) + u128::from(self.supply.emitted))
            .checked_sub(u128::from(self.supply.burned));
        if expected != Some(held) {
            let expected = expected.map_or("negative".to_string(), |e| e.to_string());
            return Err(StateError::Invariant(format!(
                "{held} held, but genesis {} + emitted {} - burned {} = {expected}",
                self.supply.genesis, self.supply.emitted, self.supply.burned
            )));
        }
        for (id, subnet) in &self.subnets {
            if subnet.neurons.len() > subnet.params.max_uids as usize {
                return Err(StateError::Invariant(format!(
                    "subnet {id} has {} UIDs",
                    subnet.neurons.len()
                )));
            }
            let rules = std::iter::once(&subnet.params)
                .chain(subnet.pending.as_ref())
                .chain(subnet.prior.as_ref().map(|(p, _)| p));
            for params in rules {
                if !params.within(&self.params.bounds) || params.check().is_err() {
                    return Err(StateError::Invariant(format!(
                        "subnet {id} has rules outside the bounds or inconsistent"
                    )));
                }
            }
            let mut hotkeys: Vec<&Key> = subnet.neurons.iter().map(|n| &n.hotkey).collect();
            hotkeys.sort();
            if hotkeys.windows(2).any(|w| w[0] == w[1]) {
                return Err(StateError::Invariant(format!(
                    "subnet {id} registers a hotkey twice"
                )));
            }
        }
        Ok(())
    }
}

impl Neuron {
    fn new(hotkey: Key, owner: Key, registered_at: u64) -> Self {
        Self {
            hotkey,
            owner,
            registered_at,
            last_update: 0,
            weights: Vec::new(),
            bonds: Vec::new(),
            last_emission: 0,
            results: [0; 4],
            permit_since: None,
            last_dividends: 0,
        }
    }
}
