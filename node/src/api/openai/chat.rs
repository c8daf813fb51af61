//! `POST /v1/chat/completions`: OpenAI's chat API over a subnet's text-generation task. `model`
//! names the task (`<task>` on this validator's subnet, or `<subnet>/<task>`); the conversation
//! goes to the miner as the query's input, `{"messages": [{"role", "content"}, ...]}` in JSON;
//! the miner's output is the assistant's reply. With `stream: true` the reply comes as
//! server-sent events, one `chat.completion.chunk` per piece the miner streams, then `[DONE]`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use meshmind_protocols::{media, v1};
use serde::Deserialize;

use super::{error, invalid, kind_of, routing_error};
use crate::api::NodeState;
use crate::clock::now_ms;
use crate::role::validator::Client;

/// Time the miner has to answer.
const DEADLINE_MS: u32 = 30_000;
/// Most messages in one conversation.
const MAX_MESSAGES: usize = 256;

/// A message's content: text, or a list of parts of which the text ones are kept.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    role: String,
    /// Absent or null on an assistant's tool call.
    #[serde(default)]
    content: Option<Content>,
}

/// The fields used; the sampling options a client may add are not the network's to apply and are
/// ignored.
#[derive(Debug, Deserialize)]
struct ChatRequest {
    model: String,
    messages: Vec<Message>,
    #[serde(default)]
    stream: bool,
}

/// `POST /v1/chat/completions`.
pub async fn completions(
    State(state): State<Arc<NodeState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Response {
    let Some(validators) = state.validators.clone() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "unavailable",
            "only validators route queries",
        );
    };
    // Charged before the body is read: a flood costs its sender, not our parser.
    if !validators.admit_client(Client::http(from.ip())) {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "rate_limit_exceeded",
            "over this address's query rate at this validator",
        );
    }
    let request: ChatRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return invalid(&format!("request body: {e}")),
    };
    let (validator, task) = match super::resolve(&validators, &request.model) {
        Ok((validator, task)) => (validator.clone(), task),
        Err(why) => return super::model_not_found(&why),
    };
    let subnet = validator.subnet();
    if request.messages.is_empty() || request.messages.len() > MAX_MESSAGES {
        return invalid(&format!(
            "messages: 1 to {MAX_MESSAGES}, not {}",
            request.messages.len()
        ));
    }
    let messages: Vec<serde_json::Value> = request
        .messages
        .iter()
        .map(|m| {
            let text = match &m.content {
                None => String::new(),
                Some(Content::Text(text)) => text.clone(),
                Some(Content::Parts(parts)) => parts
                    .iter()
                    .filter_map(|p| p.text.as_deref())
                    .collect::<Vec<_>>()
                    .join(""),
            };
            serde_json::json!({ "role": m.role, "content": text })
        })
        .collect();
    let payload = serde_json::json!({ "messages": messages }).to_string();
    let query = v1::Query {
        stream: request.stream,
        content_type: media::JSON.to_string(),
        ..v1::Query::new(
            state.genesis.network_id,
            subnet,
            task,
            payload.into_bytes(),
            DEADLINE_MS,
        )
    };
    if let Err(e) = meshmind_protocols::Validate::validate(&query) {
        return invalid(&e.to_string());
    }
    let id = format!("chatcmpl-{}", hex::encode(&query.id));
    let created = now_ms() / 1000;
    if request.stream {
        return stream(validator, query, id, request.model, created).await;
    }
    let budget = Duration::from_millis(u64::from(DEADLINE_MS) + 100);
    let frame = tokio::time::timeout(budget, validator.route(&query, now_ms()))
        .await
        .ok();
    let text = match frame.and_then(|f| f.body) {
        Some(v1::query_frame::Body::Response(r)) => String::from_utf8_lossy(&r.output).into_owned(),
        Some(v1::query_frame::Body::Error(e)) => {
            let code = v1::ErrorCode::try_from(e.code).unwrap_or(v1::ErrorCode::Internal);
            return routing_error(code, &e.message);
        }
        _ => return routing_error(v1::ErrorCode::DeadlineExceeded, "no answer in time"),
    };
    Json(serde_json::json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": request.model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": text },
            "finish_reason": "stop",
        }],
        "usage": { "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0 },
    }))
    .into_response()
}

