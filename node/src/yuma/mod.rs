//! Yuma consensus: turns validators' weights and stakes into consensus, trust, incentive, bonds,
//! dividends and emission, deterministically to the bit on every node.
//!
//! A port of the semantics of Bittensor subtensor's epoch: classic bonds by default, Yuma-3 bonds
//! (optionally with liquid alpha) when selected. All arithmetic is I32F32 fixed point; matrices are
//! sparse rows, so a subnet of 65,536 UIDs never allocates n x n.

mod input;
mod math;

pub use input::{InputError, YumaInput};

use fixed::types::I32F32;

use math::{Sparse, col_normalize, normalize, to_u16};

/// Fixed-point number used throughout.
pub type Fx = I32F32;

/// Default kappa: the stake majority that defines consensus (32767 / 65535).
pub const DEFAULT_KAPPA_U16: u16 = 32_767;
/// Default bonds moving average, in millionths (alpha = 1 - 0.9 = 0.1).
pub const DEFAULT_BONDS_MOVING_AVERAGE: u64 = 900_000;
/// Default number of validator permits.
pub const DEFAULT_MAX_VALIDATORS: usize = 64;

/// How bonds are updated each epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BondsMode {
    /// Exponential moving average of stake-scaled clipped weights with a fixed alpha, columns
    /// normalised (subtensor's classic bonds).
    #[default]
    Classic,
    /// Yuma-3: each bond is a moving average of the validator's own clipped weight (a proportion in
    /// `[0, 1]`, not stake-scaled); dividends are the bonds' share of incentive times active stake.
    Yuma3 {
        /// Per-bond alpha from consensus (subtensor's liquid alpha); a fixed alpha if `None`.
        liquid_alpha: Option<LiquidAlpha>,
    },
}

/// Liquid alpha: the moving-average alpha of each bond moves between `low` and `high` along a
/// sigmoid of how far the validator's weight is from consensus (buying) or below its bond (selling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiquidAlpha {
    /// Smallest alpha.
    pub low: Fx,
    /// Largest alpha.
    pub high: Fx,
    /// Steepness of the sigmoid; the exponent is `-steepness / 100 · (difference - 0.5)`.
    pub steepness: Fx,
}

impl Default for LiquidAlpha {
    /// subtensor's defaults: 45875/65535 (about 0.7), 58982/65535 (about 0.9), steepness 1000.
    fn default() -> Self {
        Self {
            low: math::fraction(45_875),
            high: math::fraction(58_982),
            steepness: Fx::from_num(1_000),
        }
    }
}

impl LiquidAlpha {
    /// The alpha of one bond from the miner's consensus, the validator's weight and its old bond.
    pub fn alpha(&self, consensus: Fx, weight: Fx, bond: Fx) -> Fx {
        let unit = |x: Fx| x.clamp(Fx::ZERO, Fx::ONE);
        let difference = if weight >= bond {
            unit(weight.saturating_sub(consensus))
        } else {
            unit(bond.saturating_sub(weight))
        };
        let exponent = (self.steepness / Fx::from_num(-100))
            .saturating_mul(difference.saturating_sub(Fx::from_num(0.5)));
        let sigmoid = Fx::ONE / Fx::ONE.saturating_add(math::exp(exponent));
        let alpha = self
            .low
            .saturating_add(sigmoid.saturating_mul(self.high.saturating_sub(self.low)));
        alpha.clamp(self.low, self.high)
    }
}

/// Parameters of one epoch of Yuma consensus.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YumaParams {
    /// Stake majority for consensus, as a fraction.
    pub kappa: Fx,
    /// Bonds moving average in millionths; alpha = 1 - this / 1e6.
    pub bonds_moving_average: u64,
    /// Validator permits go to the top this many UIDs by stake.
    pub max_validators: usize,
    /// Bond update rule.
    pub bonds_mode: BondsMode,
}

impl Default for YumaParams {
    fn default() -> Self {
        Self {
            kappa: Fx::from_num(DEFAULT_KAPPA_U16) / Fx::from_num(u16::MAX),
            bonds_moving_average: DEFAULT_BONDS_MOVING_AVERAGE,
            max_validators: DEFAULT_MAX_VALIDATORS,
            bonds_mode: BondsMode::Classic,
        }
    }
}

