//! A backend that POSTs `{"task": ..., "input": ...}` to a local model server and answers with the
//! `output` field of its JSON reply (for example, a Python server). Streamed queries add
//! `"stream": true`; a server that answers `application/x-ndjson` streams `{"chunk": "..."}` lines
//! (and may end with `{"output": "..."}` or `{"error": "..."}`), each relayed as it arrives; a plain JSON
//! answer is relayed whole.

use super::backend::{
    AnswerFuture, BackendError, ChunkSink, MinerBackend, StreamFuture, reader_gone,
};
use crate::http_client::{self, Part};

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
            output_of(&reply)
        })
    }

    fn answer_stream<'a>(
        &'a self,
        task: &'a str,
        input: &'a [u8],
        sink: ChunkSink,
    ) -> StreamFuture<'a> {
        Box::pin(async move {
            let input = std::str::from_utf8(input)
                .map_err(|_| BackendError::InvalidInput("input is not UTF-8".into()))?;
            let body =
                serde_json::json!({ "task": task, "input": input, "stream": true }).to_string();
            let (parts_tx, parts) = tokio::sync::mpsc::channel(16);
            let request =
                http_client::stream_lines(&self.base, "POST", &self.path, Some(&body), parts_tx);
            let relay = async move {
                let mut parts = parts;
                let (mut status, mut ndjson, mut whole) = (0u16, false, String::new());
                while let Some(part) = parts.recv().await {
                    match part {
                        Part::Head {
                            status: s,
                            content_type,
                        } => {
                            status = s;
                            ndjson = content_type.contains("ndjson");
                        }
                        Part::Line(line) if ndjson && status == 200 => {
                            if line.trim().is_empty() {
                                continue;
                            }
                            let piece: serde_json::Value =
                                serde_json::from_str(&line).map_err(|e| {
                                    BackendError::Failed(format!("model server line: {e}"))
                                })?;
                            if let Some(error) = piece.get("error") {
                                return Err(BackendError::Failed(format!("model server: {error}")));
                            }
                            let text = piece
                                .get("chunk")
                                .or_else(|| piece.get("output"))
                                .and_then(serde_json::Value::as_str)
                                .unwrap_or_default();
                            if !text.is_empty() {
                                sink.send(text.as_bytes().to_vec())
                                    .await
                                    .map_err(|_| reader_gone())?;
                            }
                        }
                        Part::Line(line) => {
                            whole.push_str(&line);
                            whole.push('\n');
                        }
                    }
                }
                if status != 200 {
                    return Err(BackendError::Failed(format!(
                        "model server answered HTTP {status}"
                    )));
                }
                if !ndjson {
                    let reply: serde_json::Value = serde_json::from_str(&whole)
                        .map_err(|e| BackendError::Failed(format!("model server reply: {e}")))?;
                    let output = output_of(&reply)?;
                    sink.send(output).await.map_err(|_| reader_gone())?;
                }
                Ok(())
            };
            let (requested, relayed) = tokio::join!(request, relay);
            relayed?;
            requested.map_err(|e| BackendError::Failed(format!("model server: {e:#}")))
        })
    }
}

/// The `output` string of a model server's JSON reply.
fn output_of(reply: &serde_json::Value) -> Result<Vec<u8>, BackendError> {
    match reply.get("output").and_then(serde_json::Value::as_str) {
        Some(output) => Ok(output.as_bytes().to_vec()),
        None => Err(BackendError::Failed(
            "model server reply has no output string".into(),
        )),
    }
}
