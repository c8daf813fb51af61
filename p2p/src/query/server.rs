//! The serving side of the query plane: accepts peer-authenticated connections, caps connections and
//! streams per peer, reads capped requests and hands them to the application with a responder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use libp2p::PeerId;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::frame::{self, KIND_DATA, KIND_ERROR, REQUEST_HEADER};
use super::tls::remote_peer;
use crate::error::{QueryError, QueryErrorCode};
use crate::event::{EventSink, InboundQuery, NetworkEvent};

/// How long a client may take to send a request header after opening a stream.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send the request body after its header (or less: its deadline).
const PAYLOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Request bytes held at once over all streams, from header to answer; a request that would go
/// over is refused as overloaded.
pub(crate) const MAX_INBOUND_BYTES: usize = 64 << 20;
/// Request bytes one peer may hold at once (or one request's cap, if larger), so no one peer
/// holds the whole budget.
const MAX_INBOUND_BYTES_PER_PEER: usize = 8 << 20;

/// Limits the server enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerLimits {
    /// Largest request body.
    pub max_request: usize,
    /// Largest answer frame this side sends.
    pub max_frame: usize,
    /// Connections one peer may hold.
    pub max_connections_per_peer: usize,
}

/// The running accept loop of the query plane.
pub(crate) struct QueryServer {
    task: JoinHandle<()>,
}

impl QueryServer {
    /// Starts accepting on `endpoint`.
    pub(crate) fn spawn(endpoint: quinn::Endpoint, limits: ServerLimits, sink: EventSink) -> Self {
        let task = tokio::spawn(accept_loop(endpoint, limits, sink));
        Self { task }
    }

    /// Stops accepting; open connections end when the endpoint closes.
    pub(crate) fn stop(self) {
        self.task.abort();
    }
}

/// Per peer: its open connections, and its share of the inbound memory budget.
type PeerCounts = Arc<Mutex<HashMap<PeerId, (usize, Arc<Semaphore>)>>>;

/// Decrements a peer's connection count when its connection task ends.
struct CountGuard {
    counts: PeerCounts,
    peer: PeerId,
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, _)) = counts.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.peer);
            }
        }
    }
}

async fn accept_loop(endpoint: quinn::Endpoint, limits: ServerLimits, sink: EventSink) {
    let counts: PeerCounts = Arc::default();
    let budget = Arc::new(Semaphore::new(MAX_INBOUND_BYTES));
    while let Some(incoming) = endpoint.accept().await {
        let counts = counts.clone();
        let sink = sink.clone();
        let budget = budget.clone();
        tokio::spawn(async move {
            let connection = match incoming.await {
                Ok(connection) => connection,
                Err(e) => {
                    tracing::debug!(error = %e, "query handshake failed");
                    return;
                }
            };
            let Some(peer) = remote_peer(&connection) else {
                connection.close(1u32.into(), b"no peer identity");
                return;
            };
            let per_peer = MAX_INBOUND_BYTES_PER_PEER.max(limits.max_request);
            let (guard, peer_budget) = {
                let mut map = counts.lock().unwrap_or_else(|p| p.into_inner());
                let (n, peer_budget) = map
                    .entry(peer)
                    .or_insert_with(|| (0, Arc::new(Semaphore::new(per_peer))));
                if *n >= limits.max_connections_per_peer {
                    drop(map);
                    tracing::debug!(%peer, "query connection refused: per-peer limit");
                    connection.close(2u32.into(), b"too many connections");
                    return;
                }
                *n += 1;
                let guard = CountGuard {
                    counts: counts.clone(),
                    peer,
                };
                (guard, peer_budget.clone())
            };
            let budgets = [peer_budget, budget];
            serve_connection(connection, peer, limits, budgets, sink).await;
            drop(guard);
        });
    }
}

async fn serve_connection(
    connection: quinn::Connection,
    peer: PeerId,
    limits: ServerLimits,
    budgets: [Arc<Semaphore>; 2],
    sink: EventSink,
) {
    loop {
        let (send, recv) = match connection.accept_bi().await {
            Ok(streams) => streams,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "query connection ended");
                return;
            }
        };
        // quinn's stream credit (max_concurrent_bidi_streams) caps how many of these run per connection.
        tokio::spawn(serve_stream(
            send,
            recv,
            peer,
            limits,
            budgets.clone(),
            sink.clone(),
        ));
    }
}

