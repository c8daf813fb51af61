//! The validator's router: a client's query goes to the best live miners by score, hedged, and
//! their answer (whole or streamed chunk by chunk, each checked) goes back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use meshmind_p2p::{InboundQuery, QueryResponder, QueryStream};
use meshmind_protocols::{decode, v1};
use prost::Message;
use tokio::sync::mpsc;

use super::hedge::{Want, hedge};
use super::metagraph::Target;
use super::service::{AskError, Check, Client, Organic, Validator, lock};
use crate::role::admission::{AdmissionError, check_target, read_query};
use crate::role::error_frame;
use crate::role::stream::{StreamCheck, StreamError};

/// Frames of a streamed answer buffered between the miner and the client.
const RELAY_BUFFERED: usize = 16;

/// Most bytes of a streamed answer kept to be judged; longer answers go unjudged.
const MAX_JUDGED_STREAM: usize = 1 << 20;

/// The error when no live miner serves a task.
const NO_MINER: &str = "no live miner serves this task";

/// The error when every miner for the task has had its share of client queries.
const ALL_BUSY: &str = "every miner for this task is at the share of its capacity this validator routes clients to; retry shortly";

/// The first and the longest pause while every miner is at its load limits.
const WAIT_FOR_ROOM: (Duration, Duration) = (Duration::from_millis(1), Duration::from_millis(25));

/// The least room a miner counts with when the first miner to try is drawn (a full miner may
/// still be drawn, rarely; it then refuses and the next is tried).
const MIN_ROOM: f64 = 1.0 / 64.0;

/// Longest a query waits for room, whatever its deadline.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// Most miners' failures named in one error.
const REASONS_SHOWN: usize = 8;

