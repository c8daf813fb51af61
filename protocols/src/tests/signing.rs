//! Signing properties: round trips, bit flips, domain separation, batches and peer ids.

use proptest::prelude::*;

use super::samples::{self, key};
use crate::codec::{Wire, decode};
use crate::domain::Domain;
use crate::identity::{IdentityError, Keypair, PublicKey, Signature};
use crate::signing::{BatchVerifier, SignatureError, Signed, digest, sign, verify};
use crate::v1;

/// Signs an arbitrary message, then checks it verifies and that any single flipped bit breaks it.
fn check_signed<M: Signed + Wire + PartialEq + std::fmt::Debug>(
    message: M,
    seed: u8,
    flip: prop::sample::Index,
) -> Result<(), TestCaseError> {
    let signed = message.signed(&key(seed));
    prop_assert!(signed.verify_signature().is_ok());
    prop_assert_eq!(signed.signer().ok(), Some(key(seed).public()));

    let bytes = signed.encode_to_vec();
    let bit = flip.index(bytes.len() * 8);
    let mut flipped = bytes.clone();
    flipped[bit / 8] ^= 1 << (bit % 8);
    if let Ok(tampered) = decode::<M>(&flipped) {
        prop_assert_ne!(&tampered, &signed);
        prop_assert!(
            tampered.verify_signature().is_err(),
            "bit {} flipped and the signature still verifies",
            bit
        );
    }

    let mut bad_signature = signed.clone();
    let sig_bit = flip.index(bad_signature.signature_bytes().len() * 8);
    bad_signature.signature_mut()[sig_bit / 8] ^= 1 << (sig_bit % 8);
    prop_assert!(bad_signature.verify_signature().is_err());
    Ok(())
}

macro_rules! signed_properties {
    ($($name:ident: $ty:ty),+ $(,)?) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(96))]
            $(
                #[test]
                fn $name(message in any::<$ty>(), seed in any::<u8>(), flip in any::<prop::sample::Index>()) {
                    check_signed(message, seed, flip)?;
                }
            )+
        }
    };
}

signed_properties! {
    signed_envelope_bit_flips: v1::SignedEnvelope,
    capability_ad_bit_flips: v1::CapabilityAd,
    query_response_bit_flips: v1::QueryResponse,
    weight_commit_bit_flips: v1::WeightCommit,
    weight_reveal_bit_flips: v1::WeightReveal,
    proposal_bit_flips: v1::Proposal,
    vote_bit_flips: v1::Vote,
    transaction_bit_flips: v1::Transaction,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_signature_for_one_domain_never_verifies_under_another(
        message in any::<v1::Vote>(),
        seed in any::<u8>(),
        a in 0..Domain::ALL.len(),
        b in 0..Domain::ALL.len(),
    ) {
        let keypair = key(seed);
        let signature = sign(&keypair, Domain::ALL[a], &message);
        let same = verify(&keypair.public(), Domain::ALL[b], &message, &signature).is_ok();
        prop_assert_eq!(same, a == b);
    }

    #[test]
    fn a_signature_by_one_key_never_verifies_for_another(
        message in any::<v1::Vote>(),
        seed in any::<u8>(),
        other in any::<u8>(),
    ) {
        prop_assume!(seed != other);
        let signature = sign(&key(seed), Domain::Vote, &message);
        prop_assert!(verify(&key(other).public(), Domain::Vote, &message, &signature).is_err());
    }
}

#[test]
fn domain_strings_are_distinct() {
    let mut names: Vec<&str> = Domain::ALL.iter().map(|d| d.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), Domain::ALL.len());
    assert!(names.iter().all(|n| n.starts_with("meshmind/v1/")));
}

#[test]
fn the_signature_covers_the_message_without_its_signature() {
    let vote = samples::vote(3, 1, Some([9; 32]));
    let mut unsigned = vote.clone();
    unsigned.signature.clear();
    assert_eq!(vote.signing_digest(), digest(Domain::Vote, &unsigned));
    let signature = Signature::from_bytes(&vote.signature).expect("64 bytes");
    assert!(verify(&key(3).public(), Domain::Vote, &unsigned, &signature).is_ok());
}

