//! A backend that POSTs `{"task": ..., "input": ...}` to a local model server and answers with the
//! `output` field of its JSON reply (for example, a Python server).

use super::backend::{AnswerFuture, BackendError, MinerBackend};
use crate::http_client;

/// Answers through a local HTTP model server.
#[derive(Debug, Clone)]
pub struct Http {
    base: String,
    path: String,
}

impl Http {
    /// A backend posting to `url` (`http://host:port/path`).
    pub fn new(url: &str) -> Result<Self, BackendError> {
        let (base, path) =
            http_client::split_url(url).map_err(|e| BackendError::Failed(e.to_string()))?;
        Ok(Self { base, path })
    }
}

impl MinerBackend for Http {
    fn name(&self) -> &'static str {
        "http"
    }

    fn answer<'a>(&'a self, task: &'a str, input: &'a [u8]) -> AnswerFuture<'a> {
        Box::pin(async move {
            let input = std::str::from_utf8(input)
                .map_err(|_| BackendError::InvalidInput("input is not UTF-8".into()))?;
            let body = serde_json::json!({ "task": task, "input": input }).to_string();
            let (status, text) = http_client::request(&self.base, "POST", &self.path, Some(&body))
                .await
                .map_err(|e| BackendError::Failed(format!("model server: {e:#}")))?;
            if status != 200 {
                return Err(BackendError::Failed(format!(
                    "model server answered HTTP {status}"
                )));
            }
            let reply: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| BackendError::Failed(format!("model server reply: {e}")))?;
            match reply.get("output").and_then(serde_json::Value::as_str) {
                Some(output) => Ok(output.as_bytes().to_vec()),
                None => Err(BackendError::Failed(
                    "model server reply has no output string".into(),
                )),
            }
        })
    }
}
