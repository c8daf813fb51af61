//! Domain-separated signing and verification of messages, singly and in batches.
//!
//! What is signed is the 32-byte digest `blake3::derive_key(domain, encoding)`, where `encoding` is the
//! message's protobuf encoding with its `signature` field empty. Single signatures are checked with
//! ed25519-dalek's strict verification; weak (small-order) public keys are refused when parsed.

use prost::Message;

use crate::domain::Domain;
use crate::identity::{IdentityError, Keypair, PublicKey, Signature};
use crate::v1;

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signer field is not a usable public key.
    #[error("malformed signer key: {0}")]
    MalformedSigner(IdentityError),
    /// The signature field is not 64 bytes.
    #[error("malformed signature: {0}")]
    MalformedSignature(IdentityError),
    /// The signature does not match the message and key.
    #[error("signature does not verify")]
    Invalid,
    /// The signature at this position of a batch does not verify.
    #[error("signature {index} of the batch does not verify")]
    InvalidAt {
        /// Position of the first bad signature, in push order.
        index: usize,
    },
}

/// The 32-byte digest that is signed for `message` under `domain`.
pub fn digest<M: Message>(domain: Domain, message: &M) -> [u8; 32] {
    digest_bytes(domain, &message.encode_to_vec())
}

/// The digest of already-encoded message bytes under `domain`.
pub fn digest_bytes(domain: Domain, encoded: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(domain.as_str());
    hasher.update(encoded);
    *hasher.finalize().as_bytes()
}

/// Signs `message` under `domain`.
pub fn sign<M: Message>(keypair: &Keypair, domain: Domain, message: &M) -> Signature {
    keypair.sign_raw(&digest(domain, message))
}

/// Verifies a signature of `message` under `domain` by `key`.
pub fn verify<M: Message>(
    key: &PublicKey,
    domain: Domain,
    message: &M,
    signature: &Signature,
) -> Result<(), SignatureError> {
    verify_digest(key, &digest(domain, message), signature)
}

/// Verifies a signature over a digest produced by [`digest`].
pub fn verify_digest(
    key: &PublicKey,
    digest: &[u8; 32],
    signature: &Signature,
) -> Result<(), SignatureError> {
    key.verifying_key()
        .verify_strict(digest, &signature.dalek())
        .map_err(|_| SignatureError::Invalid)
}

/// A message type that carries its signer's key and its own signature.
pub trait Signed: Message + Clone + Sized {
    /// The domain this kind of message is signed under.
    const DOMAIN: Domain;

    /// The raw signer key field.
    fn signer_bytes(&self) -> &[u8];
    /// Sets the signer key field.
    fn set_signer(&mut self, key: &PublicKey);
    /// The raw signature field.
    fn signature_bytes(&self) -> &[u8];
    /// The signature field, for writing.
    fn signature_mut(&mut self) -> &mut Vec<u8>;

    /// The digest that the signature covers: this message with its signature field empty.
    fn signing_digest(&self) -> [u8; 32] {
        if self.signature_bytes().is_empty() {
            return digest(Self::DOMAIN, self);
        }
        let mut unsigned = self.clone();
        unsigned.signature_mut().clear();
        digest(Self::DOMAIN, &unsigned)
    }

    /// Sets the signer to `keypair`'s public key and signs.
    fn sign(&mut self, keypair: &Keypair) {
        self.set_signer(&keypair.public());
        self.signature_mut().clear();
        let signature = keypair.sign_raw(&digest(Self::DOMAIN, self));
        *self.signature_mut() = signature.to_bytes().to_vec();
    }

    /// Returns this message signed by `keypair`.
    fn signed(mut self, keypair: &Keypair) -> Self {
        self.sign(keypair);
        self
    }

    /// The signer's public key.
    fn signer(&self) -> Result<PublicKey, SignatureError> {
        PublicKey::from_bytes(self.signer_bytes()).map_err(SignatureError::MalformedSigner)
    }

    /// Checks the signature against the signer field.
    fn verify_signature(&self) -> Result<(), SignatureError> {
        let key = self.signer()?;
        let signature = Signature::from_bytes(self.signature_bytes())
            .map_err(SignatureError::MalformedSignature)?;
        verify_digest(&key, &self.signing_digest(), &signature)
    }
}

macro_rules! signed_message {
    ($ty:ty, $domain:expr, $signer:ident) => {
        impl Signed for $ty {
            const DOMAIN: Domain = $domain;
            fn signer_bytes(&self) -> &[u8] {
                &self.$signer
            }
            fn set_signer(&mut self, key: &PublicKey) {
                self.$signer = key.to_bytes().to_vec();
            }
            fn signature_bytes(&self) -> &[u8] {
                &self.signature
            }
            fn signature_mut(&mut self) -> &mut Vec<u8> {
                &mut self.signature
            }
        }
    };
}

signed_message!(v1::SignedEnvelope, Domain::Envelope, signer);
signed_message!(v1::CapabilityAd, Domain::CapabilityAd, miner);
signed_message!(v1::QueryResponse, Domain::QueryResponse, miner);
signed_message!(v1::WeightCommit, Domain::WeightCommit, validator);
signed_message!(v1::WeightReveal, Domain::WeightReveal, validator);
signed_message!(v1::Proposal, Domain::Proposal, proposer);
signed_message!(v1::Vote, Domain::Vote, validator);
signed_message!(v1::Transaction, Domain::Transaction, coldkey);
signed_message!(v1::HotkeyConsent, Domain::HotkeyConsent, hotkey);
signed_message!(v1::FinalizerConsent, Domain::FinalizerConsent, hotkey);
signed_message!(v1::SwapConsent, Domain::SwapConsent, hotkey);

