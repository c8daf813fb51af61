//! The miner role: serves queries for (subnet, task) pairs through a [`MinerBackend`], signs its
//! answers, and protects itself with a concurrency limit and a per-peer rate limit.

mod backend;
mod exec;
mod http;
mod reference;
mod service;

pub use backend::{
    AnswerFuture, BackendError, ChunkSink, Delayed, Echo, MinerBackend, StreamFuture,
};
pub use exec::Exec;
pub use http::Http;
pub use reference::{Reference, evaluate_arithmetic, sort_words};
pub use service::{Miner, MinerConfig};
