//! The meshmind wire contract: protobuf message types, peer identities, domain-separated signing,
//! content hashing, size-capped decoding and message validation.
//!
//! Every peer in a meshmind network speaks the messages in [`v1`]. A message is hashed as blake3 of its
//! protobuf encoding ([`hash`]); a signed message is signed over blake3 in key-derivation mode under a
//! domain string unique to its kind ([`Domain`]), so a signature of one kind never verifies as another.
//! Bytes from the network go through [`decode`], which refuses anything over the type's size cap before
//! allocating, and then through [`Validate::validate`], which names the offending field.
//!
//! ```
//! use meshmind_protocols::{Keypair, Signed, Validate, decode, v1};
//! use prost::Message;
//!
//! let hotkey = Keypair::generate()?;
//! let vote = v1::Vote {
//!     network_id: vec![1; 32],
//!     epoch: 3,
//!     vote_type: v1::VoteType::Prevote as i32,
//!     valset_hash: vec![2; 32],
//!     ..Default::default()
//! }
//! .signed(&hotkey);
//!
//! let bytes = vote.encode_to_vec();
//! let received: v1::Vote = decode(&bytes)?;
//! received.validate()?;
//! received.verify_signature()?;
//! assert_eq!(received.signer()?, hotkey.public());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod codec;
pub mod domain;
pub mod hash;
pub mod identity;
pub mod keyfile;
pub mod network;
pub mod query;
pub mod signing;
pub mod validate;

#[cfg(test)]
mod tests;

/// Generated protobuf types of the `meshmind.v1` package.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/meshmind.v1.rs"));
}

pub use codec::{DecodeError, EncodeError, Wire, decode, decode_frame, encode_frame, frame_length};
pub use domain::Domain;
pub use hash::{Hash, hash};
pub use identity::{IdentityError, Keypair, PeerId, PublicKey, Signature};
pub use keyfile::{KeyFile, KeyFileError, KeyKind};
pub use network::{NetworkId, NetworkIdError};
pub use query::{QUERY_ID_LEN, QueryId, media};
pub use signing::{BatchVerifier, SignatureError, Signed, digest, sign, verify};
pub use validate::{Context, Reason, Scoped, Validate, ValidationError};
