//! Golden vectors: hashes and signatures of fixed messages under a fixed key.
//!
//! If one of these fails, the wire encoding, a domain string or the signing scheme changed. That breaks
//! every deployed peer: change the protocol version instead, then update the vectors.

use super::samples;
use crate::domain::Domain;
use crate::hash::hash;
use crate::signing::Signed;
use crate::v1;
use prost::Message as _;

fn hex_of(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

#[test]
fn fixed_key() {
    assert_eq!(samples::key(7).public().to_hex(), GOLDEN_PUBLIC_KEY);
    assert_eq!(samples::key(7).peer_id().to_string(), GOLDEN_PEER_ID);
}

#[test]
fn vote() {
    let vote = samples::vote(7, 2, Some([0xab; 32]));
    assert_eq!(hex_of(&vote.signing_digest()), GOLDEN_VOTE_DIGEST);
    // The digest is exactly blake3's key derivation over the unsigned encoding.
    let mut unsigned = vote.clone();
    unsigned.signature.clear();
    let independent = blake3::derive_key(
        "meshmind/v1/vote",
        &prost::Message::encode_to_vec(&unsigned),
    );
    assert_eq!(hex_of(&independent), GOLDEN_VOTE_DIGEST);
    assert_eq!(hex_of(&vote.signature), GOLDEN_VOTE_SIGNATURE);
    assert_eq!(hash(&vote).to_hex(), GOLDEN_VOTE_HASH);
}

#[test]
fn capability_ad() {
    let ad = samples::ad(7);
    assert_eq!(hex_of(&ad.signature), GOLDEN_AD_SIGNATURE);
    assert_eq!(hash(&ad).to_hex(), GOLDEN_AD_HASH);
}

#[test]
fn transaction() {
    let tx = samples::transfer(7, 42);
    assert_eq!(hex_of(&tx.signature), GOLDEN_TX_SIGNATURE);
    assert_eq!(hash(&tx).to_hex(), GOLDEN_TX_HASH);
}

#[test]
fn genesis() {
    assert_eq!(hash(&samples::genesis()).to_hex(), GOLDEN_GENESIS_HASH);
}

#[test]
fn economy_state_root() {
    // The state root every snapshot header carries: blake3 key derivation over the canonical
    // encoding of the economy state (see `state.proto`).
    let encoded = prost::Message::encode_to_vec(&samples::economy_state());
    assert_eq!(
        hex_of(&blake3::derive_key("meshmind/v1/state", &encoded)),
        GOLDEN_STATE_ROOT
    );
}

/// One entry of the shared vectors file.
fn entry(name: &str, message: &impl prost::Message, domain: Option<Domain>) -> serde_json::Value {
    let encoded = message.encode_to_vec();
    let mut value = serde_json::json!({
        "name": name,
        "encoded": hex_of(&encoded),
        "hash": hex_of(blake3::hash(&encoded).as_bytes()),
    });
    if let Some(domain) = domain {
        value["domain"] = domain.as_str().into();
    }
    value
}

/// A signed message's entry: beside its encoding, the unsigned encoding, the digest signed and
/// the signature.
fn signed_entry<M: Signed>(name: &str, message: &M) -> serde_json::Value {
    let mut unsigned = message.clone();
    unsigned.signature_mut().clear();
    let mut value = entry(name, message, Some(M::DOMAIN));
    value["unsigned"] = hex_of(&unsigned.encode_to_vec()).into();
    value["digest"] = hex_of(&message.signing_digest()).into();
    value["signature"] = hex_of(message.signature_bytes()).into();
    value
}

/// The vectors other implementations check themselves against (the Python SDK's tests read
/// `protocols/golden/vectors.json`): this test fails when the file and the code disagree, and
/// `MESHMIND_BLESS=1` rewrites the file.
#[test]
fn shared_vectors_file_matches_the_code() {
    let key = samples::key(7);
    let register = v1::Transaction {
        network_id: samples::NET.to_vec(),
        nonce: 3,
        kind: Some(v1::transaction::Kind::Register(
            v1::Register {
                subnet: 1,
                max_burn: 5_000,
                ..Default::default()
            }
            .consented(&samples::key(8), &samples::NET, &key.public()),
        )),
        ..Default::default()
    }
    .signed(&key);
    let declare = v1::Transaction {
        network_id: samples::NET.to_vec(),
        nonce: 4,
        kind: Some(v1::transaction::Kind::DeclareFinalizer(
            v1::DeclareFinalizer::default().consented(
                &samples::key(8),
                &samples::NET,
                &key.public(),
            ),
        )),
        ..Default::default()
    }
    .signed(&key);
    let set_params = v1::Transaction {
        network_id: samples::NET.to_vec(),
        nonce: 5,
        kind: Some(v1::transaction::Kind::SetSubnetParams(
            v1::SetSubnetParams {
                subnet: 1,
                values: vec![
                    v1::ParamValue {
                        name: "kappa".into(),
                        value: 40_000,
                    },
                    v1::ParamValue {
                        name: "tempo".into(),
                        value: 3,
                    },
                ],
            },
        )),
        ..Default::default()
    }
    .signed(&key);
    let swap = v1::Transaction {
        network_id: samples::NET.to_vec(),
        nonce: 6,
        kind: Some(v1::transaction::Kind::SwapHotkey(
            v1::SwapHotkey {
                old_hotkey: vec![5; 32],
                ..Default::default()
            }
            .consented(&samples::key(8), &samples::NET, &key.public()),
        )),
        ..Default::default()
    }
    .signed(&key);
    let state = samples::economy_state();
    let mut state_entry = entry("economy_state", &state, None);
    state_entry["state_root"] = hex_of(&blake3::derive_key(
        "meshmind/v1/state",
        &state.encode_to_vec(),
    ))
    .into();
    let vectors = serde_json::json!({
        "about": "Golden vectors of the meshmind v1 wire format. Keys are ed25519 from the 32-byte \
                  seeds given; `encoded` is the protobuf encoding, `hash` its blake3, `digest` \
                  blake3's derive_key(domain, unsigned) and `signature` the ed25519 signature of \
                  the digest. Generated by protocols/src/tests/golden.rs.",
        "network_id": hex_of(&samples::NET),
        "keys": [
            {"seed": hex_of(&[7; 32]), "public_key": key.public().to_hex(), "peer_id": key.peer_id().to_string()},
            {"seed": hex_of(&[8; 32]), "public_key": samples::key(8).public().to_hex(), "peer_id": samples::key(8).peer_id().to_string()},
        ],
        "messages": [
            signed_entry("vote", &samples::vote(7, 2, Some([0xab; 32]))),
            signed_entry("capability_ad", &samples::ad(7)),
            signed_entry("weight_reveal", &samples::reveal(7)),
            signed_entry("transfer", &samples::transfer(7, 42)),
            signed_entry("register", &register),
            signed_entry("declare_finalizer", &declare),
            signed_entry("set_subnet_params", &set_params),
            signed_entry("swap_hotkey", &swap),
            entry("certificate", &samples::certificate(4), None),
            entry("genesis", &samples::genesis(), None),
            state_entry,
        ],
    });
    let text = serde_json::to_string_pretty(&vectors).expect("json") + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/vectors.json");
    if std::env::var_os("MESHMIND_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("golden dir");
        std::fs::write(&path, &text).expect("write vectors");
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == text,
        "{} differs from the code's vectors: the wire format changed (see this file's header), \
         or rerun with MESHMIND_BLESS=1 after a deliberate change",
        path.display()
    );
}

const GOLDEN_PUBLIC_KEY: &str = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
const GOLDEN_PEER_ID: &str = "12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7";
const GOLDEN_VOTE_DIGEST: &str = "a4a071c30eebb827fbdedd624e9e13a87a58c163f92ebd9c25462c7c93aacccb";
const GOLDEN_VOTE_SIGNATURE: &str = "42a9b015e32265ce54d7e714ea1eacbf487e033beb98b841dc052be79c4858ff052e736c196d26cc792fec2b701485e4c2be951dae90bc59df31ed499311370f";
const GOLDEN_VOTE_HASH: &str = "820c76a1b504935fff2e4a1d1c89b96792dc87e2c9859be798a1fdadeac171c7";
const GOLDEN_AD_SIGNATURE: &str = "7c347bc7cd3d4740ae3d0a10199de6030e2201cd22fa9108c79ddc5b3377849eafe5c08cc7313655ca04a1ed5235968e6cc28a33958fe41b59be2954df96150f";
const GOLDEN_AD_HASH: &str = "b296e52b0688480aff8c194d5239cb353ec09e67eff170f11b815ae8ec426a7b";
const GOLDEN_TX_SIGNATURE: &str = "c7d2ef7154e7214cae4f52e837cfac9dd455066488134a3258966a08c3ff2e9b7faf33a090d5756accec1888db0c68d4558d1ac5487e57457a7f3d0b9aeb910a";
const GOLDEN_TX_HASH: &str = "b5944de52c819e844bd07eac126209d6a9006806da03ed6c19b176d4d53307a4";
const GOLDEN_GENESIS_HASH: &str =
    "1ac65dd9bea0a80e0ff8822bb80c8f9a78aef263cb653f93fa4ad2074e579fa6";
const GOLDEN_STATE_ROOT: &str = "ff65dba1566d14bfc8876db58b73b3cb6a17429a3fe6e4d38e37c6ca2e0617fd";
