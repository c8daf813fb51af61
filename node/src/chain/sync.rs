//! Serving `/sync/1` on nodes that keep a ledger: one handler per request kind. Snapshot ranges
//! are read from RocksDB off the event dispatch task: one at a time per peer, at most
//! [`MAX_RANGE_READS`] at a time in all.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use meshmind_p2p::{PeerId, RequestResponder};
use meshmind_protocols::{NetworkId, v1};
use prost::Message;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::driver::DriverInput;
use crate::ledger::{Head, Ledger};
use crate::service::sync_error;

/// Finalized snapshots asked for per sync request.
pub const SYNC_BATCH: u32 = 16;
/// Most bytes of snapshots in one sync response.
const SYNC_RESPONSE_BYTES: usize = 16 << 20;
/// Most snapshot-range reads served at once; past that a peer is told to come back later.
pub const MAX_RANGE_READS: usize = 4;

/// Answers the sync requests of peers from the ledger; consensus batches go to the driver.
#[derive(Clone)]
pub struct SyncServer {
    ledger: Arc<Ledger>,
    network_id: NetworkId,
    inbox: mpsc::Sender<DriverInput>,
    ranges: RangeGate,
}

/// Who may have a snapshot range read now: one read per peer, [`MAX_RANGE_READS`] in all.
#[derive(Clone)]
struct RangeGate {
    permits: Arc<Semaphore>,
    /// Peers whose range is being read.
    reading: Arc<Mutex<HashSet<PeerId>>>,
}

/// A read let through by the gate; dropping it lets the next one in.
struct RangeTicket {
    gate: RangeGate,
    peer: PeerId,
    _permit: OwnedSemaphorePermit,
}

impl RangeGate {
    fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            reading: Arc::default(),
        }
    }

    /// A ticket for `peer`'s read, unless it has one already or every slot is taken.
    fn enter(&self, peer: PeerId) -> Option<RangeTicket> {
        if !lock(&self.reading).insert(peer) {
            return None;
        }
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Some(RangeTicket {
                gate: self.clone(),
                peer,
                _permit: permit,
            }),
            Err(_) => {
                lock(&self.reading).remove(&peer);
                None
            }
        }
    }
}

impl Drop for RangeTicket {
    fn drop(&mut self) {
        lock(&self.gate.reading).remove(&self.peer);
    }
}

impl SyncServer {
    /// A server over `ledger` of the network `network_id`, feeding consensus batches to `inbox`.
    pub fn new(
        ledger: Arc<Ledger>,
        network_id: NetworkId,
        inbox: mpsc::Sender<DriverInput>,
    ) -> Self {
        Self {
            ledger,
            network_id,
            inbox,
            ranges: RangeGate::new(MAX_RANGE_READS),
        }
    }

    /// Answers a checked request of `peer`: at once for cheap kinds, from a blocking thread for
    /// snapshot ranges.
    pub fn serve(
        &self,
        peer: PeerId,
        request: v1::sync_request::Body,
        responder: RequestResponder,
    ) {
        use v1::sync_request::Body;
        let body = match request {
            Body::Range(range) => {
                let Some(ticket) = self.ranges.enter(peer) else {
                    responder.respond(sync_error(
                        v1::ErrorCode::Overloaded,
                        "too many snapshot ranges being served; ask again later",
                    ));
                    return;
                };
                let ledger = self.ledger.clone();
                tokio::task::spawn_blocking(move || {
                    responder.respond(encode(snapshots(&ledger, range)));
                    drop(ticket);
                });
                return;
            }
            Body::Consensus(batch) => self.consensus(peer, batch),
            Body::Status(_) => self.status(),
            Body::Caps(_) => {
                responder.respond(sync_error(
                    v1::ErrorCode::NotFound,
                    "a validator serves no capability ads",
                ));
                return;
            }
        };
        responder.respond(encode(body));
    }

    /// Hands a peer's resent consensus messages to the driver; answers with this node's status.
    fn consensus(&self, peer: PeerId, batch: v1::ConsensusBatch) -> v1::sync_response::Body {
        if self
            .inbox
            .try_send(DriverInput::Direct(peer, batch.messages))
            .is_err()
        {
            tracing::debug!(%peer, "consensus inbox full; batch dropped");
        }
        self.status()
    }

    /// This node's ledger head.
    fn status(&self) -> v1::sync_response::Body {
        v1::sync_response::Body::Status(status(&self.ledger, self.network_id))
    }
}

/// The finalized snapshots of `range`, up to [`SYNC_RESPONSE_BYTES`] (always at least one).
fn snapshots(ledger: &Ledger, range: v1::SnapshotRange) -> v1::sync_response::Body {
    let mut items = Vec::new();
    let mut bytes = 0usize;
    let end = range.from_epoch.saturating_add(u64::from(range.count));
    for epoch in range.from_epoch..end {
        match ledger.finalized(epoch) {
            Ok(Some(item)) => {
                bytes += item.encoded_len();
                if bytes > SYNC_RESPONSE_BYTES && !items.is_empty() {
                    break;
                }
                items.push(item);
            }
            Ok(None) => break,
            Err(e) => {
                tracing::error!(error = %e, "ledger read failed while serving sync");
                break;
            }
        }
    }
    v1::sync_response::Body::Snapshots(v1::FinalizedSnapshots { items })
}

/// The ledger head of this node, as peers ask for it.
fn status(ledger: &Ledger, network_id: NetworkId) -> v1::LedgerStatus {
    match ledger.head() {
        Ok(Some(Head { epoch, hash })) => v1::LedgerStatus {
            network_id: network_id.to_vec(),
            has_head: true,
            head_epoch: epoch,
            head_hash: hash.to_vec(),
        },
        _ => v1::LedgerStatus {
            network_id: network_id.to_vec(),
            has_head: false,
            head_epoch: 0,
            head_hash: Vec::new(),
        },
    }
}

fn lock(reading: &Mutex<HashSet<PeerId>>) -> std::sync::MutexGuard<'_, HashSet<PeerId>> {
    reading.lock().unwrap_or_else(|p| p.into_inner())
}

fn encode(body: v1::sync_response::Body) -> Vec<u8> {
    v1::SyncResponse { body: Some(body) }.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_range_read_per_peer_and_a_bound_in_all() {
        let gate = RangeGate::new(2);
        let peer = |seed: u8| {
            meshmind_protocols::Keypair::from_secret(&[seed; 32])
                .public()
                .peer_id()
        };
        let (a, b, c) = (peer(1), peer(2), peer(3));
        let first = gate.enter(a).expect("a's first read");
        assert!(
            gate.enter(a).is_none(),
            "a second read of the same peer waits"
        );
        let second = gate.enter(b).expect("b's read");
        assert!(gate.enter(c).is_none(), "every slot is taken");
        drop(first);
        let third = gate.enter(c).expect("a slot came free");
        assert!(gate.enter(a).is_none(), "still every slot taken");
        drop((second, third));
        assert!(
            gate.enter(a).is_some(),
            "a peer may read again once its read is done"
        );
    }
}
