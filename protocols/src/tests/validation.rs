//! Validation: well-formed samples pass; each kind of defect is named by field and reason.

use super::samples::{self, NET, key};
use crate::network::NetworkId;
use crate::signing::Signed;
use crate::v1;
use crate::validate::{Context, Reason, Validate, ValidationError};

fn ctx(now_ms: u64) -> Context {
    Context {
        network_id: NetworkId::new(NET),
        now_ms,
        max_clock_skew_ms: 500,
    }
}

fn fails<M: Validate>(message: &M, field: &str, reason: impl Fn(&Reason) -> bool) {
    match message.validate() {
        Err(ValidationError {
            field: f,
            reason: r,
        }) => {
            assert_eq!(f, field, "wrong field (reason {r})");
            assert!(reason(&r), "{field}: unexpected reason {r}");
        }
        Ok(()) => panic!("{field}: defect not detected"),
    }
}

#[test]
fn samples_are_valid() {
    samples::vote(1, 0, None).validate().expect("nil vote");
    samples::vote(1, 0, Some([1; 32])).validate().expect("vote");
    samples::ad(1).validate().expect("ad");
    samples::reveal(1).validate().expect("reveal");
    samples::transfer(1, 0).validate().expect("transfer");
    samples::certificate(4).validate().expect("certificate");
    samples::genesis().validate().expect("genesis");
}

#[test]
fn lengths_are_checked_by_field() {
    let mut vote = samples::vote(1, 0, None);
    vote.network_id.push(0);
    fails(&vote, "network_id", |r| {
        *r == Reason::BadLength {
            expected: 32,
            actual: 33,
        }
    });

    let mut vote = samples::vote(1, 0, Some([1; 32]));
    vote.value_id.truncate(5);
    fails(&vote, "value_id", |r| matches!(r, Reason::BadLength { .. }));

    let mut ad = samples::ad(1);
    ad.signature.clear();
    fails(&ad, "signature", |r| matches!(r, Reason::BadLength { .. }));
}

#[test]
fn ranges_and_enums_are_checked() {
    let mut vote = samples::vote(1, 0, None);
    vote.vote_type = 9;
    fails(&vote, "vote_type", |r| matches!(r, Reason::OutOfRange(_)));

    let mut reveal = samples::reveal(1);
    reveal.weights[1] = 70_000;
    fails(&reveal, "weights[1]", |r| {
        matches!(r, Reason::OutOfRange(_))
    });

    let mut reveal = samples::reveal(1);
    reveal.uids = vec![0, 5, 2];
    fails(&reveal, "uids[2]", |r| *r == Reason::NotSorted);

    let mut reveal = samples::reveal(1);
    reveal.uids = vec![0, 2, 2];
    fails(&reveal, "uids[2]", |r| *r == Reason::Duplicate);

    let mut reveal = samples::reveal(1);
    reveal.weights.pop();
    fails(&reveal, "weights", |r| matches!(r, Reason::Inconsistent(_)));

    let query = v1::Query {
        id: vec![0; 16],
        network_id: NET.to_vec(),
        subnet: 1,
        task: "arith".into(),
        payload: b"1+1".to_vec(),
        deadline_ms: 0,
        want_all: false,
        stream: false,
        content_type: String::new(),
    };
    fails(&query, "deadline_ms", |r| {
        matches!(r, Reason::OutOfRange(_))
    });
    for bad in [
        "text",
        "text/plain/x",
        "/plain",
        "text /plain",
        "Text/Plain",
        "text/\u{7}",
        &"a/".repeat(40),
    ] {
        let typed = v1::Query {
            deadline_ms: 1000,
            content_type: bad.to_string(),
            ..query.clone()
        };
        fails(&typed, "content_type", |_| true);
    }
    for good in [
        "text/plain",
        "application/x-f32le",
        "text/plain; charset=utf-8",
    ] {
        let typed = v1::Query {
            deadline_ms: 1000,
            content_type: good.to_string(),
            ..query.clone()
        };
        assert!(typed.validate().is_ok(), "{good}");
    }
    let query = v1::Query {
        deadline_ms: 1000,
        task: "no spaces".into(),
        ..query
    };
    fails(&query, "task", |r| *r == Reason::BadCharacters);
}

