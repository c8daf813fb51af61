//! The serving side of the query plane: accepts peer-authenticated connections, caps connections and
//! streams per peer, reads capped requests and hands them to the application with a responder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use libp2p::PeerId;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::frame::{self, KIND_DATA, KIND_ERROR, REQUEST_HEADER};
use super::tls::remote_peer;
use crate::error::{QueryError, QueryErrorCode};
use crate::event::{EventSink, InboundQuery, NetworkEvent};

/// How long a client may take to send a request header after opening a stream.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

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

type PeerCounts = Arc<Mutex<HashMap<PeerId, usize>>>;

/// Decrements a peer's connection count when its connection task ends.
struct CountGuard {
    counts: PeerCounts,
    peer: PeerId,
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.peer);
            }
        }
    }
}

async fn accept_loop(endpoint: quinn::Endpoint, limits: ServerLimits, sink: EventSink) {
    let counts: PeerCounts = Arc::default();
    while let Some(incoming) = endpoint.accept().await {
        let counts = counts.clone();
        let sink = sink.clone();
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
            let guard = {
                let mut map = counts.lock().unwrap_or_else(|p| p.into_inner());
                let n = map.entry(peer).or_insert(0);
                if *n >= limits.max_connections_per_peer {
                    drop(map);
                    tracing::debug!(%peer, "query connection refused: per-peer limit");
                    connection.close(2u32.into(), b"too many connections");
                    return;
                }
                *n += 1;
                CountGuard {
                    counts: counts.clone(),
                    peer,
                }
            };
            serve_connection(connection, peer, limits, sink).await;
            drop(guard);
        });
    }
}

async fn serve_connection(
    connection: quinn::Connection,
    peer: PeerId,
    limits: ServerLimits,
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
        tokio::spawn(serve_stream(send, recv, peer, limits, sink.clone()));
    }
}

async fn serve_stream(
    send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    peer: PeerId,
    limits: ServerLimits,
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
    let until = Instant::now() + Duration::from_millis(u64::from(deadline_ms));
    let responder = QueryResponder {
        peer,
        send,
        until,
        max_frame: limits.max_frame,
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
    let mut payload = vec![0u8; len];
    match tokio::time::timeout_at(until, recv.read_exact(&mut payload)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => {
            let _ = responder
                .error(QueryErrorCode::Malformed, "request shorter than its header")
                .await;
            return;
        }
        Err(_) => return,
    }
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

/// Answers one inbound query: one frame, several (streaming), or an error; then finishes.
pub struct QueryResponder {
    peer: PeerId,
    send: quinn::SendStream,
    until: Instant,
    max_frame: usize,
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
