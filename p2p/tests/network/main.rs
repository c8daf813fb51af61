//! Integration tests of the network layer over real QUIC and TCP sockets on 127.0.0.1, and the
//! in-process memory transport.

mod common;
mod discovery;
mod gossip;
mod memory;
mod query_plane;
mod sync_plane;
mod transports;