/// One subnet's state going into an epoch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubnetState {
    /// Stake behind each UID.
    pub stake: Vec<u64>,
    /// Each UID's weight row: `(target uid, u16 weight)`.
    pub weights: Vec<Vec<(u32, u16)>>,
    /// Each UID's bond row from the previous epoch: `(target uid, u16 bond)`.
    pub bonds: Vec<Vec<(u32, u16)>>,
    /// Explicit validator permits; when absent, the top `max_validators` by stake hold them.
    pub validator_permit: Option<Vec<bool>>,
    /// Whether each UID set weights recently enough to count; when absent, all are active.
    pub active: Option<Vec<bool>>,
    /// Epoch each validator last set weights; with `registered_at`, masks stale weights.
    pub last_update: Option<Vec<u64>>,
    /// Epoch each UID was (re)registered; weights and bonds set no later than that are masked.
    pub registered_at: Option<Vec<u64>>,
}

/// What one epoch produces; every vector is indexed by UID. Serializes to the JSON that
/// `meshmind yuma` prints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EpochResult {
    /// Stake-weighted median weight per miner, as u16 fractions.
    pub consensus: Vec<u16>,
    /// Share of miner emission, as u16 fractions (sums to about 65535).
    pub incentive: Vec<u16>,
    /// Share of validator emission, as u16 fractions (sums to about 65535).
    pub dividends: Vec<u16>,
    /// How much of each validator's weight survived clipping, as u16 fractions.
    pub validator_trust: Vec<u16>,
    /// Amount emitted to each UID.
    pub emission: Vec<u64>,
    /// The part of each UID's emission earned as a miner (incentive); the rest is dividends.
    #[serde(skip)]
    pub miner_emission: Vec<u64>,
    /// New bonds: classic, each column max-upscaled to 65535; Yuma-3, each bond's proportion.
    pub bonds: Vec<Vec<(u32, u16)>>,
    /// Validator permits used.
    #[serde(skip)]
    pub validator_permit: Vec<bool>,
    /// Fixed-point incentive before quantisation (sums to 1 when any weight counts).
    #[serde(skip)]
    pub incentive_fx: Vec<Fx>,
    /// Fixed-point dividends before quantisation (sums to 1 when any weight counts).
    #[serde(skip)]
    pub dividends_fx: Vec<Fx>,
}

/// Top `k` UIDs by stake (ties to the lower UID).
pub fn top_k_permits(stake: &[u64], k: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..stake.len()).collect();
    order.sort_by(|&a, &b| stake[b].cmp(&stake[a]).then(a.cmp(&b)));
    let mut permit = vec![false; stake.len()];
    for &uid in order.iter().take(k) {
        permit[uid] = true;
    }
    permit
}

/// Stake as fractions of the total, computed in 64.64 and narrowed to 32.32.
fn normalized_stake(stake: &[u64]) -> Vec<Fx> {
    let total: u128 = stake.iter().map(|&s| u128::from(s)).sum();
    if total == 0 {
        return vec![Fx::ZERO; stake.len()];
    }
    stake
        .iter()
        // s / total in 32 fractional bits, truncated: (s << 32) / total fits in u64 since s <= total.
        .map(|&s| Fx::from_bits(((u128::from(s) << 32) / total) as i64))
        .collect()
}

/// Whether a weight or bond set at `updated` predates the target's registration at `registered`.
fn stale(
    last_update: Option<&[u64]>,
    registered_at: Option<&[u64]>,
    row: usize,
    col: usize,
) -> bool {
    match (last_update, registered_at) {
        (Some(updated), Some(registered)) => match (updated.get(row), registered.get(col)) {
            (Some(u), Some(r)) => u <= r,
            _ => false,
        },
        _ => false,
    }
}

