//! Validator sets with stake, quorum arithmetic and proposer selection.

/// Index of a validator in its set.
pub type ValidatorIndex = usize;

/// The validators of one height and their stake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    powers: Vec<u64>,
    total: u128,
}

impl ValidatorSet {
    /// A set with these stakes; validators with zero stake hold no power.
    pub fn new(powers: Vec<u64>) -> Self {
        let total = powers.iter().map(|&p| u128::from(p)).sum();
        Self { powers, total }
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.powers.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.powers.is_empty()
    }

    /// Stake of one validator (0 if unknown).
    pub fn power(&self, index: ValidatorIndex) -> u128 {
        self.powers.get(index).map_or(0, |&p| u128::from(p))
    }

    /// Total stake.
    pub fn total(&self) -> u128 {
        self.total
    }

    /// Whether `power` is more than two thirds of the total: `3 * power > 2 * total`.
    pub fn is_quorum(&self, power: u128) -> bool {
        3 * power > 2 * self.total
    }

    /// Whether `power` is more than one third of the total (at least one honest validator).
    pub fn is_one_third(&self, power: u128) -> bool {
        3 * power > self.total
    }

    /// The proposer of `(height, round)`: stake-weighted, deterministic, rotating with the round.
    pub fn proposer(&self, height: u64, round: u32) -> ValidatorIndex {
        if self.total == 0 {
            return 0;
        }
        // A pseudo-random point on the stake line, drawn afresh for every (height, round), so each
        // round's proposer is chosen in proportion to stake whatever the total is. (A fixed stride
        // would not rotate at all when the total divides it: one silent proposer would then halt
        // its height for good.)
        let high = mix64(height ^ mix64(u64::from(round)));
        let low = mix64(high ^ 0x6A09_E667_F3BC_C909);
        let mut point = ((u128::from(high) << 64) | u128::from(low)) % self.total;
        for (index, &power) in self.powers.iter().enumerate() {
            let power = u128::from(power);
            if point < power {
                return index;
            }
            point -= power;
        }
        self.powers.len() - 1
    }
}

/// The splitmix64 finalizer: a bijection of u64 that scatters nearby inputs.
pub(crate) fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_needs_strictly_more_than_two_thirds() {
        let set = ValidatorSet::new(vec![1, 1, 1]);
        assert!(!set.is_quorum(2), "exactly 2/3 is not a quorum");
        assert!(set.is_quorum(3));
        let set = ValidatorSet::new(vec![100, 100, 100, 300]);
        assert!(!set.is_quorum(400), "400 of 600 is exactly 2/3");
        assert!(set.is_quorum(401));
        assert!(!set.is_one_third(200));
        assert!(set.is_one_third(201));
    }

    #[test]
    fn proposers_follow_stake() {
        let set = ValidatorSet::new(vec![10, 30, 60]);
        let mut counts = [0u32; 3];
        for height in 0..200 {
            for round in 0..10 {
                counts[set.proposer(height, round)] += 1;
            }
        }
        // 2,000 draws: shares near 10 %, 30 %, 60 %.
        assert!((100..300).contains(&counts[0]), "{counts:?}");
        assert!((450..750).contains(&counts[1]), "{counts:?}");
        assert!((1000..1400).contains(&counts[2]), "{counts:?}");
        assert_eq!(set.proposer(5, 3), set.proposer(5, 3));
    }

    #[test]
    fn the_proposer_rotates_with_the_round_whatever_the_total_stake() {
        // Totals that share factors with common multiplicative constants included: 103 divides
        // 0xBF58_476D_1CE4_E5B9, which once kept one proposer for every round of a height.
        for total in [103u64, 3, 7, 64, 1 << 20, 1_000_003] {
            let powers = vec![total / 4, total / 4, total - 2 * (total / 4)];
            let set = ValidatorSet::new(powers.clone());
            for height in 0..50 {
                let mut seen = [false; 3];
                for round in 0..40 {
                    seen[set.proposer(height, round)] = true;
                }
                assert!(
                    seen.iter().zip(&powers).all(|(s, p)| *s || *p == 0),
                    "total {total}, height {height}: proposers {seen:?} in 40 rounds"
                );
            }
        }
    }
}
