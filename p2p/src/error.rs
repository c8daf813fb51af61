//! Errors of the network layer.

use libp2p::PeerId;

/// Why the network could not start or a command failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The configuration is invalid.
    #[error("invalid network config: {0}")]
    Config(String),
    /// A transport or listener could not be set up.
    #[error("transport: {0}")]
    Transport(String),
    /// The network task has stopped.
    #[error("the network has shut down")]
    Shutdown,
    /// Publishing a gossip message failed.
    #[error("publish failed: {0}")]
    Publish(String),
    /// No connected peer subscribes to the topic yet; the message was not sent.
    #[error("no connected peer subscribes to the topic yet")]
    NoPeers,
    /// Subscribing or unsubscribing failed.
    #[error("subscription failed: {0}")]
    Subscription(String),
    /// Dialing failed.
    #[error("dial failed: {0}")]
    Dial(String),
    /// A DHT operation failed.
    #[error("dht: {0}")]
    Dht(String),
}

/// Why a sync-plane request failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The peer did not answer in time.
    #[error("request to {0} timed out")]
    Timeout(PeerId),
    /// The request or its answer was over the size cap.
    #[error("request or response over the size cap")]
    TooLarge,
    /// The peer could not be reached or closed the stream.
    #[error("request to {peer} failed: {reason}")]
    Failed {
        /// The peer.
        peer: PeerId,
        /// What went wrong.
        reason: String,
    },
    /// The network task has stopped.
    #[error("the network has shut down")]
    Shutdown,
}

/// Error codes a query-plane server may answer with instead of data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
pub enum QueryError {
    /// The deadline passed before the answer arrived.
    #[error("query deadline exceeded")]
    Deadline,
    /// No query-plane address is known for the peer.
    #[error("no query address known for {0}")]
    NoAddress(PeerId),
    /// The connection could not be set up (including a peer that presents another key).
    #[error("connecting to {peer}: {reason}")]
    Connect {
        /// The peer.
        peer: PeerId,
        /// What went wrong.
        reason: String,
    },
    /// The stream broke.
    #[error("stream: {0}")]
    Stream(String),
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