impl Validator {
    /// The live miners for the query's task in the order to try them: first one drawn among the
    /// best `top_k` in proportion to score times room (the share of its advertised slots this
    /// validator does not fill; by room alone while none has a score), then the rest best first.
    fn candidates(&self, query: &v1::Query, now_ms: u64) -> Vec<Target> {
        let targets = lock(&self.metagraph)
            .serving(&query.task, now_ms)
            .map(|m| m.target())
            .collect::<Vec<_>>();
        let mut scored: Vec<(Target, f64)> = {
            let scores = lock(&self.scores);
            targets
                .into_iter()
                .map(|t| (t, scores.score(&t.key)))
                .collect()
        };
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.uid.cmp(&b.0.uid)));
        let best = self.config.top_k.max(1).min(scored.len());
        if best > 1 {
            let room: Vec<f64> = scored[..best]
                .iter()
                .map(|(t, _)| {
                    // The share of its slots that is free, so that advertising more slots than it
                    // has buys a miner nothing.
                    let slots = t.max_concurrency.max(1);
                    let free = slots.saturating_sub(self.in_flight(&t.key));
                    (f64::from(free) / f64::from(slots)).max(MIN_ROOM)
                })
                .collect();
            let mut weights: Vec<f64> = room
                .iter()
                .zip(&scored[..best])
                .map(|(room, (_, score))| room * score.max(0.0))
                .collect();
            // Before any miner has a score, by room alone.
            if weights.iter().sum::<f64>() <= 0.0 {
                weights = room;
            }
            let pick = pick_weighted(&weights, self.draw());
            scored[..=pick].rotate_right(1);
        }
        scored.into_iter().map(|(t, _)| t).collect()
    }

    /// Opens a streamed query to `miner` and reads its first chunk, checked.
    async fn open_stream(
        &self,
        miner: &Target,
        query: &v1::Query,
        until: tokio::time::Instant,
    ) -> Result<(QueryStream, StreamCheck, v1::QueryChunk), String> {
        let frame = v1::QueryFrame {
            body: Some(v1::query_frame::Body::Query(query.clone())),
        };
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let mut stream = self
            .network
            .query_stream(miner.peer, &frame.encode_to_vec(), left)
            .await
            .map_err(|e| e.to_string())?;
        let mut check = StreamCheck::new(query, Some(miner.key));
        let first = read_chunk(&mut stream).await?;
        check.chunk(&first).map_err(|e| e.to_string())?;
        Ok((stream, check, first))
    }

    /// Routes a streamed query: the first of the best miners to start answering (hedged like
    /// [`Self::route`]) is relayed chunk by chunk into `out`, each checked; the stream ends with the
    /// miner's signed last chunk or with an error frame. Once a chunk is relayed there is no failover.
    pub async fn route_stream(
        &self,
        query: &v1::Query,
        now_ms: u64,
        out: mpsc::Sender<v1::QueryFrame>,
    ) {
        let mut candidates = self.candidates(query, now_ms);
        candidates.truncate(self.config.top_k.max(1));
        let busy = AtomicUsize::new(0);
        let until =
            tokio::time::Instant::now() + Duration::from_millis(u64::from(query.deadline_ms));
        let mut race = hedge(
            candidates.len(),
            Want::First,
            self.config.hedge_after,
            until,
            |i| {
                let miner = &candidates[i];
                let busy = &busy;
                async move {
                    if !self.take_routed(miner) {
                        busy.fetch_add(1, Ordering::Relaxed);
                        return Err(format!("uid {}: at its routed share", miner.uid));
                    }
                    let _flight = self.flight(miner.key);
                    match self.open_stream(miner, query, until).await {
                        Ok((stream, check, first)) => Ok((miner, stream, check, first)),
                        Err(reason) => Err(format!("uid {}: {reason}", miner.uid)),
                    }
                }
            },
        )
        .await;
        let Some((miner, mut stream, mut check, first)) = race.won.pop() else {
            let (code, message) = if race.timed_out {
                (
                    v1::ErrorCode::DeadlineExceeded,
                    "no miner started answering in time".to_string(),
                )
            } else if race.failed.is_empty() {
                (v1::ErrorCode::Unavailable, NO_MINER.to_string())
            } else if busy.load(Ordering::Relaxed) == candidates.len() {
                (v1::ErrorCode::Overloaded, ALL_BUSY.to_string())
            } else {
                let reasons = race.failed.join("; ");
                (
                    v1::ErrorCode::Unavailable,
                    format!("no miner started a valid answer: {reasons}"),
                )
            };
            let _ = out.send(error_frame(code, message)).await;
            return;
        };
        let mut chunk = first;
        // A sampled stream's data is kept (up to a bound) to be judged once it ends well.
        let mut judged = self
            .draw_organic(&query.task)
            .then(|| (Vec::new(), std::time::Instant::now()));
        loop {
            let last = chunk.last;
            if let Some((data, _)) = &mut judged {
                if data.len() + chunk.data.len() <= MAX_JUDGED_STREAM {
                    data.extend_from_slice(&chunk.data);
                } else {
                    judged = None;
                }
            }
            let frame = v1::QueryFrame {
                body: Some(v1::query_frame::Body::Chunk(chunk)),
            };
            if out.send(frame).await.is_err() {
                return;
            }
            if last {
                if let Some((output, started)) = judged {
                    self.keep_organic(Organic {
                        query: query.clone(),
                        miner: miner.key,
                        output,
                        elapsed: started.elapsed(),
                    });
                }
                return;
            }
            let next = tokio::time::timeout_at(until, read_chunk(&mut stream)).await;
            let failure = match next {
                Err(_) => (
                    v1::ErrorCode::DeadlineExceeded,
                    "the miner's stream ran past the deadline".to_string(),
                ),
                Ok(Err(reason)) => (v1::ErrorCode::Unavailable, reason),
                Ok(Ok(next)) => match check.chunk(&next) {
                    Ok(_) => {
                        chunk = next;
                        continue;
                    }
                    Err(StreamError::Miner { code, message }) => (code, message),
                    Err(e) => (v1::ErrorCode::Unavailable, e.to_string()),
                },
            };
            tracing::debug!(uid = miner.uid, bytes = check.bytes(), reason = %failure.1, "streamed answer broke off");
            let message = format!(
                "miner uid {} broke off its answer: {}",
                miner.uid, failure.1
            );
            let _ = out.send(error_frame(failure.0, message)).await;
            return;
        }
    }

    /// Routes a client's query: the live miners best first, hedged, first valid answer wins (or
    /// every valid answer of the best `top_k`, when asked). A miner at its load limits is passed
    /// over for the next; when every one is, the query waits for room until shortly before its
    /// deadline, and only then gets `Overloaded`.
    pub async fn route(&self, query: &v1::Query, now_ms: u64) -> v1::QueryFrame {
        let started = std::time::Instant::now();
        let mut candidates = self.candidates(query, now_ms);
        if query.want_all {
            candidates.truncate(self.config.top_k.max(1));
        }
        if candidates.is_empty() {
            return error_frame(v1::ErrorCode::Unavailable, NO_MINER);
        }
        let deadline = Duration::from_millis(u64::from(query.deadline_ms));
        let until = tokio::time::Instant::now() + deadline;
        // Room found later than this leaves too little time to answer; and no query waits long.
        let stop_waiting = (until - (deadline / 10).max(Duration::from_millis(50)).min(deadline))
            .min(tokio::time::Instant::now() + MAX_WAIT);
        let mut waiting = None;
        let want = match query.want_all {
            true => Want::All,
            false => Want::First,
        };
        let mut pause = WAIT_FOR_ROOM.0;
        loop {
            let race = hedge(
                candidates.len(),
                want,
                self.config.hedge_after,
                until,
                |i| {
                    let miner = &candidates[i];
                    async move {
                        if !self.take_routed(miner) {
                            return Err((miner.uid, AskError::Overloaded));
                        }
                        let _flight = self.flight(miner.key);
                        self.ask(miner, query, Check::Sampled)
                            .await
                            .map_err(|e| (miner.uid, e))
                    }
                },
            )
            .await;
            let mut won = race.won;
            if !query.want_all
                && let Some(response) = won.pop()
            {
                self.sample_organic(query, &response, started.elapsed());
                return v1::QueryFrame {
                    body: Some(v1::query_frame::Body::Response(response)),
                };
            }
            if !won.is_empty() {
                return v1::QueryFrame {
                    body: Some(v1::query_frame::Body::Responses(v1::QueryResponses {
                        responses: won,
                    })),
                };
            }
            let overloaded = race.failed.iter().all(|(_, e)| *e == AskError::Overloaded);
            // Only so many queries wait at once; past that they are refused at once.
            if waiting.is_none() {
                waiting = self.waiting.try_acquire().ok();
            }
            if overloaded
                && !race.timed_out
                && waiting.is_some()
                && tokio::time::Instant::now() + pause < stop_waiting
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(WAIT_FOR_ROOM.1);
                continue;
            }
            return no_answer(&race.failed, race.timed_out);
        }
    }

    /// Answers a client's inbound query by routing it (streamed through, when asked).
    pub async fn serve(&self, inbound: InboundQuery, now_ms: u64) {
        let Some((payload, responder)) = admit_inbound(inbound, |c| self.admit_client(c)).await
        else {
            return;
        };
        let admitted = read_query(&payload).and_then(|query| self.check(query));
        self.respond(admitted, responder, now_ms).await;
    }

    /// `query`, if it is for this validator's network and subnet.
    pub(super) fn check(&self, query: v1::Query) -> Result<v1::Query, AdmissionError> {
        check_target(&query, &self.config.network_id, self.config.subnet).map(|()| query)
    }

    /// Answers an admitted client query by routing it, or tells it why it was refused.
    pub(super) async fn respond(
        &self,
        admitted: Result<v1::Query, AdmissionError>,
        mut responder: QueryResponder,
        now_ms: u64,
    ) {
        let frame = match admitted {
            Err(refusal) => refusal.frame(),
            Ok(query) if query.stream => {
                let (out, mut frames) = mpsc::channel::<v1::QueryFrame>(RELAY_BUFFERED);
                let relay = async {
                    while let Some(frame) = frames.recv().await {
                        responder.send(frame.encode_to_vec()).await?;
                    }
                    Ok::<(), meshmind_p2p::QueryError>(())
                };
                let (relayed, ()) = tokio::join!(relay, self.route_stream(&query, now_ms, out));
                if let Err(e) = relayed.and_then(|()| responder.finish()) {
                    tracing::debug!(error = %e, "streamed answer not delivered");
                }
                return;
            }
            Ok(query) => self.route(&query, now_ms).await,
        };
        let _ = responder.respond(frame.encode_to_vec()).await;
    }
}

