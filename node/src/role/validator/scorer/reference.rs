//! The `reference` scorer: challenges with a known answer; an answer scores 1 when it is exactly
//! right, 0 otherwise.

use super::{Answer, Challenge, ChallengeFuture, ScoreFuture, Scorer, ScorerError, random_u64};
use crate::role::reference;

/// Scores the reference tasks `arith` and `sort`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reference;

impl Scorer for Reference {
    fn name(&self) -> &'static str {
        "reference"
    }

    fn challenge<'a>(&'a self, task: &'a str) -> ChallengeFuture<'a> {
        Box::pin(async move {
            let (input, expected) = reference::challenge(task, random_u64())
                .ok_or_else(|| ScorerError::UnknownTask(task.to_string()))?;
            Ok(Challenge {
                input,
                content_type: String::new(),
                expected,
            })
        })
    }

    fn judges_organic(&self) -> bool {
        true
    }

    fn organic<'a>(
        &'a self,
        task: &'a str,
        input: &'a [u8],
        content_type: &'a str,
    ) -> ChallengeFuture<'a> {
        Box::pin(async move {
            let expected = reference::expected(task, input)
                .map_err(|e| ScorerError::UnknownTask(e.to_string()))?;
            Ok(Challenge {
                input: input.to_vec(),
                content_type: content_type.to_string(),
                expected,
            })
        })
    }

    fn score<'a>(
        &'a self,
        _task: &'a str,
        challenge: &'a Challenge,
        answers: &'a [Answer],
    ) -> ScoreFuture<'a> {
        Box::pin(async move {
            Ok(answers
                .iter()
                .map(|a| f64::from(u8::from(a.output == challenge.expected)))
                .collect())
        })
    }
}
