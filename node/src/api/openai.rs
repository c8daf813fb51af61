//! OpenAI-compatible routes on validators: `POST /v1/embeddings` (OpenAI's request, response and
//! error shapes) routed to the miners of the embed task, so OpenAI's own client libraries work
//! against a node unchanged, `POST /v1/chat/completions` over a text-generation task
//! (`chat.rs`), and `GET /v1/models`.

pub mod chat;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use meshmind_models::{DIM, MAX_TEXT_BYTES};
use meshmind_protocols::{media, v1};
use serde::{Deserialize, Serialize};

use super::NodeState;
use crate::clock::now_ms;
use crate::role::miner::EMBED_TASK;
use crate::role::validator::{Client, Validator, Validators};

/// Most texts in one request.
pub const MAX_INPUTS: usize = 256;
/// Time each text has to be embedded by a miner.
const DEADLINE_MS: u32 = 5_000;
/// The model names that mean this validator's embed task (with `embed` and `<subnet>/embed`).
const MODEL_ALIASES: [&str; 2] = ["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"];

/// `input`: one text or a list of texts (token arrays are not accepted).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
}

/// `POST /v1/embeddings`, as OpenAI's API takes it.
#[derive(Debug, Deserialize)]
struct EmbeddingsRequest {
    model: String,
    input: Input,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<usize>,
    #[serde(default)]
    #[allow(dead_code)]
    user: Option<String>,
}

/// One vector, as a list of floats or as base64 of little-endian f32 (`encoding_format`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Vector {
    /// `encoding_format: "float"` (the default).
    Floats(Vec<f32>),
    /// `encoding_format: "base64"`.
    Base64(String),
}

/// One text's vector in an answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct EmbeddingItem {
    /// Always `embedding`.
    pub object: String,
    /// Which input it embeds.
    pub index: usize,
    /// The vector.
    pub embedding: Vector,
}

/// Tokens read (words, see [`embeddings`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the inputs.
    pub prompt_tokens: usize,
    /// The same.
    pub total_tokens: usize,
}

/// `POST /v1/embeddings` answered.
#[derive(Debug, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    /// Always `list`.
    pub object: String,
    /// One vector per input, in order.
    pub data: Vec<EmbeddingItem>,
    /// The model asked for.
    pub model: String,
    /// Tokens read.
    pub usage: Usage,
}

/// An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
pub(crate) fn error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "error": { "message": message, "type": kind, "param": null, "code": code }
    });
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, 1.into());
    }
    response
}

/// OpenAI's answer to a model it does not have.
pub(crate) fn model_not_found(message: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "model_not_found",
        message,
    )
}

pub(crate) fn invalid(message: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_request",
        message,
    )
}

/// The task `model` names, and its subnet if named: `<task>`, `<subnet>/<task>`, or an alias
/// of the embedding model (the task `embed`).
fn parse_model(model: &str) -> Option<(Option<u32>, &str)> {
    if MODEL_ALIASES.contains(&model) {
        return Some((None, EMBED_TASK));
    }
    match model.split_once('/') {
        None if !model.is_empty() => Some((None, model)),
        None => None,
        Some((subnet, task)) if !task.is_empty() => Some((Some(subnet.parse().ok()?), task)),
        Some(_) => None,
    }
}

/// The validator and task `model` names here: `<subnet>/<task>` on a subnet validated here, or
/// `<task>` on the validated subnet that serves it best ([`Validators::subnet_for`]); else why
/// not, naming what is served.
pub(crate) fn resolve(
    validators: &Validators,
    model: &str,
) -> Result<(Arc<Validator>, String), String> {
    let served = || served_models(validators).join(", ");
    let Some((subnet, task)) = parse_model(model) else {
        return Err(format!(
            "model {model:?}: name a task, as one of {}",
            served()
        ));
    };
    let subnet = subnet.or_else(|| validators.subnet_for(task, now_ms()));
    match subnet.and_then(|s| validators.get(s)) {
        Some(validator) => Ok((validator, task.to_string())),
        None => Err(format!(
            "model {model:?}: its subnet is not validated here; served: {}",
            served()
        )),
    }
}

