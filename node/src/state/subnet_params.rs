//! Per-subnet rules: their values, names and bounds, and the checks a change by the owner passes.

use serde::{Deserialize, Serialize};

use crate::yuma::{self, BondsMode, Fx, LiquidAlpha, YumaParams};

/// One subnet's rules, set by its owner within the network's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetParams {
    /// Most UIDs.
    pub max_uids: u32,
    /// Validator permits (top by stake).
    pub max_validators: u32,
    /// Epochs after registration during which a neuron cannot be pruned.
    pub immunity_epochs: u64,
    /// Lowest registration burn.
    pub min_burn: u64,
    /// Highest registration burn.
    pub max_burn: u64,
    /// Stake majority Yuma's consensus clips to, a u16 fraction of 65535.
    pub kappa: u16,
    /// Bonds moving average in millionths (alpha = 1 - this / 1e6).
    pub bonds_moving_average: u64,
    /// Epochs after its last weight vector during which a neuron's stake still counts as active.
    pub activity_cutoff: u64,
    /// Yuma-3 bonds instead of classic ones.
    pub yuma3: bool,
    /// Liquid alpha for Yuma-3 bonds.
    pub liquid_alpha: bool,
    /// Liquid alpha's lowest alpha, a u16 fraction.
    pub alpha_low: u16,
    /// Liquid alpha's highest alpha, a u16 fraction.
    pub alpha_high: u16,
    /// Weights are committed an epoch before they are revealed.
    pub commit_reveal: bool,
    /// Epochs between two weight vectors of one validator that count.
    pub weights_rate_limit: u64,
    /// Fewest non-zero weights a vector carries (at most the subnet's other neurons).
    pub min_allowed_weights: u32,
    /// Largest share one UID may get in a vector, a u16 fraction.
    pub max_weight_limit: u16,
    /// Yuma runs on the subnet every `tempo` epochs; emission waits for it.
    pub tempo: u64,
}

impl Default for SubnetParams {
    fn default() -> Self {
        let liquid = LiquidAlpha::default();
        let u16_of = |x: Fx| (x * Fx::from_num(u16::MAX)).round().to_num::<u16>();
        Self {
            max_uids: 256,
            max_validators: yuma::DEFAULT_MAX_VALIDATORS as u32,
            immunity_epochs: 4,
            min_burn: 1_000,
            max_burn: 100_000_000_000,
            kappa: yuma::DEFAULT_KAPPA_U16,
            bonds_moving_average: yuma::DEFAULT_BONDS_MOVING_AVERAGE,
            activity_cutoff: 16,
            yuma3: false,
            liquid_alpha: false,
            alpha_low: u16_of(liquid.low),
            alpha_high: u16_of(liquid.high),
            commit_reveal: true,
            weights_rate_limit: 0,
            min_allowed_weights: 0,
            max_weight_limit: u16::MAX,
            tempo: 1,
        }
    }
}

/// A subnet parameter: its name, meaning, built-in bounds and how it is read and written.
pub struct ParamSpec {
    /// The name transactions and the CLI use.
    pub name: &'static str,
    /// What it sets.
    pub doc: &'static str,
    /// Built-in lowest value.
    pub min: u64,
    /// Built-in highest value.
    pub max: u64,
    get: fn(&SubnetParams) -> u64,
    set: fn(&mut SubnetParams, u64),
}

impl ParamSpec {
    /// Its value in `params`.
    pub fn get(&self, params: &SubnetParams) -> u64 {
        (self.get)(params)
    }
}

/// Most parameters.
pub const PARAM_COUNT: usize = 17;

