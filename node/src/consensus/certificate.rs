//! Certificates: building them from precommits and verifying them against a validator set.

use std::collections::HashSet;

use meshmind_protocols::{BatchVerifier, NetworkId, Signature, Signed, v1};

use super::members::Members;
use super::votes::ValueId;

/// Why a certificate does not prove finality.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Made for another network.
    #[error("certificate of another network")]
    WrongNetwork,
    /// Names another validator set.
    #[error("certificate names validator set {found}, expected {expected}")]
    WrongValset {
        /// Hex of the set named.
        found: String,
        /// Hex of the set expected.
        expected: String,
    },
    /// Certifies a different epoch or value.
    #[error("certificate is for epoch {epoch}, value {value}; expected another")]
    WrongValue {
        /// Epoch named.
        epoch: u64,
        /// Value named (hex).
        value: String,
    },
    /// A signer appears twice or out of order.
    #[error("signatures[{index}]: signers must be sorted and distinct")]
    DuplicateSigner {
        /// Position.
        index: usize,
    },
    /// A signer outside the validator set.
    #[error("signatures[{index}]: signer is not in the validator set")]
    UnknownSigner {
        /// Position.
        index: usize,
    },
    /// A malformed or bad signature.
    #[error("signatures: {0}")]
    BadSignature(String),
    /// Not more than 2/3 of the stake.
    #[error("certificate carries {power} of {total} stake, not more than 2/3")]
    NoQuorum {
        /// Stake signed.
        power: u128,
        /// Total stake.
        total: u128,
    },
}

/// A certificate from signed precommits for one value (any order; one per validator is kept).
pub fn build(precommits: &[v1::Vote]) -> Option<v1::Certificate> {
    let first = precommits.first()?;
    let mut signatures: Vec<v1::CommitSignature> = precommits
        .iter()
        .map(|v| v1::CommitSignature {
            validator: v.validator.clone(),
            signature: v.signature.clone(),
        })
        .collect();
    signatures.sort_by(|a, b| a.validator.cmp(&b.validator));
    signatures.dedup_by(|a, b| a.validator == b.validator);
    Some(v1::Certificate {
        network_id: first.network_id.clone(),
        epoch: first.epoch,
        round: first.round,
        value_id: first.value_id.clone(),
        valset_hash: first.valset_hash.clone(),
        signatures,
    })
}

