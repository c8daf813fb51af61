//! Why a node does not answer a query, as one typed reason with its wire code: refusals at
//! admission (limits, malformed or misdirected queries) and failures while answering.

use meshmind_protocols::{DecodeError, NetworkId, ValidationError, Wire, decode, v1};

use super::miner::BackendError;
use super::stream::MAX_STREAM_BYTES;

/// Why a query gets an error instead of an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionError {
    /// The caller is over its rate limit.
    #[error("rate limit exceeded")]
    RateLimited,
    /// Every slot is busy.
    #[error("at the concurrency limit")]
    Busy,
    /// The miner does not answer this caller (it answers only the callers named).
    #[error("this miner answers {0}")]
    NotAdmitted(&'static str),
    /// The frame does not decode.
    #[error(transparent)]
    Undecodable(#[from] DecodeError),
    /// The frame is bigger than any query may be.
    #[error("query frame over {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The frame is not a query.
    #[error("expected a query")]
    NotAQuery,
    /// The query breaks a field rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The query names another network.
    #[error("query for another network")]
    WrongNetwork,
    /// The query's subnet is not served (or validated) here.
    #[error("subnet {0} is not served here")]
    UnknownSubnet(u32),
    /// The query's task is not served here.
    #[error("task {0} is not served here")]
    UnknownTask(String),
    /// The backend did not answer within the query's deadline.
    #[error("the backend was too slow")]
    TooSlow,
    /// The streamed answer grew past the limit.
    #[error("answer over {MAX_STREAM_BYTES} bytes")]
    AnswerTooLarge,
    /// The backend refused or failed.
    #[error(transparent)]
    Backend(BackendError),
}

impl AdmissionError {
    /// The error code sent on the wire.
    pub fn code(&self) -> v1::ErrorCode {
        use v1::ErrorCode;
        match self {
            AdmissionError::RateLimited | AdmissionError::Busy => ErrorCode::Overloaded,
            AdmissionError::NotAdmitted(_) => ErrorCode::Refused,
            AdmissionError::Undecodable(_)
            | AdmissionError::NotAQuery
            | AdmissionError::Invalid(_) => ErrorCode::Malformed,
            AdmissionError::TooLarge { .. } | AdmissionError::AnswerTooLarge => ErrorCode::TooLarge,
            AdmissionError::WrongNetwork => ErrorCode::WrongNetwork,
            AdmissionError::UnknownSubnet(_) => ErrorCode::UnknownSubnet,
            AdmissionError::UnknownTask(_) => ErrorCode::UnknownTask,
            AdmissionError::TooSlow => ErrorCode::DeadlineExceeded,
            AdmissionError::Backend(BackendError::InvalidInput(_)) => ErrorCode::Malformed,
            AdmissionError::Backend(BackendError::UnknownTask(_)) => ErrorCode::UnknownTask,
            AdmissionError::Backend(BackendError::Busy(_)) => ErrorCode::Overloaded,
            AdmissionError::Backend(_) => ErrorCode::Internal,
        }
    }

    /// The message sent on the wire.
    pub fn message(&self) -> String {
        match self {
            AdmissionError::Backend(BackendError::InvalidInput(reason)) => reason.clone(),
            AdmissionError::Backend(BackendError::UnknownTask(task)) => {
                AdmissionError::UnknownTask(task.clone()).to_string()
            }
            other => other.to_string(),
        }
    }

    /// This refusal as the wire's error.
    pub fn to_wire(&self) -> v1::Error {
        v1::Error {
            code: self.code() as i32,
            message: self.message(),
        }
    }

    /// A frame carrying only this refusal.
    pub fn frame(&self) -> v1::QueryFrame {
        v1::QueryFrame {
            body: Some(v1::query_frame::Body::Error(self.to_wire())),
        }
    }
}

/// The query in a query-plane frame, checked against the wire rules.
pub fn read_query(payload: &[u8]) -> Result<v1::Query, AdmissionError> {
    let frame = decode::<v1::QueryFrame>(payload).map_err(|e| {
        if payload.len() > <v1::QueryFrame as Wire>::MAX_SIZE {
            AdmissionError::TooLarge {
                limit: <v1::QueryFrame as Wire>::MAX_SIZE,
            }
        } else {
            AdmissionError::Undecodable(e)
        }
    })?;
    let Some(v1::query_frame::Body::Query(query)) = frame.body else {
        return Err(AdmissionError::NotAQuery);
    };
    meshmind_protocols::Validate::validate(&query)?;
    Ok(query)
}

/// Checks that `query` is for `network_id` and `subnet`.
pub fn check_target(
    query: &v1::Query,
    network_id: &NetworkId,
    subnet: u32,
) -> Result<(), AdmissionError> {
    if !network_id.is(&query.network_id) {
        return Err(AdmissionError::WrongNetwork);
    }
    if query.subnet != subnet {
        return Err(AdmissionError::UnknownSubnet(query.subnet));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn every_reason_has_its_code() {
        let query = v1::Query::new(NetworkId::new([1; 32]), 1, "sort", b"b a".to_vec(), 1000);
        let frame = v1::QueryFrame {
            body: Some(v1::query_frame::Body::Query(query.clone())),
        };
        assert_eq!(read_query(&frame.encode_to_vec()).ok(), Some(query.clone()));
        let code = |r: Result<v1::Query, AdmissionError>| r.err().map(|e| e.code());
        assert_eq!(
            code(read_query(b"\xff\xff")),
            Some(v1::ErrorCode::Malformed)
        );
        let big = vec![0u8; <v1::QueryFrame as Wire>::MAX_SIZE + 1];
        assert_eq!(code(read_query(&big)), Some(v1::ErrorCode::TooLarge));
        let response = v1::QueryFrame {
            body: Some(v1::query_frame::Body::Responses(
                v1::QueryResponses::default(),
            )),
        };
        assert_eq!(
            code(read_query(&response.encode_to_vec())),
            Some(v1::ErrorCode::Malformed)
        );
        assert_eq!(
            check_target(&query, &NetworkId::new([2; 32]), 1).map_err(|e| e.code()),
            Err(v1::ErrorCode::WrongNetwork)
        );
        assert_eq!(
            check_target(&query, &NetworkId::new([1; 32]), 2).map_err(|e| e.code()),
            Err(v1::ErrorCode::UnknownSubnet)
        );
        let backend = AdmissionError::Backend(BackendError::InvalidInput("not a number".into()));
        assert_eq!(
            (backend.code(), backend.message().as_str()),
            (v1::ErrorCode::Malformed, "not a number")
        );
        assert_eq!(
            AdmissionError::RateLimited.code(),
            v1::ErrorCode::Overloaded
        );
        assert_eq!(
            AdmissionError::TooSlow.code(),
            v1::ErrorCode::DeadlineExceeded
        );
        assert_eq!(
            AdmissionError::NotAdmitted("validators only").code(),
            v1::ErrorCode::Refused
        );
    }
}
