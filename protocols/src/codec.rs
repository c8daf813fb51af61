//! Size-capped decoding and length-prefixed frames.
//!
//! Nothing from the network is decoded before its length is checked against the cap of the type it is
//! decoded as, so a peer cannot make a node allocate more than that cap per message. Decoding is
//! strict: only the canonical encoding of a message (fields in order, each once, minimal varints, no
//! unknown fields) is accepted, so one message has exactly one byte string and one hash.

use prost::Message;

use crate::v1;

/// Length of a frame header: a big-endian `u32` byte count.
pub const FRAME_HEADER_LEN: usize = 4;

/// One KiB.
const KIB: usize = 1024;
/// One MiB.
const MIB: usize = 1024 * KIB;

/// Largest query payload, answer output or stream chunk.
pub const MAX_PAYLOAD: usize = MIB;
/// Largest number of validators in a set or certificate.
pub const MAX_VALIDATORS: usize = 1024;
/// Largest number of UIDs in a subnet (and entries in one weight vector or result vector).
pub const MAX_UIDS: usize = 65_536;
/// Largest number of snapshots in one sync reply.
pub const MAX_SYNC_BATCH: u32 = 64;

/// A message type with a cap on its encoded size.
pub trait Wire: Message + Default {
    /// Largest encoding accepted for this type, in bytes.
    const MAX_SIZE: usize;
}

macro_rules! wire {
    ($($ty:ty => $cap:expr),+ $(,)?) => {
        $(impl Wire for $ty {
            const MAX_SIZE: usize = $cap;
        })+
    };
}

const SNAPSHOT_CAP: usize = 32 * MIB;
const CERTIFICATE_CAP: usize = MAX_VALIDATORS * 128 + 4 * KIB;
const RESPONSE_CAP: usize = MAX_PAYLOAD + 4 * KIB;

wire! {
    v1::Error => 4 * KIB,
    v1::SignedEnvelope => MAX_PAYLOAD + 4 * KIB,
    v1::CapabilityAd => 8 * KIB,
    v1::Query => MAX_PAYLOAD + 4 * KIB,
    v1::QueryResponse => RESPONSE_CAP,
    v1::QueryChunk => RESPONSE_CAP + 4 * KIB,
    v1::QueryResponses => 16 * RESPONSE_CAP,
    v1::QueryFrame => 16 * RESPONSE_CAP + 4 * KIB,
    v1::WeightCommit => KIB,
    v1::WeightReveal => MAX_UIDS * 10 + 4 * KIB,
    v1::Proposal => KIB,
    v1::Vote => KIB,
    v1::Certificate => CERTIFICATE_CAP,
    v1::Evidence => 8 * KIB,
    v1::Transaction => 4 * KIB,
    v1::ValidatorSet => MAX_VALIDATORS * 96 + 4 * KIB,
    v1::SubnetResult => MAX_UIDS * 40 + 4 * KIB,
    v1::SnapshotHeader => 2 * KIB,
    v1::Snapshot => SNAPSHOT_CAP,
    v1::FinalizedSnapshot => SNAPSHOT_CAP + CERTIFICATE_CAP,
    v1::ProposedValue => SNAPSHOT_CAP + 2 * KIB,
    v1::ConsensusMessage => SNAPSHOT_CAP + 4 * KIB,
    v1::ConsensusBatch => SNAPSHOT_CAP + 8 * KIB,
    v1::SyncRequest => SNAPSHOT_CAP + 16 * KIB,
    v1::LedgerStatus => KIB,
    v1::SyncResponse => 64 * MIB,
    v1::Genesis => 16 * MIB,
    v1::WalEntry => SNAPSHOT_CAP + 4 * KIB,
}