/// The payload of `inbound` and where to answer it, if `admit` takes one of its client's query
/// tokens; a client over its rate is told so, and `None` comes back.
pub(super) async fn admit_inbound(
    inbound: InboundQuery,
    admit: impl FnOnce(Client) -> bool,
) -> Option<(Vec<u8>, QueryResponder)> {
    if admit(Client::Peer(inbound.peer)) {
        return Some((inbound.payload, inbound.responder));
    }
    let frame = error_frame(
        v1::ErrorCode::Overloaded,
        "over this client's query rate at this validator",
    );
    let _ = inbound.responder.respond(frame.encode_to_vec()).await;
    None
}

/// The index `draw` lands on when `weights` (not all zero) share the range of a u64.
fn pick_weighted(weights: &[f64], draw: u64) -> usize {
    let total: f64 = weights.iter().sum();
    // The top 53 bits as a fraction in [0, 1).
    let mut point = (draw >> 11) as f64 / (1u64 << 53) as f64 * total;
    for (i, weight) in weights.iter().enumerate() {
        if point < *weight {
            return i;
        }
        point -= weight;
    }
    weights.len().saturating_sub(1)
}

/// The error for a query no miner answered, naming what each miner did: overloaded (all of
/// them), past the deadline, wrong answers, or unreachable.
fn no_answer(failed: &[(u32, AskError)], timed_out: bool) -> v1::QueryFrame {
    let mut reasons: Vec<String> = failed
        .iter()
        .take(REASONS_SHOWN)
        .map(|(uid, e)| format!("uid {uid}: {e}"))
        .collect();
    if failed.len() > REASONS_SHOWN {
        reasons.push(format!("{} more", failed.len() - REASONS_SHOWN));
    }
    let reasons = reasons.join("; ");
    if timed_out {
        let message = match reasons.is_empty() {
            true => "no miner answered within the deadline".to_string(),
            false => format!("no miner answered within the deadline ({reasons})"),
        };
        return error_frame(v1::ErrorCode::DeadlineExceeded, message);
    }
    if failed.iter().all(|(_, e)| *e == AskError::Overloaded) {
        return error_frame(v1::ErrorCode::Overloaded, ALL_BUSY);
    }
    if failed.iter().any(|(_, e)| matches!(e, AskError::Wrong(_))) {
        let message = format!("no miner answered validly: {reasons}");
        return error_frame(v1::ErrorCode::Internal, message);
    }
    let message = format!("no miner could be reached: {reasons}");
    error_frame(v1::ErrorCode::Unavailable, message)
}