#[test]
fn nested_errors_carry_the_path() {
    let mut certificate = samples::certificate(3);
    certificate.signatures[1].signature.pop();
    fails(&certificate, "signatures[1].signature", |r| {
        matches!(r, Reason::BadLength { .. })
    });

    let mut certificate = samples::certificate(3);
    certificate.signatures.swap(0, 2);
    fails(&certificate, "signatures[1]", |r| *r == Reason::NotSorted);

    let frame = v1::QueryFrame { body: None };
    fails(&frame, "body", |r| *r == Reason::Missing);

    let mut genesis = samples::genesis();
    genesis.subnets[0].tasks.push("arith".into());
    fails(&genesis, "subnets[0].tasks[2]", |r| *r == Reason::Duplicate);
}

#[test]
fn evidence_must_show_a_real_conflict() {
    let a = samples::vote(4, 1, Some([1; 32]));
    let b = samples::vote(4, 1, Some([2; 32]));
    let evidence = |first: &v1::Vote, second: &v1::Vote| v1::Evidence {
        kind: Some(v1::evidence::Kind::DuplicateVote(v1::DuplicateVote {
            first: Some(first.clone()),
            second: Some(second.clone()),
        })),
    };
    evidence(&a, &b).validate().expect("real equivocation");
    fails(&evidence(&a, &a), "duplicate_vote.second", |r| {
        matches!(r, Reason::Inconsistent(_))
    });
    let other_round = samples::vote(4, 2, Some([2; 32]));
    fails(&evidence(&a, &other_round), "duplicate_vote.second", |r| {
        matches!(r, Reason::Inconsistent(_))
    });
    let other_signer = samples::vote(5, 1, Some([2; 32]));
    fails(&evidence(&a, &other_signer), "duplicate_vote.second", |r| {
        matches!(r, Reason::Inconsistent(_))
    });
}

#[test]
fn context_checks_network_time_and_signature() {
    let ad = samples::ad(1);
    ctx(30_000).check(&ad).expect("valid in its window");

    let mut other = ctx(30_000);
    other.network_id = NetworkId::new([0x99; 32]);
    let err = other.check(&ad).expect_err("other network");
    assert_eq!(err.reason, Reason::WrongNetwork);

    let err = ctx(61_000).check(&ad).expect_err("expired");
    assert_eq!(err.field, "expires_at_ms");
    assert!(matches!(err.reason, Reason::Expired { .. }));

    ctx(600).check(&ad).expect("within clock skew");
    let err = ctx(400).check(&ad).expect_err("too early");
    assert!(matches!(err.reason, Reason::NotYetValid { .. }));

    let mut tampered = ad.clone();
    tampered.max_concurrency += 1;
    let err = ctx(30_000).check(&tampered).expect_err("tampered");
    assert_eq!(err.field, "signature");
    assert!(matches!(err.reason, Reason::BadSignature(_)));

    // Re-signing by another key is a valid ad from that other miner.
    let resigned = tampered.signed(&key(2));
    ctx(30_000).check(&resigned).expect("resigned");
    assert_eq!(resigned.signer().ok(), Some(key(2).public()));
}

#[test]
fn errors_read_well() {
    let mut vote = samples::vote(1, 0, None);
    vote.validator = vec![0; 3];
    let err = vote.validate().expect_err("short key");
    assert_eq!(err.to_string(), "validator: must be 32 bytes, got 3");
}

#[test]
fn a_response_checked_against_its_miner_follows_the_same_rules() {
    let miner = key(1);
    let response = v1::QueryResponse {
        id: vec![7; 16],
        query_hash: vec![9; 32],
        output: b"a b".to_vec(),
        elapsed_us: 5,
        ..Default::default()
    }
    .signed(&miner);
    assert!(response.validate().is_ok());
    assert!(response.validate_from(&miner.public()).is_ok());
    let other = key(2).public();
    assert!(matches!(
        response.validate_from(&other),
        Err(e) if e.to_string().contains("miner")
    ));
    let mut short_id = response.clone();
    short_id.id.pop();
    assert!(short_id.validate().is_err());
    assert!(short_id.validate_from(&miner.public()).is_err());
}