/// `consented` and `verify_consent` for a transaction kind whose hotkey co-signs it: `$what`
/// names what the hotkey consents to, in the docs.
macro_rules! hotkey_consent {
    ($ty:ty, $what:literal) => {
        impl $ty {
            #[doc = concat!("Fills in `hotkey_signature` with `hotkey`'s consent to ", $what, " under")]
            /// `coldkey` on the network `network_id` (the `hotkey` field is set to its key too).
            pub fn consented(
                mut self,
                hotkey: &Keypair,
                network_id: &[u8],
                coldkey: &PublicKey,
            ) -> Self {
                self.hotkey = hotkey.public().to_bytes().to_vec();
                let consent = self.consent(network_id, &coldkey.to_bytes()).signed(hotkey);
                self.hotkey_signature = consent.signature;
                self
            }

            #[doc = concat!("Checks that the hotkey consented to ", $what, " by the transaction's")]
            /// `coldkey` on `network_id`.
            pub fn verify_consent(
                &self,
                network_id: &[u8],
                coldkey: &[u8],
            ) -> Result<(), SignatureError> {
                self.consent(network_id, coldkey).verify_signature()
            }
        }
    };
}

impl v1::Transaction {
    /// `kind` as a transaction of the network `network_id` carrying the account's `nonce`,
    /// signed by `coldkey` (the account that sends it).
    pub fn new_signed(
        network_id: &[u8],
        nonce: u64,
        kind: v1::transaction::Kind,
        coldkey: &Keypair,
    ) -> Self {
        v1::Transaction {
            network_id: network_id.to_vec(),
            coldkey: Vec::new(),
            nonce,
            kind: Some(kind),
            signature: Vec::new(),
        }
        .signed(coldkey)
    }
}

impl v1::DeclareFinalizer {
    /// The consent the declaration's hotkey signs, for a transaction of `network_id` signed by
    /// `coldkey`, carrying the declaration's `hotkey_signature`.
    pub fn consent(&self, network_id: &[u8], coldkey: &[u8]) -> v1::FinalizerConsent {
        v1::FinalizerConsent {
            network_id: network_id.to_vec(),
            coldkey: coldkey.to_vec(),
            hotkey: self.hotkey.clone(),
            signature: self.hotkey_signature.clone(),
        }
    }
}

hotkey_consent!(v1::DeclareFinalizer, "being declared a finalizer");

impl v1::Register {
    /// The consent the registration's hotkey signs, for a transaction of `network_id` signed by
    /// `coldkey`, carrying the registration's `hotkey_signature`.
    pub fn consent(&self, network_id: &[u8], coldkey: &[u8]) -> v1::HotkeyConsent {
        v1::HotkeyConsent {
            network_id: network_id.to_vec(),
            coldkey: coldkey.to_vec(),
            subnet: self.subnet,
            hotkey: self.hotkey.clone(),
            signature: self.hotkey_signature.clone(),
        }
    }
}

hotkey_consent!(v1::Register, "registering");

impl v1::SwapHotkey {
    /// The consent the swap's new hotkey signs, for a transaction of `network_id` signed by
    /// `coldkey`, carrying the swap's `hotkey_signature`.
    pub fn consent(&self, network_id: &[u8], coldkey: &[u8]) -> v1::SwapConsent {
        v1::SwapConsent {
            network_id: network_id.to_vec(),
            coldkey: coldkey.to_vec(),
            old_hotkey: self.old_hotkey.clone(),
            hotkey: self.hotkey.clone(),
            signature: self.hotkey_signature.clone(),
        }
    }
}

hotkey_consent!(v1::SwapHotkey, "replacing the old hotkey");

/// Collects signatures and verifies them together, which is much faster than one by one.
///
/// When the batch fails, each signature is checked on its own to name the first bad one.
#[derive(Default)]
pub struct BatchVerifier {
    digests: Vec<[u8; 32]>,
    signatures: Vec<ed25519_dalek::Signature>,
    keys: Vec<ed25519_dalek::VerifyingKey>,
}

impl BatchVerifier {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `n` signatures.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            digests: Vec::with_capacity(n),
            signatures: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
        }
    }

    /// Number of signatures queued.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether no signature is queued.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Queues a signature over a digest produced by [`digest`].
    pub fn push(&mut self, key: &PublicKey, digest: [u8; 32], signature: &Signature) {
        self.digests.push(digest);
        self.signatures.push(signature.dalek());
        self.keys.push(*key.verifying_key());
    }

    /// Queues the signature a signed message carries.
    pub fn push_signed<M: Signed>(&mut self, message: &M) -> Result<(), SignatureError> {
        let key = message.signer()?;
        let signature = Signature::from_bytes(message.signature_bytes())
            .map_err(SignatureError::MalformedSignature)?;
        self.push(&key, message.signing_digest(), &signature);
        Ok(())
    }

    /// Verifies every queued signature.
    pub fn verify(self) -> Result<(), SignatureError> {
        if self.digests.is_empty() {
            return Ok(());
        }
        let messages: Vec<&[u8]> = self.digests.iter().map(|d| d.as_slice()).collect();
        if ed25519_dalek::verify_batch(&messages, &self.signatures, &self.keys).is_ok() {
            return Ok(());
        }
        for (index, ((digest, signature), key)) in self
            .digests
            .iter()
            .zip(&self.signatures)
            .zip(&self.keys)
            .enumerate()
        {
            if key.verify_strict(digest, signature).is_err() {
                return Err(SignatureError::InvalidAt { index });
            }
        }
        // Every signature verifies on its own but not together: treat the batch as bad.
        Err(SignatureError::Invalid)
    }
}
