//! Peer identities: ed25519 keypairs, public keys and signatures, and their libp2p `PeerId`.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

pub use libp2p_identity::PeerId;

/// Length in bytes of a public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length in bytes of a secret key.
pub const SECRET_KEY_LEN: usize = 32;
/// Length in bytes of a signature.
pub const SIGNATURE_LEN: usize = 64;

/// Why key or signature bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The byte string has the wrong length.
    #[error("expected {expected} bytes, got {actual}")]
    BadLength {
        /// Required length.
        expected: usize,
        /// Length received.
        actual: usize,
    },
    /// The bytes are not a valid ed25519 point.
    #[error("not a valid ed25519 public key")]
    InvalidKey,
    /// The key is of small order, so signatures under it prove nothing.
    #[error("weak ed25519 public key (small order)")]
    WeakKey,
    /// The operating system's random source failed.
    #[error("random source failed: {0}")]
    Random(#[source] getrandom::Error),
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], IdentityError> {
    bytes.try_into().map_err(|_| IdentityError::BadLength {
        expected: N,
        actual: bytes.len(),
    })
}

/// An ed25519 public key that is known to be a valid, non-weak point.
#[derive(Clone, Copy)]
pub struct PublicKey {
    bytes: [u8; PUBLIC_KEY_LEN],
    // The decompressed point, kept so that verification does not decompress again.
    key: VerifyingKey,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for PublicKey {}

impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}

impl PublicKey {
    /// Parses 32 bytes, refusing invalid and small-order keys.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        let raw = fixed::<PUBLIC_KEY_LEN>(bytes)?;
        let key = VerifyingKey::from_bytes(&raw).map_err(|_| IdentityError::InvalidKey)?;
        if key.is_weak() {
            return Err(IdentityError::WeakKey);
        }
        Ok(Self { bytes: raw, key })
    }

    /// The raw 32 bytes.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.bytes
    }

    /// The raw bytes as a slice.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.bytes
    }

    /// The libp2p peer id of this key (the same key, in libp2p's encoding).
    pub fn peer_id(&self) -> PeerId {
        self.to_libp2p().to_peer_id()
    }

    /// This key as a libp2p public key.
    pub fn to_libp2p(&self) -> libp2p_identity::PublicKey {
        // The bytes were checked to be a valid point at construction, so this cannot fail.
        match libp2p_identity::ed25519::PublicKey::try_from_bytes(&self.bytes) {
            Ok(key) => key.into(),
            Err(_) => unreachable!("PublicKey holds a validated ed25519 point"),
        }
    }

    /// The key of a libp2p peer id, if that peer id inlines an ed25519 key.
    pub fn from_peer_id(peer: &PeerId) -> Result<Self, IdentityError> {
        let multihash = peer.as_ref();
        // Identity multihash (code 0) of the protobuf-encoded public key.
        if multihash.code() != 0 {
            return Err(IdentityError::InvalidKey);
        }
        let key = libp2p_identity::PublicKey::try_decode_protobuf(multihash.digest())
            .map_err(|_| IdentityError::InvalidKey)?;
        let ed = key
            .try_into_ed25519()
            .map_err(|_| IdentityError::InvalidKey)?;
        Self::from_bytes(&ed.to_bytes())
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Lower-case hex of the key.
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// Parses lower- or upper-case hex.
    pub fn from_hex(text: &str) -> Result<Self, IdentityError> {
        let bytes = hex::decode(text.trim()).map_err(|_| IdentityError::InvalidKey)?;
        Self::from_bytes(&bytes)
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// An ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; SIGNATURE_LEN]);

impl Signature {
    /// Parses 64 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        fixed::<SIGNATURE_LEN>(bytes).map(Self)
    }

    /// The raw 64 bytes.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        self.0
    }

    pub(crate) fn dalek(&self) -> ed25519_dalek::Signature {
        ed25519_dalek::Signature::from_bytes(&self.0)
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

/// An ed25519 keypair: a node's hotkey or an account's coldkey.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl Keypair {
    /// Generates a fresh keypair from the operating system's random source.
    pub fn generate() -> Result<Self, IdentityError> {
        let mut seed = Zeroizing::new([0u8; SECRET_KEY_LEN]);
        getrandom::fill(seed.as_mut()).map_err(IdentityError::Random)?;
        Ok(Self::from_secret(&seed))
    }

    /// The keypair of a 32-byte secret key (seed).
    pub fn from_secret(secret: &[u8; SECRET_KEY_LEN]) -> Self {
        Self {
            signing: SigningKey::from_bytes(secret),
        }
    }

    /// Parses a 32-byte secret key.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        let secret = Zeroizing::new(fixed::<SECRET_KEY_LEN>(bytes)?);
        Ok(Self::from_secret(&secret))
    }

    /// The secret key bytes; handle with care.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; SECRET_KEY_LEN]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        let key = self.signing.verifying_key();
        PublicKey {
            bytes: key.to_bytes(),
            key,
        }
    }

    /// The libp2p peer id of this keypair.
    pub fn peer_id(&self) -> PeerId {
        self.public().peer_id()
    }

    /// This keypair as a libp2p identity keypair (the same key).
    pub fn to_libp2p(&self) -> libp2p_identity::Keypair {
        let mut secret = self.secret_bytes();
        match libp2p_identity::Keypair::ed25519_from_bytes(secret.as_mut()) {
            Ok(keypair) => keypair,
            Err(_) => unreachable!("any 32 bytes are a valid ed25519 secret key"),
        }
    }

    /// Signs raw bytes with no domain separation; prefer [`crate::sign`].
    pub fn sign_raw(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keypair({})", self.public().to_hex())
    }
}