async fn serve_stream(
    send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    peer: PeerId,
    limits: ServerLimits,
    budgets: [Arc<Semaphore>; 2],
    sink: EventSink,
) {
    let mut header = [0u8; REQUEST_HEADER];
    match tokio::time::timeout(HEADER_TIMEOUT, recv.read_exact(&mut header)).await {
        Ok(Ok(())) => {}
        _ => {
            let _ = recv.stop(0u32.into());
            return;
        }
    }
    let (deadline_ms, len) = frame::parse_request(header);
    // No answer is worth waiting for longer than any query may ask.
    let deadline_ms = deadline_ms.min(meshmind_protocols::validate::MAX_DEADLINE_MS);
    let until = Instant::now() + Duration::from_millis(u64::from(deadline_ms));
    let mut responder = QueryResponder {
        peer,
        send,
        until,
        max_frame: limits.max_frame,
        _budget: Vec::new(),
    };
    if len > limits.max_request {
        let _ = recv.stop(0u32.into());
        tracing::debug!(%peer, len, cap = limits.max_request, "query over the cap refused");
        let message = format!(
            "request of {len} bytes over the cap of {}",
            limits.max_request
        );
        let _ = responder.error(QueryErrorCode::TooLarge, &message).await;
        return;
    }
    let patience = until.min(Instant::now() + PAYLOAD_TIMEOUT);
    let payload = match read_payload(&mut recv, len, patience, &budgets).await {
        Ok((payload, permits)) => {
            responder._budget = permits;
            payload
        }
        Err(PayloadError::Busy) => {
            let _ = recv.stop(0u32.into());
            tracing::debug!(%peer, len, "query refused: inbound memory budget spent");
            let _ = responder
                .error(QueryErrorCode::Overloaded, "server busy")
                .await;
            return;
        }
        Err(PayloadError::Short) => {
            let _ = responder
                .error(QueryErrorCode::Malformed, "request shorter than its header")
                .await;
            return;
        }
        Err(PayloadError::Slow) => {
            let _ = recv.stop(0u32.into());
            tracing::debug!(%peer, len, "query dropped: its body came too slowly");
            return;
        }
    };
    let event = NetworkEvent::InboundQuery(InboundQuery {
        peer,
        payload,
        responder,
    });
    if let Err(event) = sink.emit(event, "query")
        && let NetworkEvent::InboundQuery(query) = *event
    {
        let _ = query
            .responder
            .error(QueryErrorCode::Overloaded, "server busy")
            .await;
    }
}

/// Why a request body was not read.
#[derive(Debug, PartialEq, Eq)]
enum PayloadError {
    /// Holding it would go over the inbound memory budget.
    Busy,
    /// The stream ended before the declared length.
    Short,
    /// It did not arrive in time.
    Slow,
}

/// Reads a request body of `len` bytes by `patience`, reserving its size from every one of
/// `budgets` first (the peer's share, then the whole) and growing the buffer only as bytes
/// arrive; the permits go with the request until it is answered.
async fn read_payload(
    recv: &mut (impl AsyncRead + Unpin),
    len: usize,
    patience: Instant,
    budgets: &[Arc<Semaphore>],
) -> Result<(Vec<u8>, Vec<OwnedSemaphorePermit>), PayloadError> {
    let units = u32::try_from(len).map_err(|_| PayloadError::Busy)?;
    let mut permit = Vec::with_capacity(budgets.len());
    for budget in budgets {
        match budget.clone().try_acquire_many_owned(units) {
            Ok(held) => permit.push(held),
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => {
                return Err(PayloadError::Busy);
            }
        }
    }
    let mut payload = Vec::new();
    let mut body = recv.take(len as u64);
    match tokio::time::timeout_at(patience, body.read_to_end(&mut payload)).await {
        Ok(Ok(n)) if n == len => Ok((payload, permit)),
        Ok(_) => Err(PayloadError::Short),
        Err(_) => Err(PayloadError::Slow),
    }
}

/// Answers one inbound query: one frame, several (streaming), or an error; then finishes.
pub struct QueryResponder {
    peer: PeerId,
    send: quinn::SendStream,
    until: Instant,
    max_frame: usize,
    /// The request's share of the inbound memory budgets, returned when the answer is done.
    _budget: Vec<OwnedSemaphorePermit>,
}

impl QueryResponder {
    /// The peer that asked.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// When the asker stops waiting.
    pub fn deadline(&self) -> Instant {
        self.until
    }

    async fn write(&mut self, kind: u8, body: Bytes) -> Result<(), QueryError> {
        if body.len() > self.max_frame {
            return Err(QueryError::TooLarge {
                actual: body.len(),
                cap: self.max_frame,
            });
        }
        if Instant::now() >= self.until {
            return Err(QueryError::Deadline);
        }
        let header = Bytes::copy_from_slice(&frame::frame_header(kind, body.len()));
        let mut chunks = [header, body];
        let write = self.send.write_all_chunks(&mut chunks);
        match tokio::time::timeout_at(self.until, write).await {
            Ok(result) => result.map_err(|e| QueryError::Stream(e.into())),
            Err(_) => Err(QueryError::Deadline),
        }
    }

    /// Sends one answer frame; more may follow.
    pub async fn send(&mut self, data: impl Into<Bytes>) -> Result<(), QueryError> {
        self.write(KIND_DATA, data.into()).await
    }

    /// Sends one answer frame and finishes.
    pub async fn respond(mut self, data: impl Into<Bytes>) -> Result<(), QueryError> {
        self.write(KIND_DATA, data.into()).await?;
        self.finish()
    }

    /// Sends an error frame and finishes.
    pub async fn error(mut self, code: QueryErrorCode, message: &str) -> Result<(), QueryError> {
        let body = frame::error_body(code, message);
        self.write(KIND_ERROR, body.into()).await?;
        self.finish()
    }

