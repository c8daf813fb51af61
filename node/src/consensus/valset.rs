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
        // A point on the stake line that moves by a large odd stride each round and height, so every
        // validator proposes in proportion to its stake over many rounds.
        let mix = u128::from(height)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(u128::from(round).wrapping_mul(0xBF58_476D_1CE4_E5B9));
        let mut point = mix % self.total;
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
}
