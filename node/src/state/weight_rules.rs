//! A subnet's rules for weight vectors, checked in Bittensor's order (length, registered, rate
//! limit, min weights, max weight; the permit is checked when a snapshot takes the vector), and
//! how a validator fits its own vector to them.

use meshmind_protocols::v1;

use super::{State, SubnetParams};

/// Why a subnet's rules refuse a weight vector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightRuleError {
    /// No such subnet.
    #[error("no subnet {0}")]
    UnknownSubnet(u32),
    /// UIDs and weights differ in number, a UID repeats, or one is not on the subnet.
    #[error("bad length: {0}")]
    Length(String),
    /// The validator is not registered on the subnet.
    #[error("the validator is not registered on the subnet")]
    NotRegistered,
    /// The validator's last vector counted too recently.
    #[error("rate limited: last vector at epoch {last}, one per {limit} epochs")]
    RateLimited {
        /// The epoch of its last vector.
        last: u64,
        /// The subnet's `weights_rate_limit`.
        limit: u64,
    },
    /// Fewer non-zero weights than the subnet asks for.
    #[error("{count} non-zero weights, the subnet asks for {min}")]
    TooFewWeights {
        /// Non-zero weights in the vector.
        count: usize,
        /// The least the subnet takes.
        min: usize,
    },
    /// One UID gets a larger share than the subnet allows.
    #[error("a weight of {share} / 65535 of the vector, above the subnet's {limit}")]
    WeightTooLarge {
        /// The largest share, of 65535.
        share: u64,
        /// The subnet's `max_weight_limit`.
        limit: u16,
    },
}