/// Every `<subnet>/<task>` validated here.
fn served_models(validators: &Validators) -> Vec<String> {
    validators
        .all()
        .into_iter()
        .flat_map(|(subnet, v)| {
            v.tasks()
                .iter()
                .map(|t| format!("{subnet}/{t}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `GET /v1/models`: every task validated here, as `<subnet>/<task>` and as `<task>`, and the
/// embedding model's names when a subnet here serves it.
pub async fn models(State(state): State<Arc<NodeState>>) -> Response {
    let mut ids = Vec::new();
    if let Some(validators) = &state.validators {
        ids = served_models(validators);
        let mut tasks: Vec<String> = validators
            .all()
            .into_iter()
            .flat_map(|(_, v)| v.tasks().to_vec())
            .collect();
        tasks.sort();
        tasks.dedup();
        if tasks.iter().any(|t| t == EMBED_TASK) {
            tasks.extend(MODEL_ALIASES.iter().map(|a| a.to_string()));
        }
        ids.extend(tasks);
    }
    let data: Vec<_> = ids
        .iter()
        .map(|id| serde_json::json!({ "id": id, "object": "model", "created": 0, "owned_by": "meshmind" }))
        .collect();
    Json(serde_json::json!({ "object": "list", "data": data })).into_response()
}

/// `POST /v1/embeddings`: each text is one query to the embed task, routed as any other.
pub async fn embeddings(
    State(state): State<Arc<NodeState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Response {
    let request: EmbeddingsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return invalid(&format!("request body: {e}")),
    };
    let Some(validators) = &state.validators else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "unavailable",
            "only validators route queries",
        );
    };
    let validator = match resolve(validators, &request.model) {
        Ok((validator, task)) if task == EMBED_TASK => validator,
        Ok((_, task)) => {
            return model_not_found(&format!(
                "model {:?}: task {task:?} is not {EMBED_TASK:?}; embeddings come from {EMBED_TASK:?} or \"<subnet>/{EMBED_TASK}\"",
                request.model
            ));
        }
        Err(why) => return model_not_found(&why),
    };
    let subnet = validator.subnet();
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return invalid(&format!("encoding_format {other:?}: float or base64"));
        }
    };
    if let Some(d) = request.dimensions.filter(|d| *d != DIM) {
        return invalid(&format!("dimensions {d}: this model's vectors have {DIM}"));
    }
    let texts = match request.input {
        Input::One(text) => vec![text],
        Input::Many(texts) => texts,
    };
    if texts.is_empty() || texts.len() > MAX_INPUTS {
        return invalid(&format!(
            "input: 1 to {MAX_INPUTS} texts, not {}",
            texts.len()
        ));
    }
    if let Some((i, text)) = texts
        .iter()
        .enumerate()
        .find(|(_, t)| t.len() > MAX_TEXT_BYTES)
    {
        return invalid(&format!(
            "input {i}: {} bytes, at most {MAX_TEXT_BYTES}",
            text.len()
        ));
    }
    // Every text is a query and is charged to the client as one, all at once or not at all.
    let client = Client::http(from.ip());
    if !validators.admit_client_n(client, texts.len() as u32) {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "rate_limit_exceeded",
            "over this address's query rate at this validator",
        );
    }
    let network_id = state.genesis.network_id;
    let validator = &validator;
    let routed = futures::future::join_all(texts.iter().map(|text| {
        let query = v1::Query {
            content_type: media::TEXT.to_string(),
            ..v1::Query::new(
                network_id,
                subnet,
                EMBED_TASK,
                text.as_bytes().to_vec(),
                DEADLINE_MS,
            )
        };
        async move {
            if let Err(e) = meshmind_protocols::Validate::validate(&query) {
                return Err((v1::ErrorCode::Malformed, e.to_string()));
            }
            let budget = Duration::from_millis(u64::from(DEADLINE_MS) + 100);
            let frame = tokio::time::timeout(budget, validator.route(&query, now_ms()))
                .await
                .ok();
            match frame.and_then(|f| f.body) {
                Some(v1::query_frame::Body::Response(r)) => {
                    if !r.content_type.is_empty() && r.content_type != media::F32LE {
                        return Err((
                            v1::ErrorCode::Internal,
                            format!(
                                "the miner answered {}, not {}",
                                r.content_type,
                                media::F32LE
                            ),
                        ));
                    }
                    meshmind_models::from_le_bytes(&r.output, DIM)
                        .map_err(|e| (v1::ErrorCode::Internal, format!("the miner's answer: {e}")))
                }
                Some(v1::query_frame::Body::Error(e)) => Err((
                    v1::ErrorCode::try_from(e.code).unwrap_or(v1::ErrorCode::Internal),
                    e.message,
                )),
                _ => Err((v1::ErrorCode::DeadlineExceeded, "no answer in time".into())),
            }
        }
    }))
    .await;
    let mut data = Vec::with_capacity(routed.len());
    for (index, result) in routed.into_iter().enumerate() {
        let vector = match result {
            Ok(vector) => vector,
            Err((code, message)) => {
                return routing_error(code, &format!("input {index}: {message}"));
            }
        };
        let embedding = if base64 {
            let bytes = meshmind_models::to_le_bytes(&vector);
            Vector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            Vector::Floats(vector)
        };
        data.push(EmbeddingItem {
            object: "embedding".into(),
            index,
            embedding,
        });
    }
    // Tokens are counted by the miners' tokenizer, which the gateway does not run: words stand in.
    let words = texts.iter().map(|t| t.split_whitespace().count()).sum();
    Json(EmbeddingsResponse {
        object: "list".into(),
        data,
        model: request.model,
        usage: Usage {
            prompt_tokens: words,
            total_tokens: words,
        },
    })
    .into_response()
}

/// The HTTP status, OpenAI error type and code of a network error, as `/query` maps it.
pub(crate) fn kind_of(code: v1::ErrorCode) -> (StatusCode, &'static str, &'static str) {
    match code {
        v1::ErrorCode::Overloaded => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "overloaded",
        ),
        v1::ErrorCode::Malformed | v1::ErrorCode::TooLarge => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_request",
        ),
        v1::ErrorCode::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "server_error", "timeout"),
        v1::ErrorCode::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "unavailable",
        ),
        _ => (StatusCode::BAD_GATEWAY, "server_error", "bad_gateway"),
    }
}

/// A query the network could not answer, as OpenAI's error with the HTTP status `/query` uses.
pub(crate) fn routing_error(code: v1::ErrorCode, message: &str) -> Response {
    let (status, kind, name) = kind_of(code);
    error(status, kind, name, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_map_to_a_task_and_maybe_a_subnet() {
        assert_eq!(parse_model("embed"), Some((None, "embed")));
        assert_eq!(parse_model("all-MiniLM-L6-v2"), Some((None, "embed")));
        assert_eq!(
            parse_model("sentence-transformers/all-MiniLM-L6-v2"),
            Some((None, "embed"))
        );
        assert_eq!(parse_model("3/embed"), Some((Some(3), "embed")));
        assert_eq!(parse_model("3/sort"), Some((Some(3), "sort")));
        assert_eq!(parse_model("gpt-4"), Some((None, "gpt-4")));
        assert_eq!(parse_model("x/embed"), None);
        assert_eq!(parse_model("3/"), None);
        assert_eq!(parse_model(""), None);
    }
}
