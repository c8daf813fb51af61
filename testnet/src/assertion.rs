//! The assertion language of scenarios:
//!
//! - `finalized_epoch >= 5 within 60s` (every validator; `on v2` for one node)
//! - `all ledgers agree` (every validator's snapshots are identical up to the lowest head)
//! - `finality stalls for 4s` (no running validator finalizes anything meanwhile)
//! - `finality gap <= 3s` (the longest a validator went without finalizing, in the status samples;
//!   `on v0` for one node)
//! - `peak rss_mb <= 400` (every running node's peak resident memory, from `/proc`)
//! - `round0 share >= 0.9` (of the epochs each validator committed, the share decided in round 0)
//! - `query success_rate >= 0.99` (over every query the timeline sent)
//! - `no evidence`, `evidence against v3`
//! - `v3 jailed` (in v0's finalized economy: jailed, so out of the set the head hands over to)
//! - `validator v4 in set within 30s`, `validator v1 out of set within 30s` (in the set v0's
//!   finalized head hands over to, and the node's own consensus votes, or neither)
//! - `miner m3 weight_rank <= 2`, `miner m4 weight == 0` (in v0's latest weight vector; `on v2`
//!   for another validator's, `on every validator` for each running validator's)
//! - `miner m1 stake > 0` (behind its hotkey in v0's finalized economy: emission it earned),
//!   `miner m1 stake > miner m4`
//! - `embedding cosine >= 0.999` (a text embedded through v0's `/v1/embeddings` against this
//!   tool's own run of the model)

use std::time::Duration;

use crate::scenario::parse_duration;

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `==`
    Eq,
}

impl Cmp {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            ">=" => Self::Ge,
            "<=" => Self::Le,
            ">" => Self::Gt,
            "<" => Self::Lt,
            "==" => Self::Eq,
            other => return Err(format!("{other:?} is not a comparison (>=, <=, >, <, ==)")),
        })
    }

    /// Whether `left <self> right`.
    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Self::Ge => left >= right,
            Self::Le => left <= right,
            Self::Gt => left > right,
            Self::Lt => left < right,
            Self::Eq => (left - right).abs() < f64::EPSILON,
        }
    }
}

impl std::fmt::Display for Cmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ge => ">=",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Lt => "<",
            Self::Eq => "==",
        })
    }
}

/// One parsed assertion.
#[derive(Debug, Clone, PartialEq)]
pub enum Assertion {
    /// Finalized epoch of every validator (or one node) compared, waiting up to `within`.
    Finalized {
        /// Comparison.
        cmp: Cmp,
        /// Epoch.
        epoch: u64,
        /// How long to wait for it to hold.
        within: Duration,
        /// One node, or every validator.
        node: Option<String>,
    },
    /// No running validator finalizes anything for this long (e.g. during a partition).
    Stalls(Duration),
    /// The longest a sampled validator went without finalizing a new epoch, compared.
    FinalityGap {
        /// Comparison.
        cmp: Cmp,
        /// The bound.
        gap: Duration,
        /// One node, or every validator.
        node: Option<String>,
    },
    /// Of the epochs each running validator committed, the share decided in round 0, compared.
    RoundZero {
        /// Comparison.
        cmp: Cmp,
        /// The share, 0 to 1.
        share: f64,
    },
    /// Every running node's peak resident memory (`VmHWM`), in MiB, compared.
    PeakRss {
        /// Comparison.
        cmp: Cmp,
        /// The bound.
        mib: u64,
    },
    /// Every validator's ledger is identical up to the lowest head.
    LedgersAgree,
    /// Share of successful queries.
    QuerySuccess {
        /// Comparison.
        cmp: Cmp,
        /// Share, 0..=1.
        rate: f64,
    },
    /// No validator holds evidence.
    NoEvidence,
    /// Some validator holds evidence against this node.
    EvidenceAgainst(String),
    /// This validator is jailed in v0's finalized economy.
    Jailed(String),
    /// A node is (or is not) in the finalizing set: in the set v0's head hands over to, and
    /// voting by its own status; waiting up to `within`.
    InSet {
        /// The node.
        node: String,
        /// In (`true`) or out.
        member: bool,
        /// How long to wait for it to hold.
        within: Duration,
    },
    /// A miner's rank by weight (1 = highest) in the latest vector of `on`.
    WeightRank {
        /// Miner.
        miner: String,
        /// Comparison.
        cmp: Cmp,
        /// Rank.
        rank: u64,
        /// Whose vectors.
        on: Judges,
    },
    /// A miner's weight (u16) in the latest vector of `on`.
    Weight {
        /// Miner.
        miner: String,
        /// Comparison.
        cmp: Cmp,
        /// Weight.
        weight: u64,
        /// Whose vectors.
        on: Judges,
    },
    /// The stake behind one miner's hotkey compared to another's, in v0's finalized economy.
    StakeVs {
        /// Miner.
        miner: String,
        /// Comparison.
        cmp: Cmp,
        /// The other miner.
        other: String,
    },
    /// The cosine between a text's vector from v0's `/v1/embeddings` and the model's own.
    EmbeddingCosine {
        /// Comparison.
        cmp: Cmp,
        /// Cosine.
        cosine: f64,
    },
    /// The stake behind a miner's hotkey in v0's finalized economy.
    Stake {
        /// Miner.
        miner: String,
        /// Comparison.
        cmp: Cmp,
        /// Amount.
        amount: u64,
    },
}

