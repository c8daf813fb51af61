//! The JSON form of a Yuma epoch, for `meshmind yuma` and offline cross-checks.

use serde::{Deserialize, Serialize};

use super::{
    BondsMode, DEFAULT_BONDS_MOVING_AVERAGE, DEFAULT_MAX_VALIDATORS, EpochResult, Fx, LiquidAlpha,
    SubnetState, YumaParams,
};

/// Why an input was refused; names the field.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InputError {
    /// Path of the offending field.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl InputError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// One subnet epoch as JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YumaInput {
    /// Stake per UID.
    pub stake: Vec<u64>,
    /// Weight rows per UID: `[[uid, weight], ...]`.
    pub weights: Vec<Vec<(u32, u16)>>,
    /// Previous bond rows per UID.
    #[serde(default)]
    pub bonds: Option<Vec<Vec<(u32, u16)>>>,
    /// Explicit validator permits.
    #[serde(default)]
    pub validator_permit: Option<Vec<bool>>,
    /// Number of validator permits when none are given. Default 64.
    #[serde(default)]
    pub max_validators: Option<usize>,
    /// Activity per UID. Default: all active.
    #[serde(default)]
    pub active: Option<Vec<bool>>,
    /// Consensus majority in `[0, 1]`. Default 32767/65535.
    #[serde(default)]
    pub kappa: Option<f64>,
    /// Bonds moving average in millionths. Default 900000.
    #[serde(default)]
    pub bonds_moving_average: Option<u64>,
    /// Epoch of each UID's last weight update.
    #[serde(default)]
    pub last_update: Option<Vec<u64>>,
    /// Epoch of each UID's registration.
    #[serde(default)]
    pub registered_at: Option<Vec<u64>>,
    /// Bond rule: `classic` (default) or `yuma3`.
    #[serde(default)]
    pub bonds_mode: Option<BondsModeName>,
    /// Liquid alpha for Yuma-3 bonds (needs `"bonds_mode": "yuma3"`); each field optional.
    #[serde(default)]
    pub liquid_alpha: Option<LiquidAlphaInput>,
    /// Amount to distribute.
    pub emission: u64,
}

/// The bond rules by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BondsModeName {
    /// Classic bonds.
    Classic,
    /// Yuma-3 bonds.
    Yuma3,
}

/// Liquid alpha settings as JSON.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiquidAlphaInput {
    /// Smallest alpha, in `(0, 1)`. Default about 0.7.
    #[serde(default)]
    pub alpha_low: Option<f64>,
    /// Largest alpha, in `(0, 1)`, at least `alpha_low`. Default about 0.9.
    #[serde(default)]
    pub alpha_high: Option<f64>,
    /// Sigmoid steepness, 0..=100000. Default 1000.
    #[serde(default)]
    pub steepness: Option<f64>,
}

impl LiquidAlphaInput {
    fn into_params(self) -> Result<LiquidAlpha, InputError> {
        let mut liquid = LiquidAlpha::default();
        let unit = |field: &str, value: f64| {
            if value > 0.0 && value < 1.0 {
                Ok(Fx::from_num(value))
            } else {
                Err(InputError::new(
                    format!("liquid_alpha.{field}"),
                    format!("{value} is not within (0, 1)"),
                ))
            }
        };
        if let Some(low) = self.alpha_low {
            liquid.low = unit("alpha_low", low)?;
        }
        if let Some(high) = self.alpha_high {
            liquid.high = unit("alpha_high", high)?;
        }
        if liquid.low > liquid.high {
            return Err(InputError::new(
                "liquid_alpha.alpha_low",
                "must not be above alpha_high",
            ));
        }
        if let Some(steepness) = self.steepness {
            if !(0.0..=100_000.0).contains(&steepness) {
                return Err(InputError::new(
                    "liquid_alpha.steepness",
                    format!("{steepness} is not within 0..=100000"),
                ));
            }
            liquid.steepness = Fx::from_num(steepness);
        }
        Ok(liquid)
    }
}

