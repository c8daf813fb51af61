//! Admission of inbound gossip before the application sees it: rate limits per origin and per
//! connected peer, and the split between priority and ordinary topics.

use std::time::Instant;

use libp2p::PeerId;

use crate::config::NetworkConfig;
use crate::rate_limit::RateLimiter;

/// Which queue a gossip message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Class {
    /// One of the configured priority topics (consensus traffic).
    Priority,
    /// Any other topic.
    Ordinary,
}

/// Why a gossip message was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limited {
    /// The peer that forwarded it exceeded its rate for this class.
    Peer,
    /// The key that signed it exceeded its rate.
    Origin,
}

/// Decides which gossip messages reach the application.
///
/// The origin is a signing key anyone can mint, so it alone bounds nothing; the forwarding peer
/// holds a connection, so its budget bounds what one connection can push, whatever keys it signs
/// with. Priority and ordinary topics have separate peer budgets so a flood on one cannot use up
/// the other.
pub(crate) struct GossipGate {
    priority_topics: Vec<String>,
    per_origin: RateLimiter<PeerId>,
    per_peer: RateLimiter<(PeerId, Class)>,
}

impl GossipGate {
    /// A gate with the limits and priority topics of `config`.
    pub(crate) fn new(config: &NetworkConfig) -> Self {
        Self {
            priority_topics: config.priority_topics.clone(),
            per_origin: RateLimiter::new(
                config.gossip_rate_per_origin,
                config.gossip_burst_per_origin,
            ),
            per_peer: RateLimiter::new(config.gossip_rate_per_peer, config.gossip_burst_per_peer),
        }
    }

    /// The class of an application topic.
    pub(crate) fn class(&self, topic: &str) -> Class {
        if self.priority_topics.iter().any(|t| t == topic) {
            Class::Priority
        } else {
            Class::Ordinary
        }
    }

    /// Admits one message of `class` forwarded by `peer` and signed by `origin` (if signed), or
    /// says which limit it hit.
    pub(crate) fn admit(
        &mut self,
        peer: PeerId,
        origin: Option<PeerId>,
        class: Class,
        now: Instant,
    ) -> Result<(), Limited> {
        if !self.per_peer.allow((peer, class), now) {
            return Err(Limited::Peer);
        }
        if !self.per_origin.allow(origin.unwrap_or(peer), now) {
            return Err(Limited::Origin);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> GossipGate {
        let config = NetworkConfig {
            gossip_rate_per_origin: 10,
            gossip_burst_per_origin: 10,
            gossip_rate_per_peer: 50,
            gossip_burst_per_peer: 100,
            priority_topics: vec!["consensus".into()],
            ..NetworkConfig::default()
        };
        GossipGate::new(&config)
    }

    #[test]
    fn rotating_origins_from_one_peer_are_bounded_by_the_peer_budget() {
        let mut gate = gate();
        let now = Instant::now();
        let attacker = PeerId::random();
        // 10,000 messages, each signed by a fresh key, all through one connection.
        let admitted = (0..10_000)
            .filter(|_| {
                gate.admit(attacker, Some(PeerId::random()), Class::Ordinary, now)
                    .is_ok()
            })
            .count();
        assert_eq!(admitted, 100, "only the peer's burst gets through");
        assert_eq!(
            gate.admit(attacker, Some(PeerId::random()), Class::Ordinary, now),
            Err(Limited::Peer)
        );
        // Another peer forwarding an honest origin is untouched.
        let honest = PeerId::random();
        let origin = PeerId::random();
        assert_eq!(
            gate.admit(honest, Some(origin), Class::Ordinary, now),
            Ok(())
        );
        // The attacker's priority budget is its own: consensus traffic it forwards still passes.
        assert_eq!(
            gate.admit(attacker, Some(origin), Class::Priority, now),
            Ok(())
        );
    }

    #[test]
    fn one_origin_through_many_peers_is_bounded_by_the_origin_budget() {
        let mut gate = gate();
        let now = Instant::now();
        let origin = PeerId::random();
        let admitted = (0..1_000)
            .filter(|_| {
                gate.admit(PeerId::random(), Some(origin), Class::Ordinary, now)
                    .is_ok()
            })
            .count();
        assert_eq!(admitted, 10);
        assert_eq!(
            gate.admit(PeerId::random(), Some(origin), Class::Ordinary, now),
            Err(Limited::Origin)
        );
    }

    #[test]
    fn topics_are_classed_by_exact_name() {
        let gate = gate();
        assert_eq!(gate.class("consensus"), Class::Priority);
        assert_eq!(gate.class("consensus2"), Class::Ordinary);
        assert_eq!(gate.class("tx"), Class::Ordinary);
    }
}
