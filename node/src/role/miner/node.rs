//! The miner as a node service: answers queries and requests for its ads, relays other miners'
//! ads, and keeps its own advertised.

use std::sync::Arc;

use meshmind_p2p::{GossipMessage, InboundQuery, NetworkHandle, PeerId, RequestResponder};
use meshmind_protocols::v1;
use prost::Message;
use tokio_util::sync::CancellationToken;

use super::ads::{AdSchedule, advertise};
use super::service::Miner;
use crate::clock::now_ms;
use crate::service::{RequestKind, Service, ServiceFuture};
use crate::topics::Topic;

/// A miner and how it advertises, as one service of a node.
pub struct MinerService {
    miner: Arc<Miner>,
    network: NetworkHandle,
    ads: AdSchedule,
}

impl MinerService {
    /// `miner` on `network`, advertising as `ads` says.
    pub fn new(miner: Arc<Miner>, network: NetworkHandle, ads: AdSchedule) -> Self {
        Self {
            miner,
            network,
            ads,
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
        // Relays the subnet's ads; validators check them.
        message.validation.accept();
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
                    message: "a miner keeps no ledger".into(),
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
        Box::pin(advertise(
            self.miner.clone(),
            self.network.clone(),
            self.ads,
            cancel,
        ))
    }
}
