//! Errors of the network layer.

use libp2p::PeerId;

/// A lower layer's error (libp2p, quinn, rustls, I/O), kept as the source of ours.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the network could not start or a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The configuration is invalid.
    #[error("invalid network config: {0}")]
    Config(String),
    /// A library refused part of the configuration.
    #[error("invalid network config: {what}: {source}")]
    Library {
        /// Which part.
        what: &'static str,
        /// The library's error.
        #[source]
        source: Source,
    },
    /// A transport or listener could not be set up.
    #[error("transport: {context}: {source}")]
    Transport {
        /// What was being set up.
        context: String,
        /// Why it failed.
        #[source]
        source: Source,
    },
    /// The network task has stopped.
    #[error("the network has shut down")]
    Shutdown,
    /// Publishing a gossip message failed.
    #[error("publish failed: {0}")]
    Publish(#[source] libp2p::gossipsub::PublishError),
    /// No connected peer subscribes to the topic yet; the message was not sent.
    #[error("no connected peer subscribes to the topic yet")]
    NoPeers,
    /// Subscribing or unsubscribing failed.
    #[error("subscription failed: {0}")]
    Subscription(#[source] libp2p::gossipsub::SubscriptionError),
    /// Dialing failed.
    #[error("dial failed: {0}")]
    Dial(#[source] Box<libp2p::swarm::DialError>),
    /// A DHT operation failed.
    #[error("dht: {0}")]
    Dht(#[source] Source),
}

impl NetworkError {
    /// A transport error: `context` says what was being set up.
    pub fn transport(context: impl Into<String>, source: impl Into<Source>) -> Self {
        NetworkError::Transport {
            context: context.into(),
            source: source.into(),
        }
    }

    /// A configuration `what` that a library refused.
    pub fn library(what: &'static str, source: impl Into<Source>) -> Self {
        NetworkError::Library {
            what,
            source: source.into(),
        }
    }
}

/// Why a sync-plane request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The peer did not answer in time.
    #[error("request to {0} timed out")]
    Timeout(PeerId),
    /// The request or its answer was over the size cap.
    #[error("request or response over the size cap")]
    TooLarge,
    /// The peer could not be reached or closed the stream.
    #[error("request to {peer} failed: {source}")]
    Failed {
        /// The peer.
        peer: PeerId,
        /// What went wrong.
        #[source]
        source: libp2p::request_response::OutboundFailure,
    },
    /// The network task has stopped.
    #[error("the network has shut down")]
    Shutdown,
}

/// Error codes a query-plane server may answer with instead of data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[repr(u8)]
pub enum QueryErrorCode {
    /// The request was larger than the server accepts.
    TooLarge = 1,
    /// The server is at its concurrency limit or its event queue is full.
    Overloaded = 2,
    /// The deadline passed.
    DeadlineExceeded = 3,
    /// The application refused the query.
    Rejected = 4,
    /// The request was malformed at the framing level.
    Malformed = 5,
}

impl QueryErrorCode {
    /// Parses a wire code; unknown codes read as `Rejected`.
    pub fn from_wire(code: u8) -> Self {
        match code {
            1 => Self::TooLarge,
            2 => Self::Overloaded,
            3 => Self::DeadlineExceeded,
            5 => Self::Malformed,
            _ => Self::Rejected,
        }
    }
}

/// Why a query-plane query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The deadline passed before the answer arrived.
    #[error("query deadline exceeded")]
    Deadline,
    /// No query-plane address is known for the peer.
    #[error("no query address known for {0}")]
    NoAddress(PeerId),
    /// The connection could not be set up (including a peer that presents another key).
    #[error("connecting to {peer}: {source}")]
    Connect {
        /// The peer.
        peer: PeerId,
        /// What went wrong.
        #[source]
        source: Source,
    },
    /// The stream broke.
    #[error("stream: {0}")]
    Stream(#[source] Source),
    /// The request is over our own size cap.
    #[error("request of {actual} bytes is over the cap of {cap}")]
    TooLarge {
        /// Request size.
        actual: usize,
        /// The cap.
        cap: usize,
    },
    /// The server answered with an error.
    #[error("remote refused ({code:?}): {message}")]
    Remote {
        /// Error code.
        code: QueryErrorCode,
        /// Error message.
        message: String,
    },
    /// The server answered with a malformed frame.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The server finished the stream without answering.
    #[error("the peer closed the stream without an answer")]
    NoAnswer,
    /// This node runs no query plane.
    #[error("the query plane is disabled")]
    Disabled,
}