/// What every event of one streamed reply repeats.
struct Meta {
    id: String,
    model: String,
    created: u64,
}

impl Meta {
    /// One `chat.completion.chunk` event.
    fn event(&self, delta: serde_json::Value, finish: Option<&str>) -> String {
        let event = serde_json::json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        });
        format!("data: {event}\n\n")
    }
}

/// Text of `pending` that is whole UTF-8, leaving an unfinished character for the next piece.
fn whole_text(pending: &mut Vec<u8>) -> String {
    let cut = match std::str::from_utf8(pending) {
        Ok(_) => pending.len(),
        // An invalid sequence in the middle is replaced; only a cut-off last character waits.
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => pending.len(),
    };
    let rest = pending.split_off(cut);
    let text = String::from_utf8_lossy(pending).into_owned();
    *pending = rest;
    text
}

/// The streamed reply as server-sent events. The first frame is awaited before answering, so a
/// query no miner takes gets its HTTP status (429, 503, 504) as a whole reply does.
async fn stream(
    validator: Arc<crate::role::validator::Validator>,
    query: v1::Query,
    id: String,
    model: String,
    created: u64,
) -> Response {
    let (out, mut frames) = tokio::sync::mpsc::channel::<v1::QueryFrame>(16);
    // A client that hangs up drops the body, which stops the routing.
    tokio::spawn(async move { validator.route_stream(&query, now_ms(), out).await });
    let first = match frames.recv().await {
        Some(v1::QueryFrame {
            body: Some(v1::query_frame::Body::Error(e)),
        }) => {
            let code = v1::ErrorCode::try_from(e.code).unwrap_or(v1::ErrorCode::Internal);
            return routing_error(code, &e.message);
        }
        Some(frame) => frame,
        None => return routing_error(v1::ErrorCode::DeadlineExceeded, "no answer in time"),
    };
    let meta = Arc::new(Meta { id, model, created });
    // (frames, the frame in hand, first event, text not yet whole, ended)
    let start = (frames, Some(first), true, Vec::new(), false);
    let events = futures::stream::unfold(start, move |state| {
        let meta = meta.clone();
        async move {
            let (mut frames, held, first, mut pending, ended) = state;
            if ended {
                return None;
            }
            let frame = match held {
                Some(frame) => frame,
                None => frames.recv().await?,
            };
            let (text, ended) = match frame.body {
                Some(v1::query_frame::Body::Chunk(c)) => {
                    pending.extend_from_slice(&c.data);
                    let mut events = String::new();
                    let content = if c.last {
                        String::from_utf8_lossy(&std::mem::take(&mut pending)).into_owned()
                    } else {
                        whole_text(&mut pending)
                    };
                    if !content.is_empty() || first {
                        let mut delta = serde_json::json!({ "content": content });
                        if first {
                            delta["role"] = "assistant".into();
                        }
                        events.push_str(&meta.event(delta, None));
                    }
                    if c.last {
                        events.push_str(&meta.event(serde_json::json!({}), Some("stop")));
                        events.push_str("data: [DONE]\n\n");
                    }
                    (events, c.last)
                }
                Some(v1::query_frame::Body::Error(e)) => {
                    let code = v1::ErrorCode::try_from(e.code).unwrap_or(v1::ErrorCode::Internal);
                    let (_, kind, name) = kind_of(code);
                    let body = serde_json::json!({ "error": {
                        "message": e.message, "type": kind, "param": null, "code": name,
                    }});
                    (format!("data: {body}\n\n"), true)
                }
                _ => return None,
            };
            Some((
                Ok::<_, std::convert::Infallible>(text),
                (frames, None, false, pending, ended),
            ))
        }
    });
    (
        [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
        axum::body::Body::from_stream(events),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_cut_between_pieces_waits_for_its_end() {
        let mut pending = "ké".as_bytes()[..2].to_vec();
        assert_eq!(whole_text(&mut pending), "k");
        pending.extend_from_slice(&"é".as_bytes()[1..]);
        pending.extend_from_slice(b"x");
        assert_eq!(whole_text(&mut pending), "éx");
        assert!(pending.is_empty());
        let mut bad = vec![b'a', 0xff, b'b'];
        assert_eq!(whole_text(&mut bad), "a\u{fffd}b");
    }
}
