//! How a validator judges answers: a [`Scorer`] per task, as miners have backends. A scorer makes
//! the challenges (inputs that look like any client's query) and scores the miners' answers to
//! each in `[0, 1]`.
//!
//! Built in: [`Reference`] (the checkable reference tasks) and [`Embedding`] (sentence
//! embeddings, against the validator's own run of the model). [`Program`] hands both jobs to the
//! subnet owner's program, over `exec` or `http`, in any language.

mod corpus;
mod embedding;
mod program;
mod reference;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use meshmind_protocols::PublicKey;

pub use embedding::{EXACT, Embedding, FLOOR};
pub use program::Program;
pub use reference::Reference;

/// Why a scorer could not make a challenge or score answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScorerError {
    /// The scorer has no challenges for the task.
    #[error("no challenges for task {0}")]
    UnknownTask(String),
    /// What the scorer needs is missing (a model file, a program that will not start).
    #[error("scorer unavailable: {0}")]
    Unavailable(String),
    /// The scorer's program answered something unusable.
    #[error("scorer program: {0}")]
    Program(String),
}

/// A challenge: the input sent to the miners, and what the scorer keeps to judge the answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The query's input.
    pub input: Vec<u8>,
    /// Its media type, as client queries of the task carry it (empty: none).
    pub content_type: String,
    /// The scorer's own record (an expected answer, a reference vector); never sent.
    pub expected: Vec<u8>,
}

/// One miner's valid, signed answer to a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The miner's hotkey.
    pub miner: PublicKey,
    /// Its output.
    pub output: Vec<u8>,
    /// How long it took, as the validator saw it.
    pub elapsed: Duration,
}

/// A boxed future returned by [`Scorer::challenge`].
pub type ChallengeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Challenge, ScorerError>> + Send + 'a>>;
/// A boxed future returned by [`Scorer::score`]: one score in `[0, 1]` per answer, in order.
pub type ScoreFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<f64>, ScorerError>> + Send + 'a>>;

/// Makes challenges for tasks and scores the answers.
pub trait Scorer: Send + Sync {
    /// A short name for logs (`reference`, `embedding`, `exec`, `http`).
    fn name(&self) -> &'static str;

    /// A fresh, unpredictable challenge for `task`.
    fn challenge<'a>(&'a self, task: &'a str) -> ChallengeFuture<'a>;

    /// Whether [`Scorer::organic`] can judge answers to clients' queries.
    fn judges_organic(&self) -> bool {
        false
    }

    /// A challenge made of a client's own query (`input` of media type `content_type`), to judge
    /// a routed answer by; an error when this scorer cannot judge answers it did not ask for.
    fn organic<'a>(
        &'a self,
        task: &'a str,
        input: &'a [u8],
        content_type: &'a str,
    ) -> ChallengeFuture<'a> {
        let _ = (input, content_type);
        Box::pin(async move { Err(ScorerError::UnknownTask(task.to_string())) })
    }

    /// The score of each of `answers` to `challenge`, in `[0, 1]` and in order (0: worthless).
    fn score<'a>(
        &'a self,
        task: &'a str,
        challenge: &'a Challenge,
        answers: &'a [Answer],
    ) -> ScoreFuture<'a>;
}

/// The scorer of each task a validator challenges; tasks without one are not challenged.
#[derive(Clone, Default)]
pub struct Scorers {
    by_task: BTreeMap<String, Arc<dyn Scorer>>,
}

impl std::fmt::Debug for Scorers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.by_task.iter().map(|(task, s)| (task, s.name())))
            .finish()
    }
}

impl Scorers {
    /// The reference tasks, scored by [`Reference`].
    pub fn reference() -> Self {
        let mut scorers = Self::default();
        for task in crate::role::reference::TASKS {
            scorers.set(task, Arc::new(Reference));
        }
        scorers
    }

    /// Scores `task` with `scorer` (replacing any other).
    pub fn set(&mut self, task: &str, scorer: Arc<dyn Scorer>) {
        self.by_task.insert(task.to_string(), scorer);
    }

    /// The scorer of `task`.
    pub fn get(&self, task: &str) -> Option<&Arc<dyn Scorer>> {
        self.by_task.get(task)
    }

    /// The tasks scored.
    pub fn tasks(&self) -> impl Iterator<Item = &str> {
        self.by_task.keys().map(String::as_str)
    }
}

/// Eight random bytes as a number, for drawing challenges.
pub(crate) fn random_u64() -> u64 {
    let mut seed = [0u8; 8];
    // Without randomness challenges are still valid, only predictable.
    let _ = getrandom::fill(&mut seed);
    u64::from_le_bytes(seed)
}