/// Why bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is larger than the type's cap.
    #[error("{kind}: {actual} bytes exceeds the cap of {cap}")]
    TooLarge {
        /// The message type.
        kind: &'static str,
        /// Bytes received or announced.
        actual: usize,
        /// The cap.
        cap: usize,
    },
    /// The bytes are not a valid protobuf encoding of the type.
    #[error("{kind}: malformed protobuf: {source}")]
    Malformed {
        /// The message type.
        kind: &'static str,
        /// The decoder's reason.
        source: prost::DecodeError,
    },
    /// The bytes decode, but are not the one canonical encoding of the result (unknown fields,
    /// overlong varints, repeated or out-of-order fields).
    #[error("{kind}: not the canonical encoding")]
    NonCanonical {
        /// The message type.
        kind: &'static str,
    },
    /// A frame is shorter than its header says.
    #[error("truncated frame: header says {expected} bytes, {actual} present")]
    Truncated {
        /// Bytes announced by the header.
        expected: usize,
        /// Bytes present.
        actual: usize,
    },
    /// Bytes follow the frame.
    #[error("{extra} trailing bytes after the frame")]
    Trailing {
        /// Number of extra bytes.
        extra: usize,
    },
}

/// Why a message could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoding is larger than the type's cap, so peers would refuse it.
    #[error("{kind}: {actual} bytes exceeds the cap of {cap}")]
    TooLarge {
        /// The message type.
        kind: &'static str,
        /// Encoded size.
        actual: usize,
        /// The cap.
        cap: usize,
    },
}

fn kind_of<M>() -> &'static str {
    let name = std::any::type_name::<M>();
    name.rsplit("::").next().unwrap_or(name)
}

/// Decodes `bytes` as `M`, refusing input over `M::MAX_SIZE` before decoding.
pub fn decode<M: Wire>(bytes: &[u8]) -> Result<M, DecodeError> {
    decode_capped(bytes, M::MAX_SIZE)
}

/// Decodes `bytes` as `M` under a cap lower than the type's own.
pub fn decode_capped<M: Wire>(bytes: &[u8], cap: usize) -> Result<M, DecodeError> {
    let cap = cap.min(M::MAX_SIZE);
    if bytes.len() > cap {
        return Err(DecodeError::TooLarge {
            kind: kind_of::<M>(),
            actual: bytes.len(),
            cap,
        });
    }
    let message = M::decode(bytes).map_err(|source| DecodeError::Malformed {
        kind: kind_of::<M>(),
        source,
    })?;
    if message.encoded_len() != bytes.len() || message.encode_to_vec() != bytes {
        return Err(DecodeError::NonCanonical {
            kind: kind_of::<M>(),
        });
    }
    Ok(message)
}

/// Encodes `message` behind a 4-byte big-endian length, refusing encodings over the type's cap.
pub fn encode_frame<M: Wire>(message: &M) -> Result<Vec<u8>, EncodeError> {
    let len = message.encoded_len();
    if len > M::MAX_SIZE {
        return Err(EncodeError::TooLarge {
            kind: kind_of::<M>(),
            actual: len,
            cap: M::MAX_SIZE,
        });
    }
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + len);
    // Caps are far below u32::MAX, so the length fits.
    out.extend_from_slice(&(len as u32).to_be_bytes());
    message
        .encode(&mut out)
        .map_err(|_| EncodeError::TooLarge {
            kind: kind_of::<M>(),
            actual: len,
            cap: M::MAX_SIZE,
        })?;
    Ok(out)
}

/// The body length a frame header announces, refused if over `M`'s cap (or the lower `cap`).
pub fn frame_length<M: Wire>(
    header: [u8; FRAME_HEADER_LEN],
    cap: usize,
) -> Result<usize, DecodeError> {
    let len = u32::from_be_bytes(header) as usize;
    let cap = cap.min(M::MAX_SIZE);
    if len > cap {
        return Err(DecodeError::TooLarge {
            kind: kind_of::<M>(),
            actual: len,
            cap,
        });
    }
    Ok(len)
}

/// Decodes exactly one whole frame (header and body) as `M`.
pub fn decode_frame<M: Wire>(bytes: &[u8]) -> Result<M, DecodeError> {
    let Some((header, body)) = bytes.split_first_chunk::<FRAME_HEADER_LEN>() else {
        return Err(DecodeError::Truncated {
            expected: FRAME_HEADER_LEN,
            actual: bytes.len(),
        });
    };
    let len = frame_length::<M>(*header, M::MAX_SIZE)?;
    match body.len().cmp(&len) {
        std::cmp::Ordering::Less => Err(DecodeError::Truncated {
            expected: len,
            actual: body.len(),
        }),
        std::cmp::Ordering::Greater => Err(DecodeError::Trailing {
            extra: body.len() - len,
        }),
        std::cmp::Ordering::Equal => decode(body),
    }
}
