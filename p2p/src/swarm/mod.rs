//! The libp2p side: transports, the composed behaviour, the sync codec and the task that owns the swarm.

pub mod behaviour;
pub mod event_loop;
pub mod sync_codec;
pub mod transport;