fn rows_in_range(field: &str, rows: &[Vec<(u32, u16)>], n: usize) -> Result<(), InputError> {
    if rows.len() != n {
        return Err(InputError::new(
            field,
            format!("has {} rows, stake has {n} UIDs", rows.len()),
        ));
    }
    for (i, row) in rows.iter().enumerate() {
        for (k, &(uid, _)) in row.iter().enumerate() {
            if uid as usize >= n {
                return Err(InputError::new(
                    format!("{field}[{i}][{k}]"),
                    format!("uid {uid} out of range ({n} UIDs)"),
                ));
            }
        }
    }
    Ok(())
}

fn per_uid<T>(field: &str, values: &Option<Vec<T>>, n: usize) -> Result<(), InputError> {
    match values {
        Some(values) if values.len() != n => Err(InputError::new(
            field,
            format!("has {} entries, stake has {n} UIDs", values.len()),
        )),
        _ => Ok(()),
    }
}

impl YumaInput {
    /// Parses JSON, naming the field of any error.
    pub fn from_json(text: &str) -> Result<Self, InputError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "input".to_string()
            } else {
                path
            };
            InputError::new(field, e.into_inner().to_string())
        })
    }

    /// Checks shapes and ranges, and splits the input into state and parameters.
    pub fn into_parts(self) -> Result<(SubnetState, YumaParams, u64), InputError> {
        let n = self.stake.len();
        if n > 65_536 {
            return Err(InputError::new("stake", format!("{n} UIDs; at most 65536")));
        }
        rows_in_range("weights", &self.weights, n)?;
        if let Some(bonds) = &self.bonds {
            rows_in_range("bonds", bonds, n)?;
        }
        per_uid("validator_permit", &self.validator_permit, n)?;
        per_uid("active", &self.active, n)?;
        per_uid("last_update", &self.last_update, n)?;
        per_uid("registered_at", &self.registered_at, n)?;
        let mut params = YumaParams::default();
        if let Some(kappa) = self.kappa {
            if !(0.0..=1.0).contains(&kappa) {
                return Err(InputError::new(
                    "kappa",
                    format!("{kappa} is not within 0..=1"),
                ));
            }
            params.kappa = Fx::from_num(kappa);
        }
        let bma = self
            .bonds_moving_average
            .unwrap_or(DEFAULT_BONDS_MOVING_AVERAGE);
        if bma > 1_000_000 {
            return Err(InputError::new(
                "bonds_moving_average",
                format!("{bma} is over 1000000"),
            ));
        }
        params.bonds_moving_average = bma;
        params.max_validators = self.max_validators.unwrap_or(DEFAULT_MAX_VALIDATORS);
        params.bonds_mode = match (self.bonds_mode, self.liquid_alpha) {
            (None | Some(BondsModeName::Classic), None) => BondsMode::Classic,
            (None | Some(BondsModeName::Classic), Some(_)) => {
                return Err(InputError::new(
                    "liquid_alpha",
                    "applies to Yuma-3 bonds; set \"bonds_mode\": \"yuma3\"",
                ));
            }
            (Some(BondsModeName::Yuma3), liquid) => BondsMode::Yuma3 {
                liquid_alpha: liquid.map(LiquidAlphaInput::into_params).transpose()?,
            },
        };
        let state = SubnetState {
            stake: self.stake,
            weights: self.weights,
            bonds: self.bonds.unwrap_or_else(|| vec![Vec::new(); n]),
            validator_permit: self.validator_permit,
            active: self.active,
            last_update: self.last_update,
            registered_at: self.registered_at,
        };
        Ok((state, params, self.emission))
    }

    /// Parses, checks and runs one epoch.
    pub fn run(self) -> Result<EpochResult, InputError> {
        let (state, params, emission) = self.into_parts()?;
        Ok(super::epoch(&state, &params, emission))
    }
}
