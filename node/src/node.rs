//! A node: the services of its roles behind one router, the task that dispatches network events to
//! them, and an orderly shutdown with one cancellation token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshmind_p2p::{NetworkError, NetworkEvent, NetworkEvents, NetworkHandle, PeerId, RateLimiter};
use meshmind_protocols::{Validate, decode, v1};
use prost::Message;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::role::error_frame;
use crate::service::{RequestKind, Service, sync_error};
use crate::topics::{Topic, TopicKind};

/// How long shutdown waits for one service's loop to return.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Two services claimed the same traffic.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// A topic is handled by two services.
    #[error("topic {topic} is handled by both {first} and {second}")]
    Topic {
        /// The topic.
        topic: Topic,
        /// The service registered first.
        first: &'static str,
        /// The service registered second.
        second: &'static str,
    },
    /// A kind of topic is taken by two services.
    #[error("{kind:?} topics are taken by both {first} and {second}")]
    TopicKind {
        /// The kind.
        kind: TopicKind,
        /// The service registered first.
        first: &'static str,
        /// The service registered second.
        second: &'static str,
    },
    /// A request kind is answered by two services.
    #[error("{kind:?} requests are answered by both {first} and {second}")]
    Request {
        /// The request kind.
        kind: RequestKind,
        /// The service registered first.
        first: &'static str,
        /// The service registered second.
        second: &'static str,
    },
    /// Queries are answered by two services.
    #[error("queries are answered by both {first} and {second}")]
    Queries {
        /// The service registered first.
        first: &'static str,
        /// The service registered second.
        second: &'static str,
    },
    /// Joining a topic failed.
    #[error("subscribing to {topic}")]
    Subscribe {
        /// The topic.
        topic: Topic,
        /// Why.
        #[source]
        source: NetworkError,
    },
}

/// Which service handles which traffic.
struct Routes {
    services: Vec<Arc<dyn Service>>,
    topics: HashMap<Topic, usize>,
    kinds: HashMap<TopicKind, usize>,
    requests: HashMap<RequestKind, usize>,
    queries: Option<usize>,
    /// Requests each peer may make of each kind.
    request_limits: Mutex<RateLimiter<(PeerId, RequestKind)>>,
}

/// `/sync/1` requests of one kind one peer may make: per second, and in a burst.
pub const SYNC_REQUESTS_PER_PEER: (u32, u32) = (20, 40);

impl Default for Routes {
    fn default() -> Self {
        Self {
            services: Vec::new(),
            topics: HashMap::new(),
            kinds: HashMap::new(),
            requests: HashMap::new(),
            queries: None,
            request_limits: Mutex::new(RateLimiter::new(
                SYNC_REQUESTS_PER_PEER.0,
                SYNC_REQUESTS_PER_PEER.1,
            )),
        }
    }
}

impl Routes {
    fn add(&mut self, service: Arc<dyn Service>) -> Result<(), RouterError> {
        let index = self.services.len();
        let name = service.name();
        let first = |i: usize| self.services[i].name();
        for topic in service.topics() {
            if let Some(&i) = self.topics.get(&topic) {
                return Err(RouterError::Topic {
                    topic,
                    first: first(i),
                    second: name,
                });
            }
        }
        for kind in service.topic_kinds() {
            if let Some(&i) = self.kinds.get(&kind) {
                return Err(RouterError::TopicKind {
                    kind,
                    first: first(i),
                    second: name,
                });
            }
        }
        for kind in service.requests() {
            if let Some(&i) = self.requests.get(&kind) {
                return Err(RouterError::Request {
                    kind,
                    first: first(i),
                    second: name,
                });
            }
        }
        if service.answers_queries()
            && let Some(i) = self.queries
        {
            return Err(RouterError::Queries {
                first: first(i),
                second: name,
            });
        }
        self.topics
            .extend(service.topics().into_iter().map(|t| (t, index)));
        self.kinds
            .extend(service.topic_kinds().into_iter().map(|k| (k, index)));
        self.requests
            .extend(service.requests().into_iter().map(|k| (k, index)));
        if service.answers_queries() {
            self.queries = Some(index);
        }
        self.services.push(service);
        Ok(())
    }

