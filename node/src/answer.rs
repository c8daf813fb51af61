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
