//! What a node runs: services, each declaring the gossip topics, sync request kinds and queries it
//! handles, and a background loop stopped by one cancellation token.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use meshmind_p2p::{GossipMessage, InboundQuery, PeerId, RequestResponder};
use meshmind_protocols::v1;
use prost::Message;
use tokio_util::sync::CancellationToken;

use crate::topics::{Topic, TopicKind};

/// A boxed future a service's loop runs as.
pub type ServiceFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// An encoded `/sync/1` answer that carries only an error.
pub fn sync_error(code: v1::ErrorCode, message: impl Into<String>) -> Vec<u8> {
    v1::SyncResponse {
        body: Some(v1::sync_response::Body::Error(v1::Error {
            code: code as i32,
            message: message.into(),
        })),
    }
    .encode_to_vec()
}

/// The kinds of `/sync/1` requests, as peers send them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// A range of finalized snapshots with their certificates.
    Range,
    /// The ledger head.
    Status,
    /// A batch of resent consensus messages.
    Consensus,
    /// A miner's capability ads for a subnet.
    Caps,
}

impl RequestKind {
    /// The kind of a request body.
    pub fn of(body: &v1::sync_request::Body) -> Self {
        use v1::sync_request::Body;
        match body {
            Body::Range(_) => RequestKind::Range,
            Body::Status(_) => RequestKind::Status,
            Body::Consensus(_) => RequestKind::Consensus,
            Body::Caps(_) => RequestKind::Caps,
        }
    }
}

/// One part of a node: the traffic it handles and the loop it runs.
///
/// The node routes each gossip topic, request kind and the query plane to at most one service;
/// handlers run on the dispatch task, so they hand slow work to tasks of their own.
pub trait Service: Send + Sync + 'static {
    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// The gossip topics this service handles (the node subscribes to them).
    fn topics(&self) -> Vec<Topic> {
        Vec::new()
    }

    /// Kinds of subnet topics this service takes for every subnet, including subnets it subscribes
    /// to later itself (a subnet created after the node started); exact [`Self::topics`] of
    /// another service come first.
    fn topic_kinds(&self) -> Vec<TopicKind> {
        Vec::new()
    }

    /// The `/sync/1` request kinds this service answers.
    fn requests(&self) -> Vec<RequestKind> {
        Vec::new()
    }

    /// Whether this service answers queries on the query plane.
    fn answers_queries(&self) -> bool {
        false
    }

    /// Handles a gossip message on one of [`Self::topics`]; the message's validation must be
    /// reported (dropping it ignores the message).
    fn on_gossip(&self, topic: Topic, message: GossipMessage) {
        let _ = topic;
        message.validation.ignore();
    }

    /// Answers a checked `/sync/1` request of one of [`Self::requests`].
    fn on_request(
        &self,
        peer: PeerId,
        request: v1::sync_request::Body,
        responder: RequestResponder,
    ) {
        let _ = (peer, request);
        responder.respond(sync_error(v1::ErrorCode::Unavailable, "not served here"));
    }

    /// Answers a query from the query plane (only called if [`Self::answers_queries`]).
    fn on_query(&self, query: InboundQuery) {
        drop(query);
    }

    /// The service's background loop; it returns once `cancel` is cancelled.
    fn run(self: Arc<Self>, cancel: CancellationToken) -> ServiceFuture {
        drop(self);
        Box::pin(async move { cancel.cancelled().await })
    }
}
