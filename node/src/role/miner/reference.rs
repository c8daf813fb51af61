//! The `reference` backend: answers the built-in reference tasks.

use super::backend::{AnswerFuture, BackendError, MinerBackend};
use crate::role::reference::{self, TaskError};

/// Serves the reference tasks `arith` (evaluate an integer expression) and `sort` (sort words).
#[derive(Debug, Clone, Copy, Default)]
pub struct Reference;

impl Reference {
    /// The tasks this backend serves.
    pub const TASKS: [&'static str; 2] = reference::TASKS;
}

impl From<TaskError> for BackendError {
    fn from(error: TaskError) -> Self {
        match error {
            TaskError::InvalidInput(reason) => BackendError::InvalidInput(reason),
            TaskError::UnknownTask(task) => BackendError::UnknownTask(task),
        }
    }
}

impl MinerBackend for Reference {
    fn name(&self) -> &'static str {
        "reference"
    }

    fn content_type(&self, _task: &str) -> &'static str {
        meshmind_protocols::media::TEXT
    }

    fn answer<'a>(&'a self, task: &'a str, input: &'a [u8]) -> AnswerFuture<'a> {
        Box::pin(async move { Ok(reference::expected(task, input)?) })
    }
}
