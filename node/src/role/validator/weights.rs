//! Commit-reveal of weight vectors: the hash in epoch e, the vector in e+1, so weights cannot be copied.

use meshmind_protocols::{Hash, Keypair, NetworkId, Signed, Validate, ValidationError, hash, v1};

/// Why a reveal does not open a commitment.
#[derive(Debug, thiserror::Error)]
pub enum RevealError {
    /// One of the two messages is malformed.
    #[error("invalid message: {0}")]
    Invalid(#[from] ValidationError),
    /// A signature does not verify.
    #[error("bad signature: {0}")]
    Signature(#[from] meshmind_protocols::SignatureError),
    /// The reveal is for another validator, network, subnet or epoch.
    #[error("the reveal does not match the commitment's {0}")]
    Mismatch(&'static str),
    /// The reveal's content does not hash to the committed value.
    #[error("the reveal does not hash to the commitment")]
    WrongHash,
}

/// The hash a commitment carries: blake3 of the reveal with its signature left empty.
pub fn commitment_hash(reveal: &v1::WeightReveal) -> Hash {
    let mut unsigned = reveal.clone();
    unsigned.signature.clear();
    hash(&unsigned)
}

/// A signed commitment and the matching signed reveal for `weights` (UIDs ascending) in `epoch`.
pub fn commit(
    keypair: &Keypair,
    network_id: NetworkId,
    subnet: u32,
    epoch: u64,
    weights: &[(u32, u16)],
    salt: [u8; 32],
) -> (v1::WeightCommit, v1::WeightReveal) {
    let reveal = v1::WeightReveal {
        network_id: network_id.to_vec(),
        subnet,
        epoch,
        validator: keypair.public().to_bytes().to_vec(),
        uids: weights.iter().map(|&(uid, _)| uid).collect(),
        weights: weights.iter().map(|&(_, w)| u32::from(w)).collect(),
        salt: salt.to_vec(),
        signature: Vec::new(),
    }
    .signed(keypair);
    let commitment = v1::WeightCommit {
        network_id: network_id.to_vec(),
        subnet,
        epoch,
        validator: Vec::new(),
        commit_hash: commitment_hash(&reveal).to_vec(),
        signature: Vec::new(),
    }
    .signed(keypair);
    (commitment, reveal)
}

/// Checks that `reveal` opens `commitment`: both valid and signed by the same validator, for the
/// same network, subnet and epoch, and the reveal hashes to the committed value.
pub fn open(commitment: &v1::WeightCommit, reveal: &v1::WeightReveal) -> Result<(), RevealError> {
    commitment.validate()?;
    reveal.validate()?;
    commitment.verify_signature()?;
    reveal.verify_signature()?;
    if commitment.validator != reveal.validator {
        return Err(RevealError::Mismatch("validator"));
    }
    if commitment.network_id != reveal.network_id {
        return Err(RevealError::Mismatch("network"));
    }
    if commitment.subnet != reveal.subnet {
        return Err(RevealError::Mismatch("subnet"));
    }
    if commitment.epoch != reveal.epoch {
        return Err(RevealError::Mismatch("epoch"));
    }
    if commitment.commit_hash != commitment_hash(reveal).to_vec() {
        return Err(RevealError::WrongHash);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: NetworkId = NetworkId::new([3; 32]);

    fn key(seed: u8) -> Keypair {
        Keypair::from_secret(&[seed; 32])
    }

    #[test]
    fn a_reveal_opens_its_commitment() {
        let (c, r) = commit(&key(1), NET, 1, 5, &[(0, 65535), (3, 1200)], [9; 32]);
        open(&c, &r).expect("opens");
        assert_eq!(r.uids, vec![0, 3]);
    }

    #[test]
    fn changed_weights_another_validator_or_epoch_do_not_open_it() {
        let (c, r) = commit(&key(1), NET, 1, 5, &[(0, 65535), (3, 1200)], [9; 32]);
        // Re-signed with other weights: valid signature, wrong hash.
        let mut changed = r.clone();
        changed.weights[1] = 1300;
        let changed = changed.signed(&key(1));
        assert!(matches!(open(&c, &changed), Err(RevealError::WrongHash)));
        // Someone else copies the vector and signs it as theirs.
        let copied = r.clone().signed(&key(2));
        assert!(matches!(
            open(&c, &copied),
            Err(RevealError::Mismatch("validator"))
        ));
        // The same vector revealed for another epoch.
        let mut later = r.clone();
        later.epoch = 6;
        let later = later.signed(&key(1));
        assert!(matches!(
            open(&c, &later),
            Err(RevealError::Mismatch("epoch"))
        ));
        // Tampering without re-signing breaks the signature.
        let mut tampered = r.clone();
        tampered.salt[0] ^= 1;
        assert!(matches!(
            open(&c, &tampered),
            Err(RevealError::Signature(_))
        ));
        // The salt hides the vector: the same weights with another salt commit differently.
        let (c2, _) = commit(&key(1), NET, 1, 5, &[(0, 65535), (3, 1200)], [8; 32]);
        assert_ne!(c.commit_hash, c2.commit_hash);
    }
}
