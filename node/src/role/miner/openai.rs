//! The `openai` backend: forwards queries to any OpenAI-compatible server (vLLM, llama.cpp's
//! server, Ollama, TGI, text-embeddings-inference, another meshmind validator), so a miner scales
//! on the serving engine of its choice. The task `embed` goes to `POST <url>/embeddings` and is
//! answered with the vector as little-endian f32; any other task goes to `POST
//! <url>/chat/completions` (the input's `{"messages": [...]}` when it is a conversation in JSON,
//! else the input as the user's one message) and is answered with the reply's text.

use serde::Deserialize;

use super::backend::{AnswerFuture, BackendError, MinerBackend};
use super::embed::TASK as EMBED_TASK;
use crate::http::{ClientError, HttpClient};

/// Longest the server may take for one answer.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Most dimensions of a vector taken from the server.
const MAX_DIMENSIONS: usize = 16_384;

/// Answers through an OpenAI-compatible server.
#[derive(Debug, Clone)]
pub struct OpenAi {
    client: HttpClient,
    /// The API's path prefix (`/v1`).
    prefix: String,
    model: String,
}

impl OpenAi {
    /// A backend for the API at `url` (`http://host:port/v1`) asking for `model`, sending
    /// `api_key` as a bearer token if it is not empty.
    pub fn new(url: &str, model: &str, api_key: &str) -> Result<Self, BackendError> {
        let (client, prefix) = HttpClient::for_url(url).map_err(failed)?;
        let client = if api_key.is_empty() {
            client
        } else {
            client.with_bearer(api_key)
        };
        Ok(Self {
            client,
            prefix: prefix.trim_end_matches('/').to_string(),
            model: model.to_string(),
        })
    }

    async fn call(&self, path: &str, body: serde_json::Value) -> Result<Vec<u8>, BackendError> {
        let url = format!("{}{path}", self.prefix);
        let response = self
            .client
            .post_raw(&url, &body, Some(ANSWER_TIMEOUT))
            .await
            .map_err(failed)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(failed)?;
        if status != 200 {
            let why = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_default();
            return Err(BackendError::Failed(format!(
                "OpenAI-compatible server answered HTTP {status} {why}"
            )));
        }
        Ok(bytes)
    }
}

fn failed(error: ClientError) -> BackendError {
    BackendError::Failed(format!("OpenAI-compatible server: {error}"))
}

fn bad_reply(error: serde_json::Error) -> BackendError {
    BackendError::Failed(format!("OpenAI-compatible server's reply: {error}"))
}

#[derive(Deserialize)]
struct Embeddings {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct Chat {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
}

impl MinerBackend for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn content_type(&self, task: &str) -> &'static str {
        match task {
            EMBED_TASK => meshmind_protocols::media::F32LE,
            _ => meshmind_protocols::media::TEXT,
        }
    }

    fn answer<'a>(&'a self, task: &'a str, input: &'a [u8]) -> AnswerFuture<'a> {
        Box::pin(async move {
            let text = std::str::from_utf8(input)
                .map_err(|_| BackendError::InvalidInput("input is not UTF-8".into()))?;
            if task == EMBED_TASK {
                let body = serde_json::json!({
                    "model": self.model, "input": text, "encoding_format": "float"
                });
                let reply: Embeddings =
                    serde_json::from_slice(&self.call("/embeddings", body).await?)
                        .map_err(bad_reply)?;
                let vector = reply
                    .data
                    .into_iter()
                    .next()
                    .map(|item| item.embedding)
                    .ok_or_else(|| BackendError::Failed("no embedding in the reply".into()))?;
                if vector.is_empty() || vector.len() > MAX_DIMENSIONS {
                    return Err(BackendError::Failed(format!(
                        "a vector of {} dimensions",
                        vector.len()
                    )));
                }
                return Ok(meshmind_models::to_le_bytes(&vector));
            }
            // A conversation (as the gateway's `/v1/chat/completions` sends it) goes on as it
            // is; any other text is the user's one message.
            let messages = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("messages").filter(|m| m.is_array()).cloned())
                .unwrap_or_else(|| serde_json::json!([{ "role": "user", "content": text }]));
            let body = serde_json::json!({ "model": self.model, "messages": messages });
            let reply: Chat = serde_json::from_slice(&self.call("/chat/completions", body).await?)
                .map_err(bad_reply)?;
            reply
                .choices
                .into_iter()
                .next()
                .and_then(|c| c.message.content)
                .map(String::into_bytes)
                .ok_or_else(|| BackendError::Failed("no message in the reply".into()))
        })
    }
}
