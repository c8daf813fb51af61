//! Framing of query-plane streams.

use crate::error::{QueryError, QueryErrorCode};

/// Bytes of a request header: deadline and length.
pub(super) const REQUEST_HEADER: usize = 8;
/// Bytes of a response frame header: kind and length.
pub(super) const FRAME_HEADER: usize = 5;
/// Frame kind of a data frame.
pub(super) const KIND_DATA: u8 = 0;
/// Frame kind of an error frame.
pub(super) const KIND_ERROR: u8 = 1;

/// Encodes a request: header and body.
pub(super) fn request(deadline_ms: u32, payload: &[u8]) -> [u8; REQUEST_HEADER] {
    let mut header = [0u8; REQUEST_HEADER];
    header[..4].copy_from_slice(&deadline_ms.to_be_bytes());
    header[4..].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    header
}

/// Splits a request header into deadline and length.
pub(super) fn parse_request(header: [u8; REQUEST_HEADER]) -> (u32, usize) {
    let deadline = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    (deadline, len)
}

/// A response frame header.
pub(super) fn frame_header(kind: u8, len: usize) -> [u8; FRAME_HEADER] {
    let mut header = [0u8; FRAME_HEADER];
    header[0] = kind;
    header[1..].copy_from_slice(&(len as u32).to_be_bytes());
    header
}

/// Splits a response frame header into kind and length.
pub(super) fn parse_frame_header(header: [u8; FRAME_HEADER]) -> (u8, usize) {
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    (header[0], len)
}

/// The body of an error frame.
pub(super) fn error_body(code: QueryErrorCode, message: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(1 + message.len());
    body.push(code as u8);
    body.extend_from_slice(message.as_bytes());
    body
}

/// Reads an error frame's body as a query error.
pub(super) fn parse_error(body: &[u8]) -> QueryError {
    match body.split_first() {
        Some((code, message)) => QueryError::Remote {
            code: QueryErrorCode::from_wire(*code),
            message: String::from_utf8_lossy(message).into_owned(),
        },
        None => QueryError::Malformed("empty error frame".into()),
    }
}
