//! A backend that POSTs `{"task", "input", "caller": {"hotkey", "stake", "permit"}, "content_type"}` to a
//! local model server (`input_base64` instead of `input` when the input is not UTF-8) and answers
//! with the `output` field of its JSON reply (or the bytes of `output_base64`), for example a
//! Python server. Streamed queries add
//! `"stream": true`; a server that answers `application/x-ndjson` streams `{"chunk": "..."}` lines
//! (and may end with `{"output": "..."}` or `{"error": "..."}`), each relayed as it arrives; a plain JSON
//! answer is relayed whole.

use super::backend::{
    AnswerFuture, Asked, BackendError, ChunkSink, Forwarding, JsonInput, StreamFuture, json_output,
    reader_gone,
};
use crate::http::{ClientError, HttpClient, Response};

/// Longest a whole (not streamed) answer of the model server may take.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Answers through a local HTTP model server.
#[derive(Debug, Clone)]
pub struct Http {
    client: HttpClient,
    path: String,
}

impl Http {
    /// A backend posting to `url` (`http://host:port/path`).
    pub fn new(url: &str) -> Result<Self, BackendError> {
        let (client, path) =
            HttpClient::for_url(url).map_err(|e| BackendError::Failed(e.to_string()))?;
        Ok(Self { client, path })
    }
}

fn failed(error: ClientError) -> BackendError {
    BackendError::Failed(format!("model server: {error}"))
}

/// The JSON body posted to the model server.
fn body(
    asked: Asked<'_>,
    task: &str,
    input: &[u8],
    stream: bool,
) -> Result<serde_json::Value, BackendError> {
    let mut body = serde_json::to_value(JsonInput::of(input))
        .map_err(|e| BackendError::Failed(e.to_string()))?;
    body["task"] = task.into();
    if stream {
        body["stream"] = true.into();
    }
    if !asked.content_type.is_empty() {
        body["content_type"] = asked.content_type.into();
    }
    if let Some(caller) = asked.caller {
        body["caller"] =
            serde_json::to_value(caller).map_err(|e| BackendError::Failed(e.to_string()))?;
    }
    Ok(body)
}

impl Forwarding for Http {
    const NAME: &'static str = "http";

    fn whole<'a>(&'a self, asked: Asked<'a>, task: &'a str, input: &'a [u8]) -> AnswerFuture<'a> {
        Box::pin(async move {
            let body = body(asked, task, input, false)?;
            let response = self
                .client
                .post_raw(&self.path, &body, Some(ANSWER_TIMEOUT))
                .await
                .map_err(failed)?;
            whole_output(ok(response)?).await
        })
    }

    fn pieces<'a>(
        &'a self,
        asked: Asked<'a>,
        task: &'a str,
        input: &'a [u8],
        sink: ChunkSink,
    ) -> StreamFuture<'a> {
        Box::pin(async move {
            let body = body(asked, task, input, true)?;
            let response = self
                .client
                .post_raw(&self.path, &body, None)
                .await
                .map_err(failed)?;
            let response = ok(response)?;
            if !response.content_type().contains("ndjson") {
                let output = whole_output(response).await?;
                return sink.send(output).await.map_err(|_| reader_gone());
            }
            let mut lines = response.lines();
            while let Some(line) = lines.next_line().await.map_err(failed)? {
                if line.trim().is_empty() {
                    continue;
                }
                let piece: serde_json::Value = serde_json::from_str(&line)
                    .map_err(|e| BackendError::Failed(format!("model server line: {e}")))?;
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
            Ok(())
        })
    }
}

/// The answer if the model server's status is 200 OK.
fn ok(response: Response) -> Result<Response, BackendError> {
    match response.status() {
        200 => Ok(response),
        status => Err(BackendError::Failed(format!(
            "model server answered HTTP {status}"
        ))),
    }
}

/// The `output` string of a model server's whole JSON reply.
async fn whole_output(response: Response) -> Result<Vec<u8>, BackendError> {
    let text = response.bytes().await.map_err(failed)?;
    let reply: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| BackendError::Failed(format!("model server reply: {e}")))?;
    let field = |name: &str| reply.get(name).and_then(serde_json::Value::as_str);
    json_output(field("output"), field("output_base64"))?.ok_or_else(|| {
        BackendError::Failed("model server reply has no output (or output_base64) string".into())
    })
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::role::miner::MinerBackend;

    /// A model server on loopback that answers one request with `head` and then `body_len` bytes
    /// of `fill`, written as they are asked for.
    async fn model_server(head: &'static str, body_len: usize, fill: u8) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = vec![0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = head.replace("{len}", &body_len.to_string());
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block = vec![fill; 64 << 10];
            let mut left = body_len;
            while left > 0 {
                let n = left.min(block.len());
                if socket.write_all(&block[..n]).await.is_err() {
                    return;
                }
                left -= n;
            }
        });
        format!("http://{addr}/model")
    }

    #[test]
    fn bytes_that_are_not_text_are_posted_and_read_as_base64() {
        let asked = Asked::default();
        let text = body(asked, "t", b"a b", false).expect("a body");
        assert_eq!(
            (text["input"].as_str(), text.get("input_base64")),
            (Some("a b"), None)
        );
        let binary = body(asked, "t", &[0xff, 0x00], false).expect("a body");
        assert_eq!(
            (binary.get("input"), binary["input_base64"].as_str()),
            (None, Some("/wA="))
        );
        assert_eq!(
            json_output(Some("ignored"), Some("/wA=")).ok(),
            Some(Some(vec![0xff, 0x00]))
        );
        assert_eq!(json_output(Some("x"), None).ok(), Some(Some(b"x".to_vec())));
        assert!(json_output(None, Some("not base64!")).is_err());
    }

    #[tokio::test]
    async fn a_model_server_line_without_end_is_cut_at_the_line_cap() {
        // 64 MiB of one streamed "line" that never ends.
        let url = model_server(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ncontent-length: {len}\r\n\r\n",
            64 << 20,
            b'a',
        )
        .await;
        let backend = Http::new(&url).expect("backend");
        let (sink, mut chunks) = tokio::sync::mpsc::channel(4);
        let error = backend
            .answer_stream("sort", b"b a", sink)
            .await
            .expect_err("an endless line is refused");
        assert!(
            error
                .to_string()
                .contains(&crate::http::MAX_LINE.to_string()),
            "{error}"
        );
        assert!(chunks.try_recv().is_err(), "nothing was relayed");
    }

    #[tokio::test]
    async fn a_whole_answer_over_the_body_cap_is_refused() {
        let url = model_server(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n",
            crate::http::MAX_BODY + 1,
            b' ',
        )
        .await;
        let backend = Http::new(&url).expect("backend");
        let error = backend
            .answer("sort", b"b a")
            .await
            .expect_err("an oversized answer is refused");
        assert!(
            error
                .to_string()
                .contains(&crate::http::MAX_BODY.to_string()),
            "{error}"
        );
    }
}