    fn dispatch(&self, event: NetworkEvent) {
        match event {
            NetworkEvent::Gossip(message) => {
                let Ok(topic) = message.topic.parse::<Topic>() else {
                    message.validation.ignore();
                    return;
                };
                match self
                    .topics
                    .get(&topic)
                    .or_else(|| self.kinds.get(&topic.kind()))
                {
                    Some(&i) => self.services[i].on_gossip(topic, message),
                    None => message.validation.ignore(),
                }
            }
            NetworkEvent::InboundRequest(request) => {
                let checked = decode::<v1::SyncRequest>(&request.data)
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.validate().map(|()| r).map_err(|e| e.to_string()));
                let body = match checked {
                    Ok(v1::SyncRequest { body: Some(body) }) => body,
                    Ok(v1::SyncRequest { body: None }) => {
                        let answer =
                            sync_error(v1::ErrorCode::Malformed, "a request without a body");
                        return request.responder.respond(answer);
                    }
                    Err(reason) => {
                        let answer = sync_error(v1::ErrorCode::Malformed, reason);
                        return request.responder.respond(answer);
                    }
                };
                let kind = RequestKind::of(&body);
                let allowed = self
                    .request_limits
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .allow((request.peer, kind), std::time::Instant::now());
                if !allowed {
                    return request.responder.respond(sync_error(
                        v1::ErrorCode::Overloaded,
                        format!(
                            "too many {kind:?} requests; at most {} a second",
                            SYNC_REQUESTS_PER_PEER.0
                        ),
                    ));
                }
                match self.requests.get(&kind) {
                    Some(&i) => self.services[i].on_request(request.peer, body, request.responder),
                    None => request.responder.respond(sync_error(
                        v1::ErrorCode::Unavailable,
                        format!("this node answers no {kind:?} requests"),
                    )),
                }
            }
            NetworkEvent::InboundQuery(query) => match self.queries {
                Some(i) => self.services[i].on_query(query),
                None => {
                    let frame =
                        error_frame(v1::ErrorCode::Unavailable, "this node answers no queries");
                    tokio::spawn(async move {
                        let responder = query.responder;
                        let _ = responder.respond(frame.encode_to_vec()).await;
                    });
                }
            },
            _ => {}
        }
    }
}

/// A node being assembled: register services, then [`Node::start`].
pub struct Node {
    network: NetworkHandle,
    routes: Routes,
    cancel: CancellationToken,
}

/// A node whose services and dispatch are running; [`Running::shutdown`] stops them.
pub struct Running {
    network: NetworkHandle,
    /// The node's token: every loop's and the dispatch's are its children.
    cancel: CancellationToken,
    stop_dispatch: CancellationToken,
    dispatch: JoinHandle<()>,
    loops: Vec<(&'static str, CancellationToken, JoinHandle<()>)>,
}

impl Node {
    /// A node on `network` with no services yet.
    pub fn new(network: NetworkHandle) -> Self {
        Self {
            network,
            routes: Routes::default(),
            cancel: CancellationToken::new(),
        }
    }

    /// Registers `service`; fails if it claims traffic another service already handles.
    pub fn add(&mut self, service: Arc<dyn Service>) -> Result<&mut Self, RouterError> {
        self.routes.add(service)?;
        Ok(self)
    }

    /// Subscribes to every service's topics, starts every service's loop, and dispatches `events`.
    pub async fn start(self, mut events: NetworkEvents) -> Result<Running, RouterError> {
        let mut topics: Vec<Topic> = self.routes.topics.keys().copied().collect();
        topics.sort_by_key(|t| t.to_string());
        for topic in topics {
            self.network
                .subscribe(&topic.to_string())
                .await
                .map_err(|source| RouterError::Subscribe { topic, source })?;
        }
        let loops = self
            .routes
            .services
            .iter()
            .map(|service| {
                let token = self.cancel.child_token();
                let name = service.name();
                let task = tokio::spawn(service.clone().run(token.clone()));
                (name, token, task)
            })
            .collect();
        let routes = self.routes;
        let stop_dispatch = self.cancel.child_token();
        let cancel = stop_dispatch.clone();
        let dispatch = tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    event = events.recv() => match event {
                        Some(event) => routes.dispatch(event),
                        None => return,
                    },
                }
            }
        });
        Ok(Running {
            network: self.network,
            cancel: self.cancel,
            stop_dispatch,
            dispatch,
            loops,
        })
    }
}

impl Running {
    /// Stops taking events, then stops the services in the reverse order of registration (each
    /// loop returns on its own; one that takes longer than a few seconds is left behind and
    /// logged), then shuts the network down.
    pub async fn shutdown(self) {
        self.stop_dispatch.cancel();
        let _ = self.dispatch.await;
        for (name, token, task) in self.loops.into_iter().rev() {
            token.cancel();
            match tokio::time::timeout(STOP_WAIT, task).await {
                Ok(Ok(())) => tracing::debug!(service = name, "stopped"),
                Ok(Err(e)) => tracing::error!(service = name, error = %e, "service loop failed"),
                Err(_) => tracing::warn!(service = name, "service loop did not stop in time"),
            }
        }
        self.cancel.cancel();
        self.network.shutdown().await;
    }
}
