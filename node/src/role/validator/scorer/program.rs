//! The `exec` and `http` scorers: the subnet owner's own program, in any language, makes the
//! challenges and scores the answers. It is spoken to as a miner's `exec` or `http` backend is,
//! with two tasks whose input and output are JSON documents:
//!
//! - `challenge`: input `{"task": "caption"}`; output `{"input": "...", "expected": "...",
//!   "content_type": "..."}`, where `input` is sent to the miners (with `content_type`, optional,
//!   as the query's media type) and `expected` (optional, never sent) comes back when scoring.
//! - `score`: input `{"task", "input", "expected", "answers": [{"miner", "output",
//!   "output_base64", "elapsed_ms"}]}` (`miner` the hotkey in hex, `output` as UTF-8 with bad bytes
//!   replaced, `output_base64` exact); output `{"scores": [0.93, 0.0, ...]}`, one score in `[0, 1]`
//!   per answer, in order.

use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;

use super::{Answer, Challenge, ChallengeFuture, ScoreFuture, Scorer, ScorerError};
use crate::role::miner::MinerBackend;

/// Most answers' worth of scores read back (more answers than miners cannot be).
const MAX_SCORES: usize = 4_096;

/// A scorer that is the subnet owner's program.
pub struct Program {
    kind: &'static str,
    program: Arc<dyn MinerBackend>,
}

impl Program {
    /// A scorer speaking to `program`, an `exec` or `http` backend (`kind` names it in logs).
    pub fn new(kind: &'static str, program: Arc<dyn MinerBackend>) -> Self {
        Self { kind, program }
    }
}

#[derive(Deserialize)]
struct ChallengeReply {
    input: String,
    #[serde(default)]
    expected: String,
    #[serde(default)]
    content_type: String,
}

#[derive(Deserialize)]
struct ScoreReply {
    scores: Vec<f64>,
}

fn bad(what: impl std::fmt::Display) -> ScorerError {
    ScorerError::Program(what.to_string())
}

impl Scorer for Program {
    fn name(&self) -> &'static str {
        self.kind
    }

    fn challenge<'a>(&'a self, task: &'a str) -> ChallengeFuture<'a> {
        Box::pin(async move {
            let request = serde_json::json!({ "task": task }).to_string();
            let output = self
                .program
                .answer("challenge", request.as_bytes())
                .await
                .map_err(|e| bad(format!("challenge: {e}")))?;
            let reply: ChallengeReply = serde_json::from_slice(&output)
                .map_err(|e| bad(format!("challenge reply: {e}")))?;
            Ok(Challenge {
                input: reply.input.into_bytes(),
                content_type: reply.content_type,
                expected: reply.expected.into_bytes(),
            })
        })
    }

    fn score<'a>(
        &'a self,
        task: &'a str,
        challenge: &'a Challenge,
        answers: &'a [Answer],
    ) -> ScoreFuture<'a> {
        Box::pin(async move {
            let base64 = base64::engine::general_purpose::STANDARD;
            let request = serde_json::json!({
                "task": task,
                "input": String::from_utf8_lossy(&challenge.input),
                "expected": String::from_utf8_lossy(&challenge.expected),
                "answers": answers.iter().map(|a| serde_json::json!({
                    "miner": a.miner.to_hex(),
                    "output": String::from_utf8_lossy(&a.output),
                    "output_base64": base64.encode(&a.output),
                    "elapsed_ms": a.elapsed.as_secs_f64() * 1e3,
                })).collect::<Vec<_>>(),
            })
            .to_string();
            let output = self
                .program
                .answer("score", request.as_bytes())
                .await
                .map_err(|e| bad(format!("score: {e}")))?;
            let reply: ScoreReply =
                serde_json::from_slice(&output).map_err(|e| bad(format!("score reply: {e}")))?;
            if reply.scores.len() != answers.len() || reply.scores.len() > MAX_SCORES {
                return Err(bad(format!(
                    "{} scores for {} answers",
                    reply.scores.len(),
                    answers.len()
                )));
            }
            if let Some(s) = reply.scores.iter().find(|s| !(0.0..=1.0).contains(*s)) {
                return Err(bad(format!("score {s} is not in [0, 1]")));
            }
            Ok(reply.scores)
        })
    }
}