impl State {
    /// The UID of `reveal`'s validator and the row its vector records, or why the subnet's rules
    /// refuse it.
    pub fn check_weights(
        &self,
        reveal: &v1::WeightReveal,
    ) -> Result<(u32, Vec<(u32, u16)>), WeightRuleError> {
        let subnet = self
            .subnets
            .get(&reveal.subnet)
            .ok_or(WeightRuleError::UnknownSubnet(reveal.subnet))?;
        let n = subnet.neurons.len();
        if reveal.uids.len() != reveal.weights.len() {
            return Err(WeightRuleError::Length(format!(
                "{} uids, {} weights",
                reveal.uids.len(),
                reveal.weights.len()
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        for &uid in &reveal.uids {
            if uid as usize >= n {
                return Err(WeightRuleError::Length(format!(
                    "uid {uid} is not on the subnet ({n} UIDs)"
                )));
            }
            if !seen.insert(uid) {
                return Err(WeightRuleError::Length(format!("uid {uid} repeats")));
            }
        }
        let uid = super::Key::from_slice(&reveal.validator)
            .and_then(|key| subnet.uid_of(&key))
            .ok_or(WeightRuleError::NotRegistered)?;
        let last = subnet.neurons[uid as usize].last_update;
        let row: Vec<(u32, u16)> = reveal
            .uids
            .iter()
            .zip(&reveal.weights)
            .map(|(&u, &w)| (u, u16::try_from(w).unwrap_or(u16::MAX)))
            .collect();
        let keeps = |params: &SubnetParams| {
            if last > 0 && self.epoch.saturating_sub(last) < params.weights_rate_limit {
                return Err(WeightRuleError::RateLimited {
                    last,
                    limit: params.weights_rate_limit,
                });
            }
            check_row(params, &row, n)
        };
        match (keeps(&subnet.params), subnet.prior) {
            (Ok(()), _) => Ok((uid, row)),
            // Made before the validator could know the owner's change: the old rules do.
            (Err(e), Some((prior, until))) if self.epoch < until => {
                keeps(&prior).map_err(|_| e)?;
                Ok((uid, row))
            }
            (Err(e), _) => Err(e),
        }
    }
}

/// Checks the count and share rules on `row`, on a subnet of `n` UIDs.
fn check_row(params: &SubnetParams, row: &[(u32, u16)], n: usize) -> Result<(), WeightRuleError> {
    // No subnet asks for more weights than it has other neurons to weigh.
    let min = (params.min_allowed_weights as usize).min(n.saturating_sub(1));
    let count = row.iter().filter(|(_, w)| *w > 0).count();
    if count < min {
        return Err(WeightRuleError::TooFewWeights { count, min });
    }
    let sum: u64 = row.iter().map(|&(_, w)| u64::from(w)).sum();
    let max = row.iter().map(|&(_, w)| u64::from(w)).max().unwrap_or(0);
    if sum > 0 && max * u64::from(u16::MAX) > u64::from(params.max_weight_limit) * sum {
        return Err(WeightRuleError::WeightTooLarge {
            share: max * u64::from(u16::MAX) / sum,
            limit: params.max_weight_limit,
        });
    }
    Ok(())
}

/// `row` fitted to the `max_weight_limit` of a subnet of `n` UIDs: shares above it are cut to it
/// and the excess spread over the others in proportion, as often as that pushes another over. A
/// row that cannot fit (too few UIDs for the limit) comes back as it was.
pub fn fit_to_max_weight(params: &SubnetParams, row: &[(u32, u16)], n: usize) -> Vec<(u32, u16)> {
    let limit = f64::from(params.max_weight_limit) / f64::from(u16::MAX);
    let sum: f64 = row.iter().map(|&(_, w)| f64::from(w)).sum();
    let positive = row.iter().filter(|(_, w)| *w > 0).count();
    if sum == 0.0 || limit >= 1.0 || limit * positive as f64 <= 1.0 {
        return row.to_vec();
    }
    // A hair under the limit, so rounding down to u16 cannot push a share over it.
    let cap = limit * (1.0 - 1e-3);
    let mut shares: Vec<f64> = row.iter().map(|&(_, w)| f64::from(w) / sum).collect();
    for _ in 0..row.len() {
        let over: f64 = shares.iter().map(|&s| (s - cap).max(0.0)).sum();
        if over <= 0.0 {
            break;
        }
        let under: f64 = shares.iter().filter(|&&s| s < cap).sum();
        if under <= 0.0 {
            break;
        }
        for s in &mut shares {
            *s = if *s >= cap {
                cap
            } else {
                *s + over * *s / under
            };
        }
    }
    let top = shares.iter().copied().fold(0.0, f64::max);
    let fitted: Vec<(u32, u16)> = row
        .iter()
        .zip(&shares)
        .map(|(&(uid, _), &s)| (uid, (s / top * f64::from(u16::MAX)).floor() as u16))
        .collect();
    match check_row(params, &fitted, n) {
        Ok(()) => fitted,
        Err(_) => row.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_fitted_under_the_max_weight_and_keeps_its_order() {
        let params = SubnetParams {
            max_weight_limit: 26_214, // 0.4
            ..SubnetParams::default()
        };
        let row = vec![(0, 60_000), (1, 3_000), (2, 2_000), (3, 500)];
        assert!(matches!(
            check_row(&params, &row, 4),
            Err(WeightRuleError::WeightTooLarge { .. })
        ));
        let fitted = fit_to_max_weight(&params, &row, 4);
        check_row(&params, &fitted, 4).expect("fits");
        assert!(
            fitted[0].1 > fitted[1].1 && fitted[1].1 > fitted[2].1 && fitted[2].1 > fitted[3].1
        );
        // Two UIDs cannot both stay under 0.4: left as they were (and refused on chain).
        let two = vec![(0, 100), (1, 100)];
        assert_eq!(fit_to_max_weight(&params, &two, 2), two);
    }

    #[test]
    fn min_weights_never_ask_for_more_than_the_other_neurons() {
        let params = SubnetParams {
            min_allowed_weights: 8,
            ..SubnetParams::default()
        };
        let row = vec![(0, 1), (1, 1)];
        assert!(check_row(&params, &row, 3).is_ok());
        assert_eq!(
            check_row(&params, &row, 20),
            Err(WeightRuleError::TooFewWeights { count: 2, min: 8 })
        );
    }
}
