//! Integration tests of `meshmind-node`, in one binary so the crate and RocksDB are linked once:
//! the real `meshmind` binary, real QUIC and gossip between nodes in one process, and real
//! processes on 127.0.0.1.

mod common;

mod cli;
mod economy;
mod finality;
mod gateway;
mod marketplace;
mod miner;
mod processes;
mod router;
mod streaming;
mod weights_gossip;
