//! Streamed answers: the limits on them and the check a receiver runs on every chunk and on the
//! miner's signed trailer.

use meshmind_protocols::{PublicKey, Signed, Validate, hash, v1};

/// Largest piece of data one chunk carries; longer backend pieces are split.
pub const MAX_CHUNK: usize = 64 * 1024;

/// Largest total of one streamed answer.
pub const MAX_STREAM_BYTES: usize = 16 * 1024 * 1024;

/// Why a streamed answer is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// A chunk is malformed.
    #[error("malformed chunk: {0}")]
    Malformed(String),
    /// A chunk belongs to another query.
    #[error("chunk for another query")]
    WrongQuery,
    /// A chunk came out of order.
    #[error("chunk {got} where chunk {expected} was due")]
    OutOfOrder {
        /// The sequence number due.
        expected: u32,
        /// The one received.
        got: u32,
    },
    /// The stream grew past [`MAX_STREAM_BYTES`].
    #[error("stream over {MAX_STREAM_BYTES} bytes")]
    TooLarge,
    /// The trailer is not the expected miner's valid signature over this query and this data.
    #[error("trailer does not verify: {0}")]
    BadTrailer(&'static str),
    /// The miner reported an error in its trailer.
    #[error("miner failed: {message}")]
    Miner {
        /// The miner's error code.
        code: v1::ErrorCode,
        /// The miner's message.
        message: String,
    },
}

/// Checks one streamed answer chunk by chunk, then its signed trailer.
pub struct StreamCheck {
    id: Vec<u8>,
    query_hash: [u8; 32],
    miner: Option<PublicKey>,
    next_seq: u32,
    bytes: usize,
    hasher: blake3::Hasher,
}

impl StreamCheck {
    /// A check for the answer to `query` from `miner` (any miner, proven by its trailer, if `None`).
    pub fn new(query: &v1::Query, miner: Option<PublicKey>) -> Self {
        Self {
            id: query.id.clone(),
            query_hash: *hash(query).as_bytes(),
            miner,
            next_seq: 0,
            bytes: 0,
            hasher: blake3::Hasher::new(),
        }
    }

    /// Bytes of data accepted so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes in the next chunk; returns the verified trailer when it is the last one.
    pub fn chunk<'c>(
        &mut self,
        chunk: &'c v1::QueryChunk,
    ) -> Result<Option<&'c v1::QueryResponse>, StreamError> {
        chunk
            .validate()
            .map_err(|e| StreamError::Malformed(e.to_string()))?;
        if chunk.id != self.id {
            return Err(StreamError::WrongQuery);
        }
        if chunk.seq != self.next_seq {
            return Err(StreamError::OutOfOrder {
                expected: self.next_seq,
                got: chunk.seq,
            });
        }
        self.next_seq = self.next_seq.saturating_add(1);
        self.bytes = self.bytes.saturating_add(chunk.data.len());
        if self.bytes > MAX_STREAM_BYTES {
            return Err(StreamError::TooLarge);
        }
        self.hasher.update(&chunk.data);
        match &chunk.trailer {
            Some(trailer) if chunk.last => self.trailer(trailer).map(Some),
            _ => Ok(None),
        }
    }

    fn trailer<'c>(
        &self,
        trailer: &'c v1::QueryResponse,
    ) -> Result<&'c v1::QueryResponse, StreamError> {
        if trailer.id != self.id || trailer.query_hash != self.query_hash {
            return Err(StreamError::BadTrailer("it answers another query"));
        }
        let signer = trailer
            .signer()
            .map_err(|_| StreamError::BadTrailer("no valid miner key"))?;
        if self.miner.as_ref().is_some_and(|miner| *miner != signer) {
            return Err(StreamError::BadTrailer("signed by another miner"));
        }
        trailer
            .verify_signature()
            .map_err(|_| StreamError::BadTrailer("bad signature"))?;
        if let Some(error) = &trailer.error {
            return Err(StreamError::Miner {
                code: v1::ErrorCode::try_from(error.code).unwrap_or(v1::ErrorCode::Internal),
                message: error.message.clone(),
            });
        }
        if trailer.output != self.hasher.finalize().as_bytes() {
            return Err(StreamError::BadTrailer("the data hash differs"));
        }
        Ok(trailer)
    }
}

/// The data chunk `seq` of the answer to the query `id`.
pub fn data_chunk(id: &[u8], seq: u32, data: Vec<u8>) -> v1::QueryFrame {
    v1::QueryFrame {
        body: Some(v1::query_frame::Body::Chunk(v1::QueryChunk {
            id: id.to_vec(),
            seq,
            data,
            last: false,
            trailer: None,
        })),
    }
}

/// The last chunk `seq` of the answer to the query `id`, carrying the miner's signed trailer.
pub fn last_chunk(id: &[u8], seq: u32, trailer: v1::QueryResponse) -> v1::QueryFrame {
    v1::QueryFrame {
        body: Some(v1::query_frame::Body::Chunk(v1::QueryChunk {
            id: id.to_vec(),
            seq,
            data: Vec::new(),
            last: true,
            trailer: Some(trailer),
        })),
    }
}
