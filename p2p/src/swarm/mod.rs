//! The libp2p side: transports, the composed behaviour, the sync codec and the task that owns the swarm.

pub(crate) mod behaviour;
pub(crate) mod event_loop;
pub(crate) mod gossip_gate;
pub(crate) mod sync_codec;
pub(crate) mod transport;
