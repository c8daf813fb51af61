//! The miner's capability ads on the network: provided in the DHT and (optionally) published on the
//! subnet's caps topic, refreshed every third of their lifetime.

use std::sync::Arc;
use std::time::Duration;

use meshmind_p2p::NetworkHandle;
use prost::Message;
use tokio_util::sync::CancellationToken;

use super::service::Miner;
use crate::clock::now_ms;
use crate::topics::{Topic, caps_key};

/// How a miner advertises.
#[derive(Clone, Copy, Debug)]
pub struct AdSchedule {
    /// Lifetime of each ad in milliseconds.
    pub ttl_ms: u64,
    /// Whether ads are also published on gossip (they are always provided in the DHT).
    pub gossip: bool,
}

/// Advertises `miner` until `cancel` is cancelled.
pub async fn advertise(
    miner: Arc<Miner>,
    network: NetworkHandle,
    schedule: AdSchedule,
    cancel: CancellationToken,
) {
    let every = Duration::from_millis((schedule.ttl_ms / 3).max(500));
    let subnet = miner.subnet();
    loop {
        let addrs: Vec<String> = network
            .listen_addrs()
            .await
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        let query_addr = network
            .query_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        for ad in miner.capability_ads(now_ms(), schedule.ttl_ms, &addrs, &query_addr) {
            let key = caps_key(network.network(), subnet, &ad.task);
            if let Err(e) = network.provide(&key).await {
                tracing::debug!(error = %e, "ad not provided in the DHT yet");
            }
            if !schedule.gossip {
                continue;
            }
            if let Err(e) = network
                .publish(&Topic::Caps(subnet).to_string(), ad.encode_to_vec())
                .await
            {
                tracing::debug!(error = %e, "ad not published yet");
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
