//! Cost of meshmind's signing and hashing wrappers beside the bare ed25519-dalek and blake3 calls.
//!
//! Each group holds a `bare` row (the crypto library alone, on the already-encoded bytes) and a
//! `meshmind` row (the public API, which also encodes the message and separates domains). The ratio of
//! the two is the wrapper's overhead; `scripts/bench-table.py` prints it from criterion's results.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use meshmind_protocols::{BatchVerifier, Keypair, Signed, hash, v1};
use prost::Message;

fn key(seed: u8) -> Keypair {
    Keypair::from_secret(&[seed; 32])
}

fn vote(seed: u8) -> v1::Vote {
    v1::Vote {
        network_id: vec![0x11; 32],
        epoch: 1234,
        round: 0,
        vote_type: v1::VoteType::Precommit as i32,
        value_id: vec![0x44; 32],
        valset_hash: vec![0x22; 32],
        ..Default::default()
    }
    .signed(&key(seed))
}

fn unsigned_encoding(vote: &v1::Vote) -> Vec<u8> {
    let mut unsigned = vote.clone();
    unsigned.signature.clear();
    unsigned.encode_to_vec()
}

fn sign_and_verify(c: &mut Criterion) {
    let keypair = key(1);
    let dalek = SigningKey::from_bytes(&[1; 32]);
    let message = vote(1);
    let encoded = unsigned_encoding(&message);

    let mut group = c.benchmark_group("sign");
    group.bench_function("bare", |b| b.iter(|| dalek.sign(black_box(&encoded))));
    group.bench_function("meshmind", |b| {
        b.iter(|| black_box(message.clone()).signed(&keypair))
    });
    group.finish();

    let signature = dalek.sign(&encoded);
    let key_bytes = dalek.verifying_key().to_bytes();
    let mut group = c.benchmark_group("verify");
    group.bench_function("bare", |b| {
        b.iter(|| {
            let key = VerifyingKey::from_bytes(black_box(&key_bytes)).expect("valid key");
            key.verify_strict(black_box(&encoded), &signature)
                .expect("valid signature")
        })
    });
    group.bench_function("meshmind", |b| {
        b.iter(|| {
            black_box(&message)
                .verify_signature()
                .expect("valid signature")
        })
    });
    group.finish();
}

fn batch_verify(c: &mut Criterion) {
    for n in [4u8, 16, 100] {
        let votes: Vec<v1::Vote> = (1..=n).map(vote).collect();
        let encoded: Vec<Vec<u8>> = votes.iter().map(unsigned_encoding).collect();
        let signatures: Vec<ed25519_dalek::Signature> = (1..=n)
            .zip(&encoded)
            .map(|(seed, bytes)| SigningKey::from_bytes(&[seed; 32]).sign(bytes))
            .collect();
        let key_bytes: Vec<[u8; 32]> = (1..=n)
            .map(|seed| {
                SigningKey::from_bytes(&[seed; 32])
                    .verifying_key()
                    .to_bytes()
            })
            .collect();

        let mut group = c.benchmark_group(format!("batch_verify_{n}"));
        group.bench_function("bare", |b| {
            b.iter(|| {
                let keys: Vec<VerifyingKey> = key_bytes
                    .iter()
                    .map(|k| VerifyingKey::from_bytes(k).expect("valid key"))
                    .collect();
                let messages: Vec<&[u8]> = encoded.iter().map(|m| m.as_slice()).collect();
                ed25519_dalek::verify_batch(&messages, &signatures, &keys).expect("valid batch")
            })
        });
        group.bench_function("meshmind", |b| {
            b.iter(|| {
                let mut batch = BatchVerifier::with_capacity(votes.len());
                for vote in black_box(&votes) {
                    batch.push_signed(vote).expect("well-formed vote");
                }
                batch.verify().expect("valid batch")
            })
        });
        group.finish();
    }
}

fn hashing(c: &mut Criterion) {
    let one_kib = v1::Query {
        content_type: String::new(),
        id: vec![7; 16],
        network_id: vec![0x11; 32],
        subnet: 1,
        task: "echo".into(),
        payload: vec![0xab; 1024 - 64],
        deadline_ms: 1000,
        want_all: false,
        stream: false,
    };
    let mut signatures: Vec<v1::CommitSignature> = (1..=100u8)
        .map(|seed| {
            let v = vote(seed);
            v1::CommitSignature {
                validator: v.validator,
                signature: v.signature,
            }
        })
        .collect();
    signatures.sort_by(|a, b| a.validator.cmp(&b.validator));
    let certificate = v1::Certificate {
        network_id: vec![0x11; 32],
        epoch: 1234,
        round: 0,
        value_id: vec![0x44; 32],
        valset_hash: vec![0x22; 32],
        signatures,
    };

    for (name, bytes, message) in [
        (
            "hash_1kib",
            one_kib.encode_to_vec(),
            &one_kib as &dyn HashMe,
        ),
        (
            "hash_certificate_100",
            certificate.encode_to_vec(),
            &certificate as &dyn HashMe,
        ),
    ] {
        let mut group = c.benchmark_group(name);
        group.bench_function("bare", |b| b.iter(|| blake3::hash(black_box(&bytes))));
        group.bench_function("encode_then_bare", |b| {
            b.iter(|| blake3::hash(&black_box(message).encode()))
        });
        group.bench_function("meshmind", |b| b.iter(|| black_box(message).hash()));
        group.finish();
    }
}

/// Lets one loop bench two message types.
trait HashMe {
    fn hash(&self) -> meshmind_protocols::Hash;
    fn encode(&self) -> Vec<u8>;
}

impl<M: Message> HashMe for M {
    fn hash(&self) -> meshmind_protocols::Hash {
        hash(self)
    }
    fn encode(&self) -> Vec<u8> {
        self.encode_to_vec()
    }
}

criterion_group!(benches, sign_and_verify, batch_verify, hashing);
criterion_main!(benches);