#[test]
fn a_message_with_a_malformed_signer_or_signature_is_refused() {
    let mut vote = samples::vote(3, 1, None);
    vote.validator.pop();
    assert!(matches!(
        vote.verify_signature(),
        Err(SignatureError::MalformedSigner(
            IdentityError::BadLength { .. }
        ))
    ));
    let mut vote = samples::vote(3, 1, None);
    vote.signature.truncate(10);
    assert!(matches!(
        vote.verify_signature(),
        Err(SignatureError::MalformedSignature(_))
    ));
}

fn batch_of(n: u8) -> Vec<v1::Vote> {
    (1..=n)
        .map(|seed| samples::vote(seed, 0, Some([seed; 32])))
        .collect()
}

#[test]
fn a_batch_of_good_signatures_verifies() {
    for n in [1u8, 4, 16, 100] {
        let mut batch = BatchVerifier::with_capacity(n as usize);
        for vote in batch_of(n) {
            batch.push_signed(&vote).expect("well-formed vote");
        }
        assert_eq!(batch.len(), n as usize);
        assert_eq!(batch.verify(), Ok(()), "batch of {n}");
    }
    assert_eq!(BatchVerifier::new().verify(), Ok(()));
}

#[test]
fn a_batch_names_the_first_bad_signature() {
    for bad in [0usize, 37, 99] {
        let mut votes = batch_of(100);
        votes[bad].round += 1;
        let mut batch = BatchVerifier::new();
        for vote in &votes {
            batch.push_signed(vote).expect("well-formed vote");
        }
        assert_eq!(
            batch.verify(),
            Err(SignatureError::InvalidAt { index: bad })
        );
    }
}

#[test]
fn a_certificate_verifies_as_a_batch_of_precommits() {
    let certificate = samples::certificate(100);
    let mut batch = BatchVerifier::new();
    for entry in &certificate.signatures {
        let vote = v1::Vote {
            network_id: certificate.network_id.clone(),
            epoch: certificate.epoch,
            round: certificate.round,
            vote_type: v1::VoteType::Precommit as i32,
            value_id: certificate.value_id.clone(),
            valset_hash: certificate.valset_hash.clone(),
            validator: entry.validator.clone(),
            signature: entry.signature.clone(),
        };
        batch.push_signed(&vote).expect("well-formed entry");
    }
    assert_eq!(batch.verify(), Ok(()));
}

#[test]
fn a_hotkey_is_its_libp2p_peer_id() {
    let keypair = key(5);
    let libp2p = keypair.to_libp2p();
    assert_eq!(libp2p.public().to_peer_id(), keypair.peer_id());
    let back = PublicKey::from_peer_id(&keypair.peer_id()).expect("ed25519 peer id");
    assert_eq!(back, keypair.public());
    // libp2p signs with the same key: its signature verifies under ours.
    let message = b"same key";
    let signature = libp2p.sign(message).expect("ed25519 signs");
    assert!(
        keypair
            .public()
            .verifying_key()
            .verify_strict(
                message,
                &Signature::from_bytes(&signature).expect("64 bytes").dalek()
            )
            .is_ok()
    );
}

#[test]
fn weak_and_malformed_public_keys_are_refused() {
    // The identity point (small order).
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        PublicKey::from_bytes(&identity),
        Err(IdentityError::WeakKey)
    );
    assert!(matches!(
        PublicKey::from_bytes(&[1u8; 31]),
        Err(IdentityError::BadLength {
            expected: 32,
            actual: 31
        })
    ));
    assert!(PublicKey::from_hex("zz").is_err());
}

#[test]
fn generated_keys_differ() {
    let a = Keypair::generate().expect("os random");
    let b = Keypair::generate().expect("os random");
    assert_ne!(a.public(), b.public());
}