/// Runs one epoch of Yuma consensus over `state`, distributing `emission`.
pub fn epoch(state: &SubnetState, params: &YumaParams, emission: u64) -> EpochResult {
    let n = state.stake.len();
    let permit = state
        .validator_permit
        .clone()
        .unwrap_or_else(|| top_k_permits(&state.stake, params.max_validators));
    let active = state.active.clone().unwrap_or_else(|| vec![true; n]);
    let last_update = state.last_update.as_deref();
    let registered_at = state.registered_at.as_deref();

    // Stake: normalised, then restricted to active validators with permits and normalised again.
    let stake = normalized_stake(&state.stake);
    let mut active_stake: Vec<Fx> = stake
        .iter()
        .enumerate()
        .map(|(i, &s)| if active[i] && permit[i] { s } else { Fx::ZERO })
        .collect();
    normalize(&mut active_stake);

    // Weights: permitted rows only, no self-weight, no stale entries, rows normalised.
    let mut weights = Sparse::new(n);
    for (i, row) in state.weights.iter().enumerate().take(n) {
        if !permit[i] {
            continue;
        }
        for &(j, w) in row {
            let j = j as usize;
            if j < n && j != i && w > 0 && !stale(last_update, registered_at, i, j) {
                weights.rows[i].push((j as u32, math::fraction(w)));
            }
        }
    }
    weights.sort_rows();
    weights.row_normalize();

    let consensus = weights.weighted_median_cols(&active_stake, params.kappa);
    let clipped = weights.clip_cols(&consensus);
    let validator_trust = clipped.row_sums();
    let mut incentive = clipped.weighted_col_sums(&active_stake);
    normalize(&mut incentive);

    // Previous bonds, stale ones masked.
    let mut old_bonds = Sparse::new(n);
    for (i, row) in state.bonds.iter().enumerate().take(n) {
        for &(j, b) in row {
            let j = j as usize;
            if j < n && b > 0 && !stale(last_update, registered_at, i, j) {
                old_bonds.rows[i].push((j as u32, math::fraction(b)));
            }
        }
    }
    old_bonds.sort_rows();
    let alpha =
        Fx::from_num(1_000_000u64.saturating_sub(params.bonds_moving_average.min(1_000_000)))
            / Fx::from_num(1_000_000u64);
    let (bonds, dividends) = match params.bonds_mode {
        BondsMode::Classic => {
            // The new contribution is stake times clipped weight, column-normalised; the moving
            // average of it and the column-normalised old bonds, column-normalised again.
            col_normalize(&mut old_bonds);
            let mut delta = clipped.scale_rows(&active_stake);
            col_normalize(&mut delta);
            let mut bonds = delta.ema(&old_bonds, alpha);
            col_normalize(&mut bonds);
            let mut dividends = bonds.mul_vec(&incentive);
            normalize(&mut dividends);
            (bonds.col_max_upscale_u16(), dividends)
        }
        BondsMode::Yuma3 { liquid_alpha } => {
            let any_consensus = consensus.iter().any(|&c| c > Fx::ZERO);
            let bonds = match liquid_alpha {
                Some(liquid) if any_consensus => clipped.ema_with(&old_bonds, |j, weight, bond| {
                    liquid.alpha(consensus[j], weight, bond)
                }),
                _ => clipped.ema(&old_bonds, alpha),
            };
            let mut share = bonds.clone();
            col_normalize(&mut share);
            let mut dividends: Vec<Fx> = share
                .mul_vec(&incentive)
                .iter()
                .zip(&active_stake)
                .map(|(&b, &s)| b * s)
                .collect();
            normalize(&mut dividends);
            (bonds.to_u16_rows(), dividends)
        }
    };

    let (emission_split, miner_emission) =
        split_emission(&incentive, &dividends, &stake, &active_stake, emission);

    EpochResult {
        consensus: consensus.iter().map(|&c| to_u16(c)).collect(),
        incentive: incentive.iter().map(|&x| to_u16(x)).collect(),
        dividends: dividends.iter().map(|&x| to_u16(x)).collect(),
        validator_trust: validator_trust.iter().map(|&x| to_u16(x)).collect(),
        emission: emission_split,
        miner_emission,
        bonds,
        validator_permit: permit,
        incentive_fx: incentive,
        dividends_fx: dividends,
    }
}

/// Miners get `incentive / (Σ incentive + Σ dividends)` of the emission and validators
/// `dividends / (...)`, so half each when both are set; with no weights at all, validators share it
/// by stake. Amounts are truncated, so the total never exceeds `emission`. Returns each UID's
/// amount and the part of it earned by incentive.
fn split_emission(
    incentive: &[Fx],
    dividends: &[Fx],
    stake: &[Fx],
    active_stake: &[Fx],
    emission: u64,
) -> (Vec<u64>, Vec<u64>) {
    let sum: Fx = incentive
        .iter()
        .chain(dividends)
        .fold(Fx::ZERO, |a, &b| a.saturating_add(b));
    let shares: Vec<Fx> = if sum == Fx::ZERO {
        if active_stake.iter().all(|&s| s == Fx::ZERO) {
            stake.to_vec()
        } else {
            active_stake.to_vec()
        }
    } else {
        incentive
            .iter()
            .zip(dividends)
            .map(|(&i, &d)| i / sum + d / sum)
            .collect()
    };
    let amount = |share: &Fx| {
        let bits = share.to_bits().max(0) as u128;
        ((bits * u128::from(emission)) >> 32) as u64
    };
    let total: Vec<u64> = shares.iter().map(amount).collect();
    let miner: Vec<u64> = if sum == Fx::ZERO {
        vec![0; shares.len()]
    } else {
        // i/sum <= i/sum + d/sum bit for bit, so a UID's miner part never exceeds its total.
        incentive
            .iter()
            .zip(&total)
            .map(|(&i, &t)| amount(&(i / sum)).min(t))
            .collect()
    };
    (total, miner)
}

#[cfg(test)]
mod tests;
