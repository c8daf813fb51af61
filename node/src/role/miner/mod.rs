//! The miner role: serves queries for (subnet, task) pairs through a [`MinerBackend`], signs its
//! answers, and protects itself with a concurrency limit and a per-peer rate limit.

mod ads;
mod backend;
mod embed;
mod exec;
mod http;
mod node;
mod openai;
mod reference;
mod service;
mod slots;

pub use ads::{AdSchedule, advertise};
pub use backend::{
    AnswerFuture, Asked, BackendError, Caller, ChunkSink, Delayed, Echo, MinerBackend, StreamFuture,
};
pub use embed::{Embed, TASK as EMBED_TASK};
pub use exec::Exec;
pub use http::Http;
pub use node::MinerService;
pub use openai::OpenAi;
pub use reference::Reference;
pub use service::{Miner, MinerConfig};