/// Reads the next frame of a miner's stream, which must be a chunk.
async fn read_chunk(stream: &mut QueryStream) -> Result<v1::QueryChunk, String> {
    match stream.next().await {
        None => Err("the stream ended without a last chunk".into()),
        Some(Err(e)) => Err(e.to_string()),
        Some(Ok(bytes)) => match decode::<v1::QueryFrame>(&bytes) {
            Ok(v1::QueryFrame {
                body: Some(v1::query_frame::Body::Chunk(chunk)),
            }) => Ok(chunk),
            Ok(v1::QueryFrame {
                body: Some(v1::query_frame::Body::Error(e)),
            }) => Err(e.message),
            Ok(_) => Err("expected a chunk".into()),
            Err(e) => Err(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::pick_weighted;

    #[test]
    fn draws_land_in_proportion_to_weight() {
        let weights = [1.0, 3.0, 0.0, 4.0];
        let mut hits = [0u32; 4];
        for n in 0..80_000u64 {
            hits[pick_weighted(&weights, crate::consensus::valset::mix64(n))] += 1;
        }
        assert_eq!(hits[2], 0);
        for (i, expected) in [(0, 10_000.0), (1, 30_000.0), (3, 40_000.0)] {
            let off = (f64::from(hits[i]) - expected).abs() / expected;
            assert!(off < 0.05, "{hits:?}");
        }
        assert_eq!(pick_weighted(&[0.0, 0.0], u64::MAX), 1);
        assert_eq!(pick_weighted(&[2.0], 0), 0);
    }
}
