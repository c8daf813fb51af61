//! The id of a meshmind network: the hash of its genesis, bound into everything it signs.

use std::fmt;
use std::str::FromStr;

use crate::hash::{HASH_LEN, Hash as GenesisHash};

/// The id of one network (blake3 of its encoded genesis); messages of another network carry
/// another id and are refused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NetworkId(GenesisHash);

impl NetworkId {
    /// The id with these bytes.
    pub const fn new(bytes: [u8; HASH_LEN]) -> Self {
        Self(GenesisHash(bytes))
    }

    /// Parses exactly 32 bytes, as protobuf `bytes` fields carry it.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        GenesisHash::from_slice(bytes).map(Self)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        self.0.as_bytes()
    }

    /// The raw bytes as an owned vector, as protobuf `bytes` fields hold them.
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.to_vec()
    }

    /// Whether a message's `network_id` field names this network.
    pub fn is(&self, field: &[u8]) -> bool {
        field == self.as_bytes().as_slice()
    }

    /// Lower-case hex of all 32 bytes.
    pub fn to_hex(&self) -> String {
        self.0.to_hex()
    }

    /// The short tag in protocol and topic names: the first 16 hex digits.
    pub fn tag(&self) -> String {
        hex::encode(&self.as_bytes()[..8])
    }
}

impl From<GenesisHash> for NetworkId {
    fn from(hash: GenesisHash) -> Self {
        Self(hash)
    }
}

impl fmt::Debug for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetworkId({})", self.tag())
    }
}

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A network id that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a network id is 64 hex digits")]
pub struct NetworkIdError;

impl FromStr for NetworkId {
    type Err = NetworkIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s.trim()).map_err(|_| NetworkIdError)?;
        Self::from_slice(&bytes).ok_or(NetworkIdError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_the_tag_is_its_prefix() {
        let id = NetworkId::new([0xab; 32]);
        let parsed: NetworkId = id.to_hex().parse().unwrap();
        assert_eq!(parsed, id);
        assert_eq!(id.tag(), "abababababababab");
        assert!(id.is(&[0xab; 32]));
        assert!(!id.is(&[0xab; 31]));
    }

    #[test]
    fn wrong_lengths_and_non_hex_are_refused() {
        assert_eq!("ab".parse::<NetworkId>(), Err(NetworkIdError));
        assert_eq!("zz".repeat(32).parse::<NetworkId>(), Err(NetworkIdError));
        assert!(NetworkId::from_slice(&[0; 33]).is_none());
    }
}
