//! The network layer's own metrics, beside libp2p's.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::event::KindLabel;

/// Counters of what the network layer dropped or refused.
#[derive(Clone, Default)]
pub(crate) struct P2pMetrics {
    /// Events not delivered because the application's queue was full, by kind.
    pub events_dropped: Family<KindLabel, Counter>,
    /// Gossip messages ignored at a rate limit, by the limit (`peer` or `origin`).
    pub gossip_rate_limited: Family<KindLabel, Counter>,
}

impl P2pMetrics {
    /// Creates the counters and registers them.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "events_dropped",
            "Network events dropped because the application's queue was full",
            metrics.events_dropped.clone(),
        );
        registry.register(
            "gossip_rate_limited",
            "Gossip messages ignored because their forwarding peer or their origin exceeded its rate",
            metrics.gossip_rate_limited.clone(),
        );
        metrics
    }
}
