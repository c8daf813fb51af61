//! The miner as a node service: answers queries and requests for its ads, relays other miners'
//! ads, and keeps its own advertised.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshmind_p2p::{GossipMessage, InboundQuery, NetworkHandle, PeerId, RequestResponder};
use meshmind_protocols::{Context, decode, v1};
use prost::Message;
use tokio_util::sync::CancellationToken;

use super::ads::{AdSchedule, advertise};
use super::service::Miner;
use crate::clock::now_ms;
use crate::service::{RequestKind, Service, ServiceFuture};
use crate::state::State;
use crate::topics::Topic;

/// How far ahead of this node's clock an ad may start.
const MAX_CLOCK_SKEW_MS: u64 = 5_000;

/// How often the finalized state is looked at for new stake.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// A miner and how it advertises, as one service of a node.
pub struct MinerService {
    miner: Arc<Miner>,
    network: NetworkHandle,
    ads: AdSchedule,
    economy: Option<Arc<Mutex<State>>>,
}

impl MinerService {
    /// `miner` on `network`, advertising as `ads` says, its callers' quotas following the
    /// finalized `economy` when there is one.
    pub fn new(
        miner: Arc<Miner>,
        network: NetworkHandle,
        ads: AdSchedule,
        economy: Option<Arc<Mutex<State>>>,
    ) -> Self {
        Self {
            miner,
            network,
            ads,
            economy,
        }
    }
}

/// Keeps `miner`'s quotas on the finalized `economy` until `cancel`.
async fn follow_stake(miner: Arc<Miner>, economy: Arc<Mutex<State>>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(FOLLOW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {
                let state = economy.lock().unwrap_or_else(|p| p.into_inner());
                miner.follow(&state);
            }
        }
    }
}

impl Service for MinerService {
    fn name(&self) -> &'static str {
        "miner"
    }

    fn topics(&self) -> Vec<Topic> {
        vec![Topic::Caps(self.miner.subnet())]
    }

    fn requests(&self) -> Vec<RequestKind> {
        vec![RequestKind::Caps]
    }

    fn answers_queries(&self) -> bool {
        true
    }

    fn on_gossip(&self, _topic: Topic, message: GossipMessage) {
        // Relays only well-formed, signed, current ads of this network and subnet, so the mesh
        // does not carry (and penalise this miner for) garbage.
        let context = Context {
            network_id: self.miner.network_id(),
            now_ms: now_ms(),
            max_clock_skew_ms: MAX_CLOCK_SKEW_MS,
        };
        let checked = decode::<v1::CapabilityAd>(&message.data)
            .map_err(|e| e.to_string())
            .and_then(|ad| context.check(&ad).map(|()| ad).map_err(|e| e.to_string()));
        match checked {
            Ok(ad) if ad.subnet == self.miner.subnet() => message.validation.accept(),
            Ok(_) => message.validation.reject(),
            Err(reason) => {
                tracing::debug!(%reason, "capability ad not relayed");
                message.validation.reject();
            }
        }
    }

    fn on_request(
        &self,
        _peer: PeerId,
        request: v1::sync_request::Body,
        responder: RequestResponder,
    ) {
        let answer = match request {
            v1::sync_request::Body::Caps(caps) => self.miner.answer_caps(&caps, now_ms()),
            _ => v1::SyncResponse {
                body: Some(v1::sync_response::Body::Error(v1::Error {
                    code: v1::ErrorCode::Unavailable as i32,
                    message: "the miner service answers only requests for its ads".into(),
                })),
            },
        };
        responder.respond(answer.encode_to_vec());
    }

    fn on_query(&self, query: InboundQuery) {
        let miner = self.miner.clone();
        tokio::spawn(async move { miner.serve(query).await });
    }

    fn run(self: Arc<Self>, cancel: CancellationToken) -> ServiceFuture {
        let follow = self
            .economy
            .clone()
            .map(|economy| follow_stake(self.miner.clone(), economy, cancel.clone()));
        let advertise = advertise(self.miner.clone(), self.network.clone(), self.ads, cancel);
        Box::pin(async move {
            match follow {
                Some(follow) => {
                    tokio::join!(follow, advertise);
                }
                None => advertise.await,
            }
        })
    }
}
