//! The JSON form of a routed query's answer, shared by the HTTP API and `meshmind query`.

use meshmind_protocols::{Signed, v1};
use serde_json::{Value, json};

fn response(r: &v1::QueryResponse) -> Value {
    json!({
        "output": String::from_utf8_lossy(&r.output),
        "miner": r.signer().map(|k| k.to_hex()).unwrap_or_default(),
        "elapsed_us": r.elapsed_us,
    })
}

/// A validator's answer frame as JSON (one answer, or all of them), or its typed error.
pub fn frame_json(frame: Option<&v1::QueryFrame>) -> Result<Value, (v1::ErrorCode, String)> {
    match frame.and_then(|f| f.body.as_ref()) {
        Some(v1::query_frame::Body::Response(r)) => Ok(response(r)),
        Some(v1::query_frame::Body::Responses(all)) => Ok(json!({
            "answers": all.responses.iter().map(response).collect::<Vec<_>>()
        })),
        Some(v1::query_frame::Body::Error(e)) => Err((
            v1::ErrorCode::try_from(e.code).unwrap_or(v1::ErrorCode::Internal),
            e.message.clone(),
        )),
        _ => Err((v1::ErrorCode::DeadlineExceeded, "no answer in time".into())),
    }
}

/// One line of a streamed answer as JSON: a piece of the answer, the miner's signed end, or an error.
pub fn stream_line(frame: &v1::QueryFrame) -> Value {
    match &frame.body {
        Some(v1::query_frame::Body::Chunk(chunk)) => match &chunk.trailer {
            Some(trailer) if chunk.last => json!({
                "done": true,
                "miner": trailer.signer().map(|k| k.to_hex()).unwrap_or_default(),
                "elapsed_us": trailer.elapsed_us,
                "chunks": chunk.seq,
            }),
            _ => json!({ "chunk": String::from_utf8_lossy(&chunk.data) }),
        },
        _ => match frame_json(Some(frame)) {
            Err((code, message)) => {
                json!({"error": {"code": code.as_str_name(), "message": message}})
            }
            Ok(answer) => answer,
        },
    }
}