/// Every subnet parameter, in the order they are listed.
pub const PARAMS: [ParamSpec; PARAM_COUNT] = [
    ParamSpec {
        name: "max_uids",
        doc: "most UIDs",
        min: 1,
        max: meshmind_protocols::codec::MAX_UIDS as u64,
        get: |p| u64::from(p.max_uids),
        set: |p, v| p.max_uids = v as u32,
    },
    ParamSpec {
        name: "max_validators",
        doc: "validator permits, top by stake",
        min: 1,
        max: meshmind_protocols::codec::MAX_VALIDATORS as u64,
        get: |p| u64::from(p.max_validators),
        set: |p, v| p.max_validators = v as u32,
    },
    ParamSpec {
        name: "immunity_epochs",
        doc: "epochs a new neuron cannot be pruned",
        min: 0,
        max: 100_000,
        get: |p| p.immunity_epochs,
        set: |p, v| p.immunity_epochs = v,
    },
    ParamSpec {
        name: "min_burn",
        doc: "lowest registration burn",
        min: 1,
        max: 1_000_000_000_000_000,
        get: |p| p.min_burn,
        set: |p, v| p.min_burn = v,
    },
    ParamSpec {
        name: "max_burn",
        doc: "highest registration burn",
        min: 1,
        max: 1_000_000_000_000_000,
        get: |p| p.max_burn,
        set: |p, v| p.max_burn = v,
    },
    ParamSpec {
        name: "kappa",
        doc: "stake majority of consensus, of 65535",
        min: 0,
        max: u16::MAX as u64,
        get: |p| u64::from(p.kappa),
        set: |p, v| p.kappa = v as u16,
    },
    ParamSpec {
        name: "bonds_moving_average",
        doc: "bonds moving average, millionths",
        min: 0,
        max: 999_999,
        get: |p| p.bonds_moving_average,
        set: |p, v| p.bonds_moving_average = v,
    },
    ParamSpec {
        name: "activity_cutoff",
        doc: "epochs a validator's stake counts after its last vector",
        min: 1,
        max: 100_000,
        get: |p| p.activity_cutoff,
        set: |p, v| p.activity_cutoff = v,
    },
    ParamSpec {
        name: "yuma3",
        doc: "Yuma-3 bonds (0 or 1)",
        min: 0,
        max: 1,
        get: |p| u64::from(p.yuma3),
        set: |p, v| p.yuma3 = v != 0,
    },
    ParamSpec {
        name: "liquid_alpha",
        doc: "liquid alpha for Yuma-3 bonds (0 or 1)",
        min: 0,
        max: 1,
        get: |p| u64::from(p.liquid_alpha),
        set: |p, v| p.liquid_alpha = v != 0,
    },
    ParamSpec {
        name: "alpha_low",
        doc: "liquid alpha's lowest alpha, of 65535",
        min: 1,
        max: u16::MAX as u64 - 1,
        get: |p| u64::from(p.alpha_low),
        set: |p, v| p.alpha_low = v as u16,
    },
    ParamSpec {
        name: "alpha_high",
        doc: "liquid alpha's highest alpha, of 65535",
        min: 1,
        max: u16::MAX as u64 - 1,
        get: |p| u64::from(p.alpha_high),
        set: |p, v| p.alpha_high = v as u16,
    },
    ParamSpec {
        name: "commit_reveal",
        doc: "weights committed an epoch before they are revealed (0 or 1)",
        min: 0,
        max: 1,
        get: |p| u64::from(p.commit_reveal),
        set: |p, v| p.commit_reveal = v != 0,
    },
    ParamSpec {
        name: "weights_rate_limit",
        doc: "epochs between two vectors of a validator",
        min: 0,
        max: 100_000,
        get: |p| p.weights_rate_limit,
        set: |p, v| p.weights_rate_limit = v,
    },
    ParamSpec {
        name: "min_allowed_weights",
        doc: "fewest non-zero weights in a vector",
        min: 0,
        max: meshmind_protocols::codec::MAX_UIDS as u64,
        get: |p| u64::from(p.min_allowed_weights),
        set: |p, v| p.min_allowed_weights = v as u32,
    },
    ParamSpec {
        name: "max_weight_limit",
        doc: "largest share of one UID in a vector, of 65535",
        min: 1,
        max: u16::MAX as u64,
        get: |p| u64::from(p.max_weight_limit),
        set: |p, v| p.max_weight_limit = v as u16,
    },
    ParamSpec {
        name: "tempo",
        doc: "epochs between two Yuma runs",
        min: 1,
        max: 1_000,
        get: |p| p.tempo,
        set: |p, v| p.tempo = v,
    },
];

/// The spec of the parameter called `name`, with its index.
pub(super) fn spec(name: &str) -> Option<(usize, &'static ParamSpec)> {
    PARAMS.iter().enumerate().find(|(_, p)| p.name == name)
}

/// The bounds of every parameter, in [`PARAMS`] order: `(min, max)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds(pub [(u64, u64); PARAM_COUNT]);

impl Default for Bounds {
    fn default() -> Self {
        Bounds(std::array::from_fn(|i| (PARAMS[i].min, PARAMS[i].max)))
    }
}

/// Why a parameter change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// No parameter has this name.
    #[error("no subnet parameter {0:?} (see `meshmind subnet show`)")]
    Unknown(String),
    /// The value is outside the parameter's bounds.
    #[error("{name} = {value} is outside its bounds {min}..={max}")]
    OutOfBounds {
        /// The parameter.
        name: &'static str,
        /// The value asked for.
        value: u64,
        /// Lowest allowed.
        min: u64,
        /// Highest allowed.
        max: u64,
    },
    /// The values disagree with each other.
    #[error("{0}")]
    Inconsistent(&'static str),
}

