//! The query plane: a bare QUIC endpoint (quinn) authenticated by the libp2p key, one bidirectional
//! stream per query, length-prefixed frames, streamed answers, deadlines and pooled connections.
//!
//! Wire format, client to server: `deadline_ms: u32 BE | len: u32 BE | request bytes`, then FIN.
//! Server to client: any number of frames `kind: u8 | len: u32 BE | bytes` (kind 0 data, 1 error whose
//! bytes are `code: u8 | utf-8 message`), then FIN. The TLS application protocol names the network,
//! so peers of different networks fail the handshake.

mod client;
mod frame;
mod server;
mod tls;

pub(crate) use client::QueryClient;
pub use client::QueryStream;
pub use server::QueryResponder;
pub(crate) use server::{QueryServer, ServerLimits};
pub(crate) use tls::endpoint;