/// Checks that `certificate` proves `value` final for `epoch` under `members`: right network and
/// set, sorted distinct known signers, every signature valid (batch-verified), more than 2/3 stake.
pub fn verify(
    certificate: &v1::Certificate,
    network_id: NetworkId,
    members: &Members,
    epoch: u64,
    value: &ValueId,
) -> Result<(), CertificateError> {
    if !network_id.is(&certificate.network_id) {
        return Err(CertificateError::WrongNetwork);
    }
    if certificate.valset_hash != members.hash() {
        return Err(CertificateError::WrongValset {
            found: hex::encode(&certificate.valset_hash),
            expected: hex::encode(members.hash()),
        });
    }
    if certificate.epoch != epoch || certificate.value_id != value {
        return Err(CertificateError::WrongValue {
            epoch: certificate.epoch,
            value: hex::encode(&certificate.value_id),
        });
    }
    let mut seen = HashSet::new();
    let mut batch = BatchVerifier::with_capacity(certificate.signatures.len());
    let mut power = 0u128;
    let mut previous: Option<&[u8]> = None;
    for (index, sig) in certificate.signatures.iter().enumerate() {
        if previous.is_some_and(|p| p >= sig.validator.as_slice()) || !seen.insert(&sig.validator) {
            return Err(CertificateError::DuplicateSigner { index });
        }
        previous = Some(&sig.validator);
        let member = members
            .index_of(&sig.validator)
            .ok_or(CertificateError::UnknownSigner { index })?;
        let key = members
            .key(member)
            .ok_or(CertificateError::UnknownSigner { index })?;
        let signature = Signature::from_bytes(&sig.signature)
            .map_err(|e| CertificateError::BadSignature(format!("[{index}]: {e}")))?;
        let vote = v1::Vote {
            network_id: certificate.network_id.clone(),
            epoch: certificate.epoch,
            round: certificate.round,
            vote_type: v1::VoteType::Precommit as i32,
            value_id: certificate.value_id.clone(),
            valset_hash: certificate.valset_hash.clone(),
            validator: sig.validator.clone(),
            signature: Vec::new(),
        };
        batch.push(key, vote.signing_digest(), &signature);
        power += members.set().power(member);
    }
    if !members.set().is_quorum(power) {
        return Err(CertificateError::NoQuorum {
            power,
            total: members.set().total(),
        });
    }
    batch
        .verify()
        .map_err(|e| CertificateError::BadSignature(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::votes::{Vote, VoteType};
    use crate::consensus::wire::wire_vote;
    use meshmind_protocols::Keypair;

    struct Fixture {
        keys: Vec<Keypair>,
        members: Members,
    }

    const NET: NetworkId = NetworkId::new([7; 32]);
    const VALUE: ValueId = [9; 32];

    /// Four validators with stakes 1, 1, 1, 3 (total 6): quorum needs more than 4.
    fn fixture() -> Fixture {
        let mut keys: Vec<Keypair> = (1..=4u8).map(|s| Keypair::from_secret(&[s; 32])).collect();
        keys.sort_by_key(|k| k.public());
        let stakes = [1, 1, 1, 3];
        let validators = keys
            .iter()
            .zip(stakes)
            .map(|(k, stake)| v1::ValidatorEntry {
                hotkey: k.public().to_bytes().to_vec(),
                coldkey: Vec::new(),
                stake,
            })
            .collect();
        let members = Members::new(v1::ValidatorSet { validators }).unwrap();
        Fixture { keys, members }
    }

    fn precommit(f: &Fixture, who: usize) -> v1::Vote {
        let vote = Vote {
            height: 3,
            round: 1,
            vote_type: VoteType::Precommit,
            value: Some(VALUE),
            voter: who,
        };
        wire_vote(NET, &f.members, &vote)
            .unwrap()
            .signed(&f.keys[who])
    }

    fn cert(f: &Fixture, who: &[usize]) -> v1::Certificate {
        let votes: Vec<v1::Vote> = who.iter().map(|&w| precommit(f, w)).collect();
        build(&votes).unwrap()
    }

    #[test]
    fn quorum_boundary_exactly_two_thirds_fails() {
        let f = fixture();
        // 1 + 3 = 4 of 6 is exactly 2/3.
        assert_eq!(
            verify(&cert(&f, &[0, 3]), NET, &f.members, 3, &VALUE),
            Err(CertificateError::NoQuorum { power: 4, total: 6 })
        );
        // One more unit passes.
        verify(&cert(&f, &[0, 1, 3]), NET, &f.members, 3, &VALUE).unwrap();
    }

    #[test]
    fn duplicate_unknown_and_bad_signers_are_rejected() {
        let f = fixture();
        let mut c = cert(&f, &[0, 1, 3]);
        c.signatures.insert(1, c.signatures[0].clone());
        assert!(matches!(
            verify(&c, NET, &f.members, 3, &VALUE),
            Err(CertificateError::DuplicateSigner { index: 1 })
        ));

        let outsider = Keypair::from_secret(&[99; 32]);
        let mut c = cert(&f, &[0, 1, 3]);
        c.signatures.push(v1::CommitSignature {
            validator: vec![0xff; 32],
            signature: outsider.sign_raw(b"x").to_bytes().to_vec(),
        });
        assert!(matches!(
            verify(&c, NET, &f.members, 3, &VALUE),
            Err(CertificateError::UnknownSigner { index: 3 })
        ));

        let mut c = cert(&f, &[0, 1, 3]);
        c.signatures[2].signature[0] ^= 1;
        assert!(matches!(
            verify(&c, NET, &f.members, 3, &VALUE),
            Err(CertificateError::BadSignature(_))
        ));
    }

    #[test]
    fn wrong_valset_network_epoch_or_value_is_rejected() {
        let f = fixture();
        let good = cert(&f, &[0, 1, 2, 3]);
        let mut c = good.clone();
        c.valset_hash = vec![1; 32];
        assert!(matches!(
            verify(&c, NET, &f.members, 3, &VALUE),
            Err(CertificateError::WrongValset { .. })
        ));
        assert_eq!(
            verify(&good, NetworkId::new([8; 32]), &f.members, 3, &VALUE),
            Err(CertificateError::WrongNetwork)
        );
        assert!(matches!(
            verify(&good, NET, &f.members, 4, &VALUE),
            Err(CertificateError::WrongValue { .. })
        ));
        assert!(matches!(
            verify(&good, NET, &f.members, 3, &[1; 32]),
            Err(CertificateError::WrongValue { .. })
        ));
        // A signature moved to another round no longer verifies.
        let mut c = good;
        c.round = 2;
        assert!(matches!(
            verify(&c, NET, &f.members, 3, &VALUE),
            Err(CertificateError::BadSignature(_))
        ));
    }
}
