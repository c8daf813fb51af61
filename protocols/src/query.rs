//! Queries as the domain knows them: a fresh random 128-bit id for every query, and one constructor.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::network::NetworkId;
use crate::v1;

/// Bytes in a query id.
pub const QUERY_ID_LEN: usize = 16;

/// A query's identifier, chosen by whoever sends it and echoed in every reply.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(pub [u8; QUERY_ID_LEN]);

impl QueryId {
    /// A fresh random id: two queries collide with probability 2^-64 after 2^32 of them.
    pub fn random() -> Self {
        let mut id = [0u8; QUERY_ID_LEN];
        if getrandom::fill(&mut id).is_err() {
            // No OS randomness: a keyed hash of the time and a process-wide counter stays unique
            // within this process and unpredictable enough for an identifier (never for a key).
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let count = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let mut hasher = blake3::Hasher::new_derive_key("meshmind/v1/query-id");
            hasher.update(&nanos.to_le_bytes());
            hasher.update(&count.to_le_bytes());
            hasher.update(&std::process::id().to_le_bytes());
            id.copy_from_slice(&hasher.finalize().as_bytes()[..QUERY_ID_LEN]);
        }
        QueryId(id)
    }

    /// The id in `bytes`, if it has exactly [`QUERY_ID_LEN`] bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(QueryId)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; QUERY_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for QueryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for QueryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueryId({self})")
    }
}

/// The media types of query inputs and outputs that meshmind's own tasks use.
pub mod media {
    /// UTF-8 text.
    pub const TEXT: &str = "text/plain";
    /// A JSON document.
    pub const JSON: &str = "application/json";
    /// A vector of little-endian 32-bit floats.
    pub const F32LE: &str = "application/x-f32le";
}

impl v1::Query {
    /// A query for one answer, not streamed, with a fresh random id.
    pub fn new(
        network_id: NetworkId,
        subnet: u32,
        task: impl Into<String>,
        payload: Vec<u8>,
        deadline_ms: u32,
    ) -> Self {
        v1::Query {
            id: QueryId::random().0.to_vec(),
            network_id: network_id.to_vec(),
            subnet,
            task: task.into(),
            payload,
            deadline_ms,
            want_all: false,
            stream: false,
            content_type: String::new(),
        }
    }

    /// The query's id, if it is well formed.
    pub fn query_id(&self) -> Option<QueryId> {
        QueryId::from_slice(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Validate;

    #[test]
    fn ids_are_fresh_and_queries_valid() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(QueryId::random()), "a repeated query id");
        }
        let query = v1::Query::new(NetworkId::new([3; 32]), 1, "sort", b"b a".to_vec(), 1000);
        query.validate().expect("a valid query");
        assert_eq!(query.query_id().map(|id| id.0.len()), Some(QUERY_ID_LEN));
        let other = v1::Query::new(NetworkId::new([3; 32]), 1, "sort", b"b a".to_vec(), 1000);
        assert_ne!(
            query.id, other.id,
            "two queries in one millisecond share no id"
        );
    }

    #[test]
    fn ids_show_as_hex() {
        let id = QueryId([0xab; QUERY_ID_LEN]);
        assert_eq!(id.to_string(), "ab".repeat(QUERY_ID_LEN));
        assert_eq!(QueryId::from_slice(&[1; 15]), None);
    }
}