    /// Ends the answer.
    pub fn finish(mut self) -> Result<(), QueryError> {
        self.send.finish().map_err(|e| QueryError::Stream(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Query-plane slowloris: a client that declares a body and sends it slowly (or not at all)
    /// is dropped after the payload timeout, not its own deadline, and holds no memory it has not
    /// sent; what all streams hold at once is bounded.
    #[tokio::test(start_paused = true)]
    async fn slow_bodies_time_out_and_the_inbound_budget_is_bounded() {
        let budget = Arc::new(Semaphore::new(MAX_INBOUND_BYTES));
        // A declared mebibyte, never sent: dropped at the patience instant.
        let (_client, mut server) = tokio::io::duplex(64);
        let patience = Instant::now() + PAYLOAD_TIMEOUT;
        let slow = read_payload(
            &mut server,
            1 << 20,
            patience,
            std::slice::from_ref(&budget),
        )
        .await;
        assert_eq!(slow.err(), Some(PayloadError::Slow));
        assert_eq!(budget.available_permits(), MAX_INBOUND_BYTES, "given back");

        // Streams that declare bodies hold the budget while they read; past it they are refused.
        let mut held = Vec::new();
        let mut readers = Vec::new();
        for _ in 0..(MAX_INBOUND_BYTES >> 20) {
            let (client, mut server) = tokio::io::duplex(64);
            let budget = budget.clone();
            readers.push(tokio::spawn(async move {
                read_payload(
                    &mut server,
                    1 << 20,
                    Instant::now() + PAYLOAD_TIMEOUT,
                    std::slice::from_ref(&budget),
                )
                .await
            }));
            held.push(client);
        }
        tokio::task::yield_now().await;
        for _ in 0..64 {
            tokio::task::yield_now().await;
        }
        assert_eq!(budget.available_permits(), 0);
        let (_client, mut server) = tokio::io::duplex(64);
        let refused = read_payload(
            &mut server,
            1,
            Instant::now() + PAYLOAD_TIMEOUT,
            std::slice::from_ref(&budget),
        )
        .await;
        assert_eq!(refused.err(), Some(PayloadError::Busy));
        drop(held);
        for reader in readers {
            assert_eq!(reader.await.unwrap().err(), Some(PayloadError::Short));
        }
        assert_eq!(budget.available_permits(), MAX_INBOUND_BYTES);

        // A body that does arrive is read whole.
        let (mut client, mut server) = tokio::io::duplex(64);
        let sent = tokio::spawn(async move { client.write_all(&[7u8; 10_000]).await });
        let (payload, permit) = read_payload(
            &mut server,
            10_000,
            Instant::now() + PAYLOAD_TIMEOUT,
            std::slice::from_ref(&budget),
        )
        .await
        .expect("read");
        sent.await.unwrap().unwrap();
        assert_eq!(payload, vec![7u8; 10_000]);
        assert_eq!(budget.available_permits(), MAX_INBOUND_BYTES - 10_000);
        drop(permit);
    }

    /// One peer cannot hold the whole budget: its share runs out first, and another peer's
    /// request still gets in.
    #[tokio::test(start_paused = true)]
    async fn one_peer_holds_at_most_its_share_of_the_budget() {
        let all = Arc::new(Semaphore::new(MAX_INBOUND_BYTES));
        let greedy = [
            Arc::new(Semaphore::new(MAX_INBOUND_BYTES_PER_PEER)),
            all.clone(),
        ];
        let other = [
            Arc::new(Semaphore::new(MAX_INBOUND_BYTES_PER_PEER)),
            all.clone(),
        ];
        let mut held = Vec::new();
        let mut readers = Vec::new();
        for _ in 0..(MAX_INBOUND_BYTES_PER_PEER >> 20) {
            let (client, mut server) = tokio::io::duplex(64);
            let budgets = greedy.clone();
            readers.push(tokio::spawn(async move {
                read_payload(
                    &mut server,
                    1 << 20,
                    Instant::now() + PAYLOAD_TIMEOUT,
                    &budgets,
                )
                .await
            }));
            held.push(client);
        }
        for _ in 0..64 {
            tokio::task::yield_now().await;
        }
        let (_c, mut server) = tokio::io::duplex(64);
        let refused = read_payload(
            &mut server,
            1 << 20,
            Instant::now() + PAYLOAD_TIMEOUT,
            &greedy,
        )
        .await;
        assert_eq!(refused.err(), Some(PayloadError::Busy));
        assert_eq!(
            all.available_permits(),
            MAX_INBOUND_BYTES - MAX_INBOUND_BYTES_PER_PEER,
            "the refused request gave back what it took"
        );
        let (mut client, mut server) = tokio::io::duplex(64);
        let sent = tokio::spawn(async move { client.write_all(&[1u8; 100]).await });
        read_payload(&mut server, 100, Instant::now() + PAYLOAD_TIMEOUT, &other)
            .await
            .expect("another peer still gets in");
        sent.await.unwrap().unwrap();
        drop(held);
        for reader in readers {
            assert_eq!(reader.await.unwrap().err(), Some(PayloadError::Short));
        }
    }
}
