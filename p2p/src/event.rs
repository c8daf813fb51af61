//! Events the network delivers to the application, and the handles that answer them.

use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, PeerId};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::mpsc;

use crate::query::QueryResponder;

/// Something that happened on the network.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A gossip message arrived; it is forwarded only once the application accepts it.
    Gossip(GossipMessage),
    /// A peer sent a sync-plane request.
    InboundRequest(InboundRequest),
    /// A peer sent a query-plane query.
    InboundQuery(InboundQuery),
    /// A first connection to a peer was established.
    PeerConnected(PeerId),
    /// The last connection to a peer closed.
    PeerDisconnected(PeerId),
    /// The node listens on a new control-plane address.
    ListenAddr(Multiaddr),
}

/// Work the application hands back to the network task.
#[derive(Debug)]
pub(crate) enum Internal {
    /// The application's verdict on a gossip message.
    Validated {
        id: MessageId,
        propagation_source: PeerId,
        acceptance: MessageAcceptance,
    },
    /// The answer to a sync-plane request.
    Respond {
        channel: ResponseChannel<Vec<u8>>,
        data: Vec<u8>,
    },
}

/// The application's verdict on a gossip message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: deliver and forward.
    Accept,
    /// Invalid: drop and penalise the peer that sent it.
    Reject,
    /// Not useful (for example, stale): drop without penalty.
    Ignore,
}

/// Reports the application's verdict on one gossip message; dropping it unreported ignores the message.
#[derive(Debug)]
pub struct Validation {
    id: MessageId,
    propagation_source: PeerId,
    internal: mpsc::UnboundedSender<Internal>,
    reported: bool,
}

impl Validation {
    pub(crate) fn new(
        id: MessageId,
        propagation_source: PeerId,
        internal: mpsc::UnboundedSender<Internal>,
    ) -> Self {
        Self {
            id,
            propagation_source,
            internal,
            reported: false,
        }
    }

    /// Reports the verdict.
    pub fn report(mut self, verdict: Verdict) {
        self.send(verdict);
    }

    /// The message is valid: forward it.
    pub fn accept(self) {
        self.report(Verdict::Accept);
    }

    /// The message is invalid: drop it and penalise its sender.
    pub fn reject(self) {
        self.report(Verdict::Reject);
    }

    /// Drop the message without penalty.
    pub fn ignore(self) {
        self.report(Verdict::Ignore);
    }

    fn send(&mut self, verdict: Verdict) {
        if self.reported {
            return;
        }
        self.reported = true;
        let acceptance = match verdict {
            Verdict::Accept => MessageAcceptance::Accept,
            Verdict::Reject => MessageAcceptance::Reject,
            Verdict::Ignore => MessageAcceptance::Ignore,
        };
        // If the network task is gone there is nothing left to report to.
        let _ = self.internal.send(Internal::Validated {
            id: self.id.clone(),
            propagation_source: self.propagation_source,
            acceptance,
        });
    }
}

impl Drop for Validation {
    fn drop(&mut self) {
        self.send(Verdict::Ignore);
    }
}

/// A gossip message awaiting the application's verdict.
#[derive(Debug)]
pub struct GossipMessage {
    /// The topic, without the `meshmind/<network>/` prefix.
    pub topic: String,
    /// The peer that signed and first published the message.
    pub origin: Option<PeerId>,
    /// The peer that forwarded it to us.
    pub propagation_source: PeerId,
    /// The message body.
    pub data: Vec<u8>,
    /// Content id: blake3 of the topic and body.
    pub id: [u8; 32],
    /// Where to report the verdict.
    pub validation: Validation,
}

/// A sync-plane request awaiting an answer.
#[derive(Debug)]
pub struct InboundRequest {
    /// The asking peer.
    pub peer: PeerId,
    /// The request body.
    pub data: Vec<u8>,
    /// Where to send the answer.
    pub responder: RequestResponder,
}

/// Answers one sync-plane request; dropping it unanswered closes the peer's stream.
#[derive(Debug)]
pub struct RequestResponder {
    channel: ResponseChannel<Vec<u8>>,
    internal: mpsc::UnboundedSender<Internal>,
}

impl RequestResponder {
    pub(crate) fn new(
        channel: ResponseChannel<Vec<u8>>,
        internal: mpsc::UnboundedSender<Internal>,
    ) -> Self {
        Self { channel, internal }
    }

    /// Sends the answer.
    pub fn respond(self, data: Vec<u8>) {
        let _ = self.internal.send(Internal::Respond {
            channel: self.channel,
            data,
        });
    }
}

/// A query-plane query awaiting an answer.
pub struct InboundQuery {
    /// The asking peer, authenticated by its key.
    pub peer: PeerId,
    /// The query body.
    pub payload: Vec<u8>,
    /// Sends one or several answer frames.
    pub responder: QueryResponder,
}

impl std::fmt::Debug for InboundQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundQuery")
            .field("peer", &self.peer)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Label set of the dropped-events counter.
pub(crate) type KindLabel = Vec<(&'static str, &'static str)>;

/// The bounded queue to the application; never waits, counts what it drops.
#[derive(Clone)]
pub(crate) struct EventSink {
    tx: mpsc::Sender<NetworkEvent>,
    priority: mpsc::Sender<NetworkEvent>,
    dropped: Family<KindLabel, Counter>,
}

impl EventSink {
    pub(crate) fn new(
        tx: mpsc::Sender<NetworkEvent>,
        priority: mpsc::Sender<NetworkEvent>,
        dropped: Family<KindLabel, Counter>,
    ) -> Self {
        Self {
            tx,
            priority,
            dropped,
        }
    }

    /// Queues an event, or hands it back (and counts it) if the queue is full or closed.
    pub(crate) fn emit(
        &self,
        event: NetworkEvent,
        kind: &'static str,
    ) -> Result<(), Box<NetworkEvent>> {
        self.send(&self.tx, event, kind)
    }

    /// Queues an event on the priority queue, which the application reads first.
    pub(crate) fn emit_priority(
        &self,
        event: NetworkEvent,
        kind: &'static str,
    ) -> Result<(), Box<NetworkEvent>> {
        self.send(&self.priority, event, kind)
    }

    fn send(
        &self,
        queue: &mpsc::Sender<NetworkEvent>,
        event: NetworkEvent,
        kind: &'static str,
    ) -> Result<(), Box<NetworkEvent>> {
        match queue.try_send(event) {
            Ok(()) => Ok(()),
            Err(
                mpsc::error::TrySendError::Full(event) | mpsc::error::TrySendError::Closed(event),
            ) => {
                self.dropped.get_or_create(&vec![("kind", kind)]).inc();
                Err(Box::new(event))
            }
        }
    }
}

/// The stream of network events; one per network.
pub struct NetworkEvents {
    pub(crate) rx: mpsc::Receiver<NetworkEvent>,
    pub(crate) priority: mpsc::Receiver<NetworkEvent>,
}

impl NetworkEvents {
    /// The next event, or `None` once the network has shut down; gossip on the priority topics
    /// comes before anything else waiting.
    pub async fn recv(&mut self) -> Option<NetworkEvent> {
        tokio::select! {
            biased;
            Some(event) = self.priority.recv() => Some(event),
            event = self.rx.recv() => event,
        }
    }
}
