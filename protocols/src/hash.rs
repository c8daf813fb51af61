//! Content hashes: blake3 of a message's protobuf encoding.

use prost::Message;

/// Length in bytes of a hash.
pub const HASH_LEN: usize = 32;

/// A 32-byte blake3 hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_LEN]);

impl Hash {
    /// Hash of raw bytes.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// Parses exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// The raw bytes as an owned vector, as protobuf `bytes` fields hold them.
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.to_vec()
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The content hash of any message: blake3 of its protobuf encoding.
pub fn hash<M: Message>(message: &M) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&message.encode_to_vec());
    Hash(*hasher.finalize().as_bytes())
}
