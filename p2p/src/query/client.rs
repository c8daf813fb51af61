//! The dialing side of the query plane: pooled connections, deadlines, single and streamed answers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::PeerId;
use libp2p::identity::Keypair;
use tokio::time::Instant;

use super::frame::{self, FRAME_HEADER, KIND_DATA, KIND_ERROR};
use super::tls::{SERVER_NAME, client_config};
use crate::error::{QueryError, Source};

/// One peer's slot in the pool: its cached TLS config and its live connection, if any.
#[derive(Default)]
struct Slot {
    config: Option<quinn::ClientConfig>,
    connection: Option<quinn::Connection>,
}

/// Sends queries to peers' query planes over pooled, peer-authenticated QUIC connections.
pub(crate) struct QueryClient {
    /// Taken out at shutdown, so the socket closes once the network task lets go of it too.
    endpoint: Mutex<Option<quinn::Endpoint>>,
    keypair: Keypair,
    alpn: Vec<u8>,
    max_request: usize,
    max_frame: usize,
    addrs: Mutex<HashMap<PeerId, SocketAddr>>,
    slots: Mutex<HashMap<PeerId, Arc<tokio::sync::Mutex<Slot>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain maps in a usable state.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl QueryClient {
    /// A client dialing from `endpoint`.
    pub(crate) fn new(
        endpoint: quinn::Endpoint,
        keypair: Keypair,
        alpn: Vec<u8>,
        max_request: usize,
        max_frame: usize,
    ) -> Self {
        Self {
            endpoint: Mutex::new(Some(endpoint)),
            keypair,
            alpn,
            max_request,
            max_frame,
            addrs: Mutex::new(HashMap::new()),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Records where `peer`'s query plane listens.
    pub(crate) fn add_address(&self, peer: PeerId, addr: SocketAddr) {
        lock(&self.addrs).insert(peer, addr);
    }

    /// Where `peer`'s query plane listens, if known.
    pub(crate) fn address(&self, peer: &PeerId) -> Option<SocketAddr> {
        lock(&self.addrs).get(peer).copied()
    }

    /// Forgets pooled connections and the endpoint; later queries fail with `Disabled`.
    pub(crate) fn close_all(&self) {
        lock(&self.slots).clear();
        lock(&self.endpoint).take();
    }

    fn slot(&self, peer: PeerId) -> Arc<tokio::sync::Mutex<Slot>> {
        lock(&self.slots).entry(peer).or_default().clone()
    }

    /// The pooled connection to `peer`, dialing (once, even under concurrency) if there is none.
    async fn connection(&self, peer: PeerId, fresh: bool) -> Result<quinn::Connection, QueryError> {
        let slot = self.slot(peer);
        let mut slot = slot.lock().await;
        if let Some(connection) = &slot.connection
            && !fresh
            && connection.close_reason().is_none()
        {
            return Ok(connection.clone());
        }
        slot.connection = None;
        let addr = self.address(&peer).ok_or(QueryError::NoAddress(peer))?;
        let config = match &slot.config {
            Some(config) => config.clone(),
            None => {
                let config = client_config(&self.keypair, peer, &self.alpn).map_err(|e| {
                    QueryError::Connect {
                        peer,
                        source: e.into(),
                    }
                })?;
                slot.config = Some(config.clone());
                config
            }
        };
        let connect_error = |e: Source| QueryError::Connect { peer, source: e };
        let endpoint = lock(&self.endpoint).clone().ok_or(QueryError::Disabled)?;
        let connecting = endpoint
            .connect_with(config, addr, SERVER_NAME)
            .map_err(|e| connect_error(e.into()))?;
        let connection = connecting.await.map_err(|e| connect_error(e.into()))?;
        tracing::debug!(%peer, %addr, "query connection established");
        slot.connection = Some(connection.clone());
        Ok(connection)
    }

    /// Opens a stream to `peer` and sends the request, redialing once if the pooled connection died.
    async fn send(
        &self,
        peer: PeerId,
        payload: &[u8],
        deadline: Duration,
    ) -> Result<quinn::RecvStream, QueryError> {
        if payload.len() > self.max_request {
            return Err(QueryError::TooLarge {
                actual: payload.len(),
                cap: self.max_request,
            });
        }
        let deadline_ms = u32::try_from(deadline.as_millis()).unwrap_or(u32::MAX);
        let header = frame::request(deadline_ms, payload);
        let mut fresh = false;
        loop {
            let connection = self.connection(peer, fresh).await?;
            let (mut send, recv) = match connection.open_bi().await {
                Ok(streams) => streams,
                Err(e) if !fresh => {
                    tracing::debug!(%peer, error = %e, "query connection lost; redialing");
                    fresh = true;
                    continue;
                }
                Err(e) => return Err(QueryError::Stream(e.into())),
            };
            let written = async {
                send.write_all(&header).await?;
                send.write_all(payload).await
            }
            .await;
            match written {
                Ok(()) => {
                    let _ = send.finish();
                    return Ok(recv);
                }
                // The server stopped reading (for example, over its cap): its error frame follows.
                Err(quinn::WriteError::Stopped(_)) => return Ok(recv),
                Err(quinn::WriteError::ConnectionLost(e)) if !fresh => {
                    tracing::debug!(%peer, error = %e, "query connection lost; redialing");
                    fresh = true;
                }
                Err(e) => return Err(QueryError::Stream(e.into())),
            }
        }
    }

    /// Sends a query and returns the first answer frame.
    pub(crate) async fn query(
        &self,
        peer: PeerId,
        payload: &[u8],
        deadline: Duration,
    ) -> Result<Vec<u8>, QueryError> {
        let until = Instant::now() + deadline;
        let work = async {
            let recv = self.send(peer, payload, deadline).await?;
            let mut stream = QueryStream {
                recv,
                max_frame: self.max_frame,
                until,
                done: false,
            };
            match stream.next().await {
                Some(result) => result,
                None => Err(QueryError::NoAnswer),
            }
        };
        tokio::time::timeout_at(until, work)
            .await
            .map_err(|_| QueryError::Deadline)?
    }

    /// Sends a query and returns the stream of answer frames.
    pub(crate) async fn query_stream(
        &self,
        peer: PeerId,
        payload: &[u8],
        deadline: Duration,
    ) -> Result<QueryStream, QueryError> {
        let until = Instant::now() + deadline;
        let recv = tokio::time::timeout_at(until, self.send(peer, payload, deadline))
            .await
            .map_err(|_| QueryError::Deadline)??;
        Ok(QueryStream {
            recv,
            max_frame: self.max_frame,
            until,
            done: false,
        })
    }
}

/// The answer frames of one query, in order, until the server finishes the stream.
pub struct QueryStream {
    recv: quinn::RecvStream,
    max_frame: usize,
    until: Instant,
    done: bool,
}

impl QueryStream {
    /// The next answer frame; `None` once the server has finished. An error frame ends the stream.
    pub async fn next(&mut self) -> Option<Result<Vec<u8>, QueryError>> {
        if self.done {
            return None;
        }
        let result = match tokio::time::timeout_at(self.until, self.read_frame()).await {
            Ok(result) => result,
            Err(_) => Err(QueryError::Deadline),
        };
        match result {
            Ok(Some(frame)) => Some(Ok(frame)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    async fn read_frame(&mut self) -> Result<Option<Vec<u8>>, QueryError> {
        let mut header = [0u8; FRAME_HEADER];
        match self.recv.read_exact(&mut header).await {
            Ok(()) => {}
            Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
            Err(e) => return Err(QueryError::Stream(e.into())),
        }
        let (kind, len) = frame::parse_frame_header(header);
        if len > self.max_frame {
            let _ = self.recv.stop(0u32.into());
            return Err(QueryError::Malformed(format!(
                "frame of {len} bytes over the cap of {}",
                self.max_frame
            )));
        }
        let mut body = vec![0u8; len];
        self.recv
            .read_exact(&mut body)
            .await
            .map_err(|e| QueryError::Stream(e.into()))?;
        match kind {
            KIND_DATA => Ok(Some(body)),
            KIND_ERROR => Err(frame::parse_error(&body)),
            other => Err(QueryError::Malformed(format!("unknown frame kind {other}"))),
        }
    }
}