/// Whose weight vectors an assertion reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judges {
    /// One validator's (`on v2`; v0's when not said).
    Node(String),
    /// Each running validator's (`on every validator`).
    Every,
}

impl Judges {
    fn parse(words: &[&str]) -> Result<Self, String> {
        match words {
            [] => Ok(Self::Node("v0".into())),
            ["on", "every", "validator"] => Ok(Self::Every),
            ["on", "every"] => Err("on every validator, or on NODE".into()),
            ["on", node] => Ok(Self::Node((*node).to_string())),
            other => Err(format!(
                "unexpected {:?} (on NODE, on every validator)",
                other.join(" ")
            )),
        }
    }
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a number"))
}

impl Assertion {
    /// Parses one assertion.
    pub fn parse(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["finalized_epoch", cmp, epoch, rest @ ..] => {
                let cmp = Cmp::parse(cmp)?;
                let epoch = number(epoch)?;
                let mut within = Duration::from_secs(60);
                let mut node = None;
                let mut rest = rest;
                while !rest.is_empty() {
                    match rest {
                        ["within", d, tail @ ..] => {
                            within = parse_duration(d)?;
                            rest = tail;
                        }
                        ["on", n, tail @ ..] => {
                            node = Some((*n).to_string());
                            rest = tail;
                        }
                        other => {
                            return Err(format!(
                                "unexpected {:?} (within D, on NODE)",
                                other.join(" ")
                            ));
                        }
                    }
                }
                Ok(Self::Finalized {
                    cmp,
                    epoch,
                    within,
                    node,
                })
            }
            ["all", "ledgers", "agree"] => Ok(Self::LedgersAgree),
            ["finality", "stalls", "for", d] => Ok(Self::Stalls(parse_duration(d)?)),
            ["finality", "gap", cmp, d, rest @ ..] => Ok(Self::FinalityGap {
                cmp: Cmp::parse(cmp)?,
                gap: parse_duration(d)?,
                node: match rest {
                    [] => None,
                    ["on", node] => Some((*node).to_string()),
                    other => return Err(format!("unexpected {:?} (on NODE)", other.join(" "))),
                },
            }),
            ["round0", "share", cmp, share] => {
                let share: f64 = number(share)?;
                if !(0.0..=1.0).contains(&share) {
                    return Err("round0 share is between 0 and 1".into());
                }
                Ok(Self::RoundZero {
                    cmp: Cmp::parse(cmp)?,
                    share,
                })
            }
            ["peak", "rss_mb", cmp, mib] => Ok(Self::PeakRss {
                cmp: Cmp::parse(cmp)?,
                mib: number(mib)?,
            }),
            ["query", "success_rate", cmp, rate] => {
                let rate: f64 = number(rate)?;
                if !(0.0..=1.0).contains(&rate) {
                    return Err("success_rate is between 0 and 1".into());
                }
                Ok(Self::QuerySuccess {
                    cmp: Cmp::parse(cmp)?,
                    rate,
                })
            }
            ["no", "evidence"] => Ok(Self::NoEvidence),
            ["evidence", "against", node] => Ok(Self::EvidenceAgainst((*node).to_string())),
            [node, "jailed"] => Ok(Self::Jailed((*node).to_string())),
            ["validator", node, "in", "set", rest @ ..]
            | ["validator", node, "out", "of", "set", rest @ ..] => {
                let within = match rest {
                    [] => Duration::ZERO,
                    ["within", d] => parse_duration(d)?,
                    other => return Err(format!("unexpected {:?} (within D)", other.join(" "))),
                };
                Ok(Self::InSet {
                    node: (*node).to_string(),
                    member: words[2] == "in",
                    within,
                })
            }
            ["miner", miner, "weight_rank", cmp, rank, on @ ..] => Ok(Self::WeightRank {
                miner: (*miner).to_string(),
                cmp: Cmp::parse(cmp)?,
                rank: number(rank)?,
                on: Judges::parse(on)?,
            }),
            ["miner", miner, "weight", cmp, weight, on @ ..] => Ok(Self::Weight {
                miner: (*miner).to_string(),
                cmp: Cmp::parse(cmp)?,
                weight: number(weight)?,
                on: Judges::parse(on)?,
            }),
            ["miner", miner, "stake", cmp, "miner", other] => Ok(Self::StakeVs {
                miner: (*miner).to_string(),
                cmp: Cmp::parse(cmp)?,
                other: (*other).to_string(),
            }),
            ["embedding", "cosine", cmp, cosine] => Ok(Self::EmbeddingCosine {
                cmp: Cmp::parse(cmp)?,
                cosine: number(cosine)?,
            }),
            ["miner", miner, "stake", cmp, amount] => Ok(Self::Stake {
                miner: (*miner).to_string(),
                cmp: Cmp::parse(cmp)?,
                amount: number(amount)?,
            }),
            _ => Err(format!(
                "{text:?}: unknown assertion (finalized_epoch, finality stalls for, finality gap, \
                 round0 share, peak rss_mb, all ledgers agree, \
                 query success_rate, no evidence, evidence against, NODE jailed, \
                 validator NODE in set, validator NODE out of set, \
                 miner NAME weight_rank|weight|stake, \
                 embedding cosine)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses() {
        assert_eq!(
            Assertion::parse("finalized_epoch >= 5 within 30s on v2").unwrap(),
            Assertion::Finalized {
                cmp: Cmp::Ge,
                epoch: 5,
                within: Duration::from_secs(30),
                node: Some("v2".into())
            }
        );
        assert_eq!(
            Assertion::parse("all ledgers agree").unwrap(),
            Assertion::LedgersAgree
        );
        assert_eq!(
            Assertion::parse("finality gap <= 3s").unwrap(),
            Assertion::FinalityGap {
                cmp: Cmp::Le,
                gap: Duration::from_secs(3),
                node: None
            }
        );
        assert_eq!(
            Assertion::parse("finality gap <= 2s on v0").unwrap(),
            Assertion::FinalityGap {
                cmp: Cmp::Le,
                gap: Duration::from_secs(2),
                node: Some("v0".into())
            }
        );
        assert_eq!(
            Assertion::parse("round0 share >= 0.9").unwrap(),
            Assertion::RoundZero {
                cmp: Cmp::Ge,
                share: 0.9
            }
        );
        assert_eq!(
            Assertion::parse("peak rss_mb <= 400").unwrap(),
            Assertion::PeakRss {
                cmp: Cmp::Le,
                mib: 400
            }
        );
        assert_eq!(
            Assertion::parse("query success_rate >= 0.99").unwrap(),
            Assertion::QuerySuccess {
                cmp: Cmp::Ge,
                rate: 0.99
            }
        );
        assert_eq!(
            Assertion::parse("no evidence").unwrap(),
            Assertion::NoEvidence
        );
        assert_eq!(
            Assertion::parse("evidence against v3").unwrap(),
            Assertion::EvidenceAgainst("v3".into())
        );
        assert_eq!(
            Assertion::parse("v3 jailed").unwrap(),
            Assertion::Jailed("v3".into())
        );
        assert_eq!(
            Assertion::parse("validator v4 in set within 30s").unwrap(),
            Assertion::InSet {
                node: "v4".into(),
                member: true,
                within: Duration::from_secs(30)
            }
        );
        assert_eq!(
            Assertion::parse("validator v1 out of set").unwrap(),
            Assertion::InSet {
                node: "v1".into(),
                member: false,
                within: Duration::ZERO
            }
        );
        assert!(Assertion::parse("validator v1 in set for 3s").is_err());
        assert_eq!(
            Assertion::parse("miner m1 stake > 0").unwrap(),
            Assertion::Stake {
                miner: "m1".into(),
                cmp: Cmp::Gt,
                amount: 0
            }
        );
        assert_eq!(
            Assertion::parse("miner m3 weight_rank <= 2").unwrap(),
            Assertion::WeightRank {
                miner: "m3".into(),
                cmp: Cmp::Le,
                rank: 2,
                on: Judges::Node("v0".into())
            }
        );
        assert_eq!(
            Assertion::parse("miner m4 weight == 0 on every validator").unwrap(),
            Assertion::Weight {
                miner: "m4".into(),
                cmp: Cmp::Eq,
                weight: 0,
                on: Judges::Every
            }
        );
        assert_eq!(
            Assertion::parse("miner m1 weight_rank <= 3 on v2").unwrap(),
            Assertion::WeightRank {
                miner: "m1".into(),
                cmp: Cmp::Le,
                rank: 3,
                on: Judges::Node("v2".into())
            }
        );
        assert_eq!(
            Assertion::parse("miner m1 stake > miner m4").unwrap(),
            Assertion::StakeVs {
                miner: "m1".into(),
                cmp: Cmp::Gt,
                other: "m4".into()
            }
        );
        assert_eq!(
            Assertion::parse("embedding cosine >= 0.999").unwrap(),
            Assertion::EmbeddingCosine {
                cmp: Cmp::Ge,
                cosine: 0.999
            }
        );
        assert!(
            Assertion::parse("miner m1 weight == 0 on every")
                .unwrap_err()
                .contains("on every validator")
        );
    }

    #[test]
    fn bad_assertions_say_why() {
        assert!(
            Assertion::parse("finalized_epoch => 5")
                .unwrap_err()
                .contains("comparison")
        );
        assert!(
            Assertion::parse("finalized_epoch >= x")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            Assertion::parse("finalized_epoch >= 5 within 5")
                .unwrap_err()
                .contains("unit")
        );
        assert!(
            Assertion::parse("query success_rate >= 2")
                .unwrap_err()
                .contains("between")
        );
        assert!(
            Assertion::parse("everything is fine")
                .unwrap_err()
                .contains("unknown")
        );
    }

    #[test]
    fn comparisons_hold_as_written() {
        assert!(Cmp::Ge.holds(5.0, 5.0));
        assert!(!Cmp::Gt.holds(5.0, 5.0));
        assert!(Cmp::Le.holds(1.0, 2.0));
        assert!(Cmp::Lt.holds(1.0, 2.0) && !Cmp::Lt.holds(2.0, 2.0));
        assert!(Cmp::Eq.holds(0.0, 0.0) && !Cmp::Eq.holds(0.0, 1.0));
    }
}
