//! The gossip topics of a meshmind network, typed.
//!
//! The p2p layer prefixes every topic with `meshmind/<network>/` on the way out and strips it on the
//! way in, so these names are the part after that prefix. Also the DHT key miners provide their ads
//! under.

use std::fmt;
use std::str::FromStr;

/// One gossip topic of the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Signed capability ads of the miners of a subnet (`caps/<subnet>`).
    Caps(u32),
    /// Weight commitments of a subnet's validators (`weights/<subnet>/commit`).
    WeightCommit(u32),
    /// Weight reveals of a subnet's validators (`weights/<subnet>/reveal`).
    WeightReveal(u32),
    /// Proposals and votes of the finality gadget (`consensus`).
    Consensus,
    /// Proofs that a validator equivocated (`evidence`), apart from the votes so a flood of one
    /// cannot crowd out the other.
    Evidence,
    /// Signed economy transactions (`tx`).
    Tx,
}

/// What a topic carries, whatever its subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TopicKind {
    /// Capability ads (`caps/<subnet>`).
    Caps,
    /// Weight commitments (`weights/<subnet>/commit`).
    WeightCommit,
    /// Weight reveals (`weights/<subnet>/reveal`).
    WeightReveal,
    /// Proposals and votes.
    Consensus,
    /// Evidence.
    Evidence,
    /// Transactions.
    Tx,
}

impl Topic {
    /// What it carries.
    pub fn kind(&self) -> TopicKind {
        match self {
            Topic::Caps(_) => TopicKind::Caps,
            Topic::WeightCommit(_) => TopicKind::WeightCommit,
            Topic::WeightReveal(_) => TopicKind::WeightReveal,
            Topic::Consensus => TopicKind::Consensus,
            Topic::Evidence => TopicKind::Evidence,
            Topic::Tx => TopicKind::Tx,
        }
    }

    /// The topics of `subnet`: its capability ads and its weights.
    pub fn subnet_topics(subnet: u32) -> [Topic; 3] {
        [
            Topic::Caps(subnet),
            Topic::WeightCommit(subnet),
            Topic::WeightReveal(subnet),
        ]
    }

    /// The topics that only nodes keeping the ledger (validators, observers) subscribe to.
    pub const LEDGER: [Topic; 3] = [Topic::Consensus, Topic::Evidence, Topic::Tx];

    /// The topics the network layer hands over on its priority queue, ahead of every other
    /// event: the finality gadget's proposals and votes, which floods elsewhere must not delay.
    pub const PRIORITY: [Topic; 1] = [Topic::Consensus];

    /// The subnet this topic belongs to, if any.
    pub fn subnet(&self) -> Option<u32> {
        match self {
            Topic::Caps(s) | Topic::WeightCommit(s) | Topic::WeightReveal(s) => Some(*s),
            Topic::Consensus | Topic::Evidence | Topic::Tx => None,
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Caps(subnet) => write!(f, "caps/{subnet}"),
            Topic::WeightCommit(subnet) => write!(f, "weights/{subnet}/commit"),
            Topic::WeightReveal(subnet) => write!(f, "weights/{subnet}/reveal"),
            Topic::Consensus => f.write_str("consensus"),
            Topic::Evidence => f.write_str("evidence"),
            Topic::Tx => f.write_str("tx"),
        }
    }
}

/// The DHT key under which miners of `task` on `subnet` of the network tagged `network` provide
/// their ads (a key, not a gossip topic).
pub fn caps_key(network: &str, subnet: u32, task: &str) -> [u8; 32] {
    *blake3::hash(format!("caps/{network}/{subnet}/{task}").as_bytes()).as_bytes()
}

/// A topic name that is not one of the application's topics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown topic {0:?}")]
pub struct UnknownTopic(pub String);

impl FromStr for Topic {
    type Err = UnknownTopic;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownTopic(name.to_string());
        let subnet = |s: &str| -> Result<u32, UnknownTopic> {
            // Canonical decimal only, so every topic has exactly one name.
            if s.is_empty()
                || (s.len() > 1 && s.starts_with('0'))
                || !s.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(unknown());
            }
            s.parse().map_err(|_| unknown())
        };
        match name {
            "consensus" => return Ok(Topic::Consensus),
            "evidence" => return Ok(Topic::Evidence),
            "tx" => return Ok(Topic::Tx),
            _ => {}
        }
        if let Some(rest) = name.strip_prefix("caps/") {
            return subnet(rest).map(Topic::Caps);
        }
        if let Some(rest) = name.strip_prefix("weights/") {
            if let Some(s) = rest.strip_suffix("/commit") {
                return subnet(s).map(Topic::WeightCommit);
            }
            if let Some(s) = rest.strip_suffix("/reveal") {
                return subnet(s).map(Topic::WeightReveal);
            }
        }
        Err(unknown())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_wire_names() {
        assert_eq!(Topic::Caps(1).to_string(), "caps/1");
        assert_eq!(Topic::WeightCommit(7).to_string(), "weights/7/commit");
        assert_eq!(Topic::WeightReveal(7).to_string(), "weights/7/reveal");
        assert_eq!(Topic::Consensus.to_string(), "consensus");
        assert_eq!(Topic::Evidence.to_string(), "evidence");
        assert_eq!(Topic::Tx.to_string(), "tx");
    }

    #[test]
    fn every_topic_round_trips() {
        let all = [
            Topic::Caps(0),
            Topic::Caps(u32::MAX),
            Topic::WeightCommit(3),
            Topic::WeightReveal(3),
            Topic::Consensus,
            Topic::Evidence,
            Topic::Tx,
        ];
        for topic in all {
            assert_eq!(topic.to_string().parse::<Topic>(), Ok(topic));
        }
    }

    #[test]
    fn other_names_are_refused() {
        for name in [
            "",
            "caps/",
            "caps/01",
            "caps/+1",
            "caps/4294967296",
            "caps/1/x",
            "weights/1",
            "weights//commit",
            "weights/1/commits",
            "Consensus",
            "tx/",
            "evidence/",
        ] {
            assert!(name.parse::<Topic>().is_err(), "{name:?} parsed");
        }
    }
}
