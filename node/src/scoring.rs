//! A validator's view of miner quality: an exponential moving average of correctness and speed.

use std::collections::BTreeMap;
use std::time::Duration;

use meshmind_protocols::PublicKey;

/// How samples become scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreConfig {
    /// Weight of the newest sample in the moving average (0..=1).
    pub alpha: f64,
    /// How much of a correct answer's value its latency can take away (0..=1): an answer at the
    /// deadline scores `1 - latency_weight`, an instant one scores 1.
    pub latency_weight: f64,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            alpha: 0.2,
            latency_weight: 0.5,
        }
    }
}

/// What happened to one challenge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// A correct, validly signed answer after this long.
    Correct {
        /// Time to answer.
        latency: Duration,
        /// The query's deadline.
        deadline: Duration,
    },
    /// A validly signed answer that its scorer judged worth `quality` (in `(0, 1]`) of a perfect
    /// one, after this long.
    Graded {
        /// The scorer's judgement.
        quality: f64,
        /// Time to answer.
        latency: Duration,
        /// The query's deadline.
        deadline: Duration,
    },
    /// A wrong answer, a bad signature or garbage.
    Wrong,
    /// No answer within the deadline, or unreachable.
    Missed,
}

impl Outcome {
    /// The sample in `[0, 1]` this outcome contributes.
    pub fn sample(&self, config: &ScoreConfig) -> f64 {
        match *self {
            Outcome::Correct { latency, deadline } => Outcome::Graded {
                quality: 1.0,
                latency,
                deadline,
            }
            .sample(config),
            Outcome::Graded {
                quality,
                latency,
                deadline,
            } => {
                if deadline.is_zero() || latency > deadline || !quality.is_finite() {
                    return 0.0;
                }
                let fraction = latency.as_secs_f64() / deadline.as_secs_f64();
                let speed = 1.0 - config.latency_weight.clamp(0.0, 1.0) * fraction.clamp(0.0, 1.0);
                quality.clamp(0.0, 1.0) * speed
            }
            Outcome::Wrong | Outcome::Missed => 0.0,
        }
    }
}

/// Scores per miner, keyed by what identifies it (its hotkey on a validator).
#[derive(Debug, Clone)]
pub struct Scoreboard<K = PublicKey> {
    config: ScoreConfig,
    scores: BTreeMap<K, f64>,
}

impl<K> Default for Scoreboard<K> {
    fn default() -> Self {
        Self {
            config: ScoreConfig::default(),
            scores: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone> Scoreboard<K> {
    /// An empty board; every miner starts at 0 and must earn its score.
    pub fn new(config: ScoreConfig) -> Self {
        Self {
            config,
            scores: BTreeMap::new(),
        }
    }

    /// Folds one challenge outcome into `miner`'s score.
    pub fn record(&mut self, miner: K, outcome: Outcome) {
        let alpha = self.config.alpha.clamp(0.0, 1.0);
        let sample = outcome.sample(&self.config);
        let score = self.scores.entry(miner).or_insert(0.0);
        *score = alpha * sample + (1.0 - alpha) * *score;
    }

    /// Forgets a miner.
    pub fn remove(&mut self, miner: &K) {
        self.scores.remove(miner);
    }

    /// The score of `miner` (0 if never seen).
    pub fn score(&self, miner: &K) -> f64 {
        self.scores.get(miner).copied().unwrap_or(0.0)
    }

    /// Miners ranked best first (ties: lower key first).
    pub fn ranking(&self) -> Vec<K> {
        let mut miners: Vec<K> = self.scores.keys().cloned().collect();
        miners.sort_by(|a, b| self.score(b).total_cmp(&self.score(a)).then(a.cmp(b)));
        miners
    }

    /// The weights: scores scaled so the largest is 65535, keys ascending, zeros left out.
    pub fn weights(&self) -> Vec<(K, u16)> {
        let max = self.scores.values().copied().fold(0.0f64, f64::max);
        if max <= 0.0 {
            return Vec::new();
        }
        self.scores
            .iter()
            .filter_map(|(miner, &score)| {
                let weight = (score / max * f64::from(u16::MAX)).round();
                (weight >= 1.0).then(|| (miner.clone(), weight.min(f64::from(u16::MAX)) as u16))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: Duration = Duration::from_millis(1000);

    fn correct(ms: u64) -> Outcome {
        Outcome::Correct {
            latency: Duration::from_millis(ms),
            deadline: DEADLINE,
        }
    }

    #[test]
    fn fast_honest_beats_slow_honest_beats_wrong_beats_offline() {
        let mut board = Scoreboard::<u32>::new(ScoreConfig::default());
        for round in 0..20 {
            board.record(1, correct(10));
            board.record(2, correct(800));
            board.record(3, Outcome::Wrong);
            // Miner 4 answers the first two rounds, then goes offline.
            board.record(
                4,
                if round < 2 {
                    correct(10)
                } else {
                    Outcome::Missed
                },
            );
        }
        assert_eq!(board.ranking(), vec![1, 2, 4, 3]);
        assert!(board.score(&3) == 0.0);
        assert!(
            board.score(&4) < 0.02,
            "offline decays: {}",
            board.score(&4)
        );
        let weights = board.weights();
        assert_eq!(weights.first(), Some(&(1, u16::MAX)));
        assert!(
            weights.iter().all(|&(uid, _)| uid != 3),
            "zero scores get no weight"
        );
    }

    #[test]
    fn latency_past_the_deadline_scores_nothing() {
        let config = ScoreConfig::default();
        assert_eq!(correct(1001).sample(&config), 0.0);
        assert!((correct(0).sample(&config) - 1.0).abs() < 1e-12);
        assert!((correct(1000).sample(&config) - 0.5).abs() < 1e-12);
        assert!(Scoreboard::<u32>::default().weights().is_empty());
    }
}
