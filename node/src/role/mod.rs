//! The roles a node plays.

pub mod admission;
pub mod miner;
pub mod quota;
pub mod reference;
pub mod stream;
pub mod validator;

use meshmind_protocols::v1;

/// A query-plane frame carrying only an error.
pub(crate) fn error_frame(code: v1::ErrorCode, message: impl Into<String>) -> v1::QueryFrame {
    v1::QueryFrame {
        body: Some(v1::query_frame::Body::Error(v1::Error {
            code: code as i32,
            message: message.into(),
        })),
    }
}