impl Bounds {
    /// The built-in bounds narrowed by `narrower` (name, min, max), which must lie within them.
    pub fn narrowed(narrower: &[(String, u64, u64)]) -> Result<Self, ParamError> {
        let mut bounds = Bounds::default();
        for (name, min, max) in narrower {
            let (i, p) = spec(name).ok_or_else(|| ParamError::Unknown(name.clone()))?;
            if *min < p.min || *max > p.max || min > max {
                return Err(ParamError::OutOfBounds {
                    name: p.name,
                    value: if *min < p.min || min > max {
                        *min
                    } else {
                        *max
                    },
                    min: p.min,
                    max: p.max,
                });
            }
            bounds.0[i] = (*min, *max);
        }
        Ok(bounds)
    }
}

impl SubnetParams {
    /// These parameters with `values` (name, value) set, each within `bounds`, and the result
    /// consistent.
    pub fn with(&self, values: &[(&str, u64)], bounds: &Bounds) -> Result<Self, ParamError> {
        let mut next = *self;
        for &(name, value) in values {
            let (i, p) = spec(name).ok_or_else(|| ParamError::Unknown(name.to_string()))?;
            let (min, max) = bounds.0[i];
            if value < min || value > max {
                return Err(ParamError::OutOfBounds {
                    name: p.name,
                    value,
                    min,
                    max,
                });
            }
            (p.set)(&mut next, value);
        }
        next.check()?;
        Ok(next)
    }

    /// Checks the values against each other.
    pub fn check(&self) -> Result<(), ParamError> {
        if self.min_burn > self.max_burn {
            return Err(ParamError::Inconsistent("min_burn is above max_burn"));
        }
        if self.alpha_low > self.alpha_high {
            return Err(ParamError::Inconsistent("alpha_low is above alpha_high"));
        }
        if self.liquid_alpha && !self.yuma3 {
            return Err(ParamError::Inconsistent("liquid_alpha needs yuma3"));
        }
        Ok(())
    }

    /// Whether every value lies within `bounds`.
    pub fn within(&self, bounds: &Bounds) -> bool {
        PARAMS
            .iter()
            .zip(bounds.0)
            .all(|(p, (min, max))| (min..=max).contains(&p.get(self)))
    }

    /// What Yuma consensus runs with on a subnet with these rules.
    pub fn yuma(&self) -> YumaParams {
        let fraction = |x: u16| Fx::from_num(x) / Fx::from_num(u16::MAX);
        let bonds_mode = match (self.yuma3, self.liquid_alpha) {
            (false, _) => BondsMode::Classic,
            (true, liquid) => BondsMode::Yuma3 {
                liquid_alpha: liquid.then(|| LiquidAlpha {
                    low: fraction(self.alpha_low),
                    high: fraction(self.alpha_high),
                    ..LiquidAlpha::default()
                }),
            },
        };
        YumaParams {
            kappa: fraction(self.kappa),
            bonds_moving_average: self.bonds_moving_average,
            max_validators: self.max_validators as usize,
            bonds_mode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_lie_within_the_built_in_bounds_and_match_yuma() {
        let defaults = SubnetParams::default();
        assert!(defaults.within(&Bounds::default()));
        defaults.check().expect("consistent");
        assert_eq!(defaults.yuma(), YumaParams::default());
        let liquid = SubnetParams {
            yuma3: true,
            liquid_alpha: true,
            ..defaults
        };
        assert_eq!(
            liquid.yuma().bonds_mode,
            BondsMode::Yuma3 {
                liquid_alpha: Some(LiquidAlpha::default())
            }
        );
    }

    #[test]
    fn a_change_is_bounded_and_consistent() {
        let p = SubnetParams::default();
        let b = Bounds::default();
        let next = p.with(&[("kappa", 40_000), ("tempo", 3)], &b).expect("ok");
        assert_eq!((next.kappa, next.tempo), (40_000, 3));
        assert_eq!(
            p.with(&[("tempo", 0)], &b),
            Err(ParamError::OutOfBounds {
                name: "tempo",
                value: 0,
                min: 1,
                max: 1_000
            })
        );
        assert_eq!(
            p.with(&[("kappa", 65_536)], &b).unwrap_err().to_string(),
            "kappa = 65536 is outside its bounds 0..=65535"
        );
        assert!(matches!(
            p.with(&[("nope", 1)], &b),
            Err(ParamError::Unknown(_))
        ));
        assert!(matches!(
            p.with(&[("min_burn", p.max_burn + 1)], &b),
            Err(ParamError::Inconsistent(_))
        ));
        assert!(matches!(
            p.with(&[("liquid_alpha", 1)], &b),
            Err(ParamError::Inconsistent(_))
        ));
        let narrow = Bounds::narrowed(&[("tempo".into(), 1, 10)]).expect("within");
        assert!(p.with(&[("tempo", 11)], &narrow).is_err());
        assert!(Bounds::narrowed(&[("tempo".into(), 0, 10)]).is_err());
        assert!(Bounds::narrowed(&[("tempo".into(), 5, 4)]).is_err());
    }
}
