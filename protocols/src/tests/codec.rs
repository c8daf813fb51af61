//! Encoding round trips, size caps, canonical-encoding checks and frames.

use proptest::prelude::*;
use prost::Message;

use crate::codec::{
    DecodeError, FRAME_HEADER_LEN, Wire, decode, decode_capped, decode_frame, encode_frame,
    frame_length,
};
use crate::v1;

/// Round trip and arbitrary-bytes properties for each listed type.
macro_rules! wire_properties {
    ($($name:ident: $ty:ty),+ $(,)?) => {
        mod roundtrip {
            use super::*;
            proptest! {
                #![proptest_config(ProptestConfig::with_cases(64))]
                $(
                    #[test]
                    fn $name(message in any::<$ty>()) {
                        let bytes = message.encode_to_vec();
                        let decoded = decode::<$ty>(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(&decoded, &message);
                        let frame = encode_frame(&message).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        let from_frame = decode_frame::<$ty>(&frame).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(from_frame, message);
                    }
                )+
            }
        }
        mod arbitrary_bytes {
            use super::*;
            proptest! {
                #![proptest_config(ProptestConfig::with_cases(256))]
                $(
                    #[test]
                    fn $name(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                        // Must return, never panic; whatever decodes is canonical.
                        if let Ok(message) = decode::<$ty>(&bytes) {
                            prop_assert_eq!(message.encode_to_vec(), bytes.clone());
                        }
                        let _ = decode_frame::<$ty>(&bytes);
                    }
                )+
            }
        }
        #[test]
        fn every_type_refuses_input_over_its_cap() {
            $(
                let cap = <$ty as Wire>::MAX_SIZE;
                let header = ((cap + 1) as u32).to_be_bytes();
                assert!(matches!(
                    frame_length::<$ty>(header, usize::MAX),
                    Err(DecodeError::TooLarge { actual, .. }) if actual == cap + 1
                ), "{} frame header over cap accepted", stringify!($ty));
                assert_eq!(frame_length::<$ty>((cap as u32).to_be_bytes(), usize::MAX).ok(), Some(cap));
            )+
        }
    };
}

wire_properties! {
    error: v1::Error,
    signed_envelope: v1::SignedEnvelope,
    capability_ad: v1::CapabilityAd,
    query: v1::Query,
    query_response: v1::QueryResponse,
    query_chunk: v1::QueryChunk,
    query_responses: v1::QueryResponses,
    query_frame: v1::QueryFrame,
    weight_commit: v1::WeightCommit,
    weight_reveal: v1::WeightReveal,
    proposal: v1::Proposal,
    vote: v1::Vote,
    certificate: v1::Certificate,
    evidence: v1::Evidence,
    transaction: v1::Transaction,
    validator_set: v1::ValidatorSet,
    subnet_result: v1::SubnetResult,
    snapshot_header: v1::SnapshotHeader,
    snapshot: v1::Snapshot,
    finalized_snapshot: v1::FinalizedSnapshot,
    proposed_value: v1::ProposedValue,
    consensus_message: v1::ConsensusMessage,
    sync_request: v1::SyncRequest,
    consensus_batch: v1::ConsensusBatch,
    wal_entry: v1::WalEntry,
    ledger_status: v1::LedgerStatus,
    sync_response: v1::SyncResponse,
    genesis: v1::Genesis,
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    let bytes = vec![0u8; <v1::Vote as Wire>::MAX_SIZE + 1];
    match decode::<v1::Vote>(&bytes) {
        Err(DecodeError::TooLarge { kind, actual, cap }) => {
            assert_eq!(kind, "Vote");
            assert_eq!(actual, cap + 1);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn a_lower_cap_applies() {
    let vote = super::samples::vote(1, 0, None);
    let bytes = vote.encode_to_vec();
    assert!(decode_capped::<v1::Vote>(&bytes, bytes.len()).is_ok());
    assert!(matches!(
        decode_capped::<v1::Vote>(&bytes, bytes.len() - 1),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn non_canonical_encodings_are_refused() {
    let vote = super::samples::vote(1, 3, None);
    let bytes = vote.encode_to_vec();

    // An unknown field appended.
    let mut unknown = bytes.clone();
    unknown.extend_from_slice(&[0x98, 0x01, 0x05]); // field 19, varint 5
    assert!(matches!(
        decode::<v1::Vote>(&unknown),
        Err(DecodeError::NonCanonical { .. })
    ));

    // A field repeated: the round (field 3) set again at the end.
    let mut repeated = bytes.clone();
    repeated.extend_from_slice(&[0x18, 0x03]);
    assert!(matches!(
        decode::<v1::Vote>(&repeated),
        Err(DecodeError::NonCanonical { .. })
    ));

    // An overlong varint for round = 3: 0x83 0x00 instead of 0x03.
    let position = bytes
        .windows(2)
        .position(|w| w == [0x18, 0x03])
        .expect("round field present");
    let mut overlong = bytes[..position].to_vec();
    overlong.extend_from_slice(&[0x18, 0x83, 0x00]);
    overlong.extend_from_slice(&bytes[position + 2..]);
    assert!(matches!(
        decode::<v1::Vote>(&overlong),
        Err(DecodeError::NonCanonical { .. })
    ));
}

#[test]
fn frames_detect_truncation_and_trailing_bytes() {
    let vote = super::samples::vote(1, 0, None);
    let frame = encode_frame(&vote).expect("vote fits its cap");
    assert_eq!(frame.len(), FRAME_HEADER_LEN + vote.encoded_len());
    assert!(matches!(
        decode_frame::<v1::Vote>(&frame[..frame.len() - 1]),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        decode_frame::<v1::Vote>(&frame[..2]),
        Err(DecodeError::Truncated { .. })
    ));
    let mut long = frame.clone();
    long.push(0);
    assert!(matches!(
        decode_frame::<v1::Vote>(&long),
        Err(DecodeError::Trailing { extra: 1 })
    ));
}

#[test]
fn encoding_over_the_cap_is_refused() {
    let query = v1::Query {
        payload: vec![0; <v1::Query as Wire>::MAX_SIZE],
        ..Default::default()
    };
    assert!(encode_frame(&query).is_err());
}
