//! A miner on the real query plane (QUIC on 127.0.0.1): signed answers, refusals, limits, backends.

use std::sync::Arc;
use std::time::Duration;

use meshmind_node::role::miner::{Echo, Exec, Http, Miner, MinerBackend, MinerConfig, Reference};
use meshmind_p2p::{Network, NetworkConfig, NetworkEvent, NetworkHandle, PeerId};
use meshmind_protocols::{Keypair, NetworkId, Signed, decode, hash, v1};
use prost::Message;

const NET: NetworkId = NetworkId::new([7; 32]);

/// Starts a miner node serving `tasks` on subnet 1 with `backend`; returns its handle and key.
fn start_miner(
    backend: Arc<dyn MinerBackend>,
    tasks: &[&str],
    tweak: impl FnOnce(&mut MinerConfig),
) -> (NetworkHandle, Keypair) {
    let key = Keypair::generate().expect("os random");
    let mut config = MinerConfig::new(NET, 1, tasks.iter().map(|t| t.to_string()).collect());
    tweak(&mut config);
    let miner = Arc::new(Miner::new(config, key.clone(), backend));
    let (handle, mut events) =
        Network::spawn(NetworkConfig::local("miner-test"), &key).expect("network starts");
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetworkEvent::InboundQuery(query) = event {
                let miner = miner.clone();
                tokio::spawn(async move { miner.serve(query).await });
            }
        }
    });
    (handle, key)
}

fn client_for(miner: &NetworkHandle) -> NetworkHandle {
    let key = Keypair::generate().expect("os random");
    let (client, _events) =
        Network::spawn(NetworkConfig::local("miner-test"), &key).expect("network starts");
    let addr = miner.query_addr().expect("query plane");
    client
        .add_query_addr(miner.local_peer_id(), addr)
        .expect("query plane");
    client
}

fn query(task: &str, input: &str) -> v1::Query {
    v1::Query {
        content_type: String::new(),
        id: vec![1; 16],
        network_id: NET.to_vec(),
        subnet: 1,
        task: task.into(),
        payload: input.as_bytes().to_vec(),
        deadline_ms: 2_000,
        want_all: false,
        stream: false,
    }
}

async fn ask(client: &NetworkHandle, miner: PeerId, bytes: &[u8]) -> v1::QueryFrame {
    let answer = client
        .query(miner, bytes, Duration::from_secs(5))
        .await
        .expect("an answer");
    decode::<v1::QueryFrame>(&answer).expect("a canonical frame")
}

fn frame_of(query: &v1::Query) -> Vec<u8> {
    v1::QueryFrame {
        body: Some(v1::query_frame::Body::Query(query.clone())),
    }
    .encode_to_vec()
}

fn response(frame: v1::QueryFrame) -> v1::QueryResponse {
    match frame.body {
        Some(v1::query_frame::Body::Response(r)) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_answers_are_correct_and_signed_by_the_miner() {
    let (miner, key) = start_miner(Arc::new(Reference), &Reference::TASKS, |_| {});
    let client = client_for(&miner);
    for (task, input, expected) in [
        ("arith", "(2 + 4) * 7", "42"),
        ("sort", "pear apple fig", "apple fig pear"),
    ] {
        let q = query(task, input);
        let r = response(ask(&client, miner.local_peer_id(), &frame_of(&q)).await);
        assert_eq!(r.output, expected.as_bytes());
        assert!(r.error.is_none());
        assert!(r.verify_signature().is_ok());
        assert_eq!(r.signer().ok(), Some(key.public()));
        assert_eq!(r.query_hash, hash(&q).to_vec(), "bound to this query");
        assert_eq!(r.id, q.id);
    }
    // A bad expression is a signed refusal, not a crash.
    let r = response(
        ask(
            &client,
            miner.local_peer_id(),
            &frame_of(&query("arith", "1 / 0")),
        )
        .await,
    );
    assert_eq!(
        r.error.map(|e| e.code),
        Some(v1::ErrorCode::Malformed as i32)
    );
    client.shutdown().await;
    miner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_get_typed_errors() {
    let (miner, _) = start_miner(Arc::new(Echo), &["echo"], |_| {});
    let client = client_for(&miner);
    let id = miner.local_peer_id();

    let frame = ask(&client, id, b"\xff\xffnot protobuf").await;
    assert!(
        matches!(frame.body, Some(v1::query_frame::Body::Error(e)) if e.code == v1::ErrorCode::Malformed as i32)
    );

    let r = response(ask(&client, id, &frame_of(&query("translate", "x"))).await);
    assert_eq!(
        r.error.map(|e| e.code),
        Some(v1::ErrorCode::UnknownTask as i32)
    );

    let mut other_subnet = query("echo", "x");
    other_subnet.subnet = 9;
    let r = response(ask(&client, id, &frame_of(&other_subnet)).await);
    assert_eq!(
        r.error.map(|e| e.code),
        Some(v1::ErrorCode::UnknownSubnet as i32)
    );

    let mut other_network = query("echo", "x");
    other_network.network_id = vec![8; 32];
    let r = response(ask(&client, id, &frame_of(&other_network)).await);
    assert_eq!(
        r.error.map(|e| e.code),
        Some(v1::ErrorCode::WrongNetwork as i32)
    );

    let mut no_deadline = query("echo", "x");
    no_deadline.deadline_ms = 0;
    let frame = ask(&client, id, &frame_of(&no_deadline)).await;
    assert!(
        matches!(frame.body, Some(v1::query_frame::Body::Error(e)) if e.message.contains("deadline_ms"))
    );

    // Still serving.
    let r = response(ask(&client, id, &frame_of(&query("echo", "still here"))).await);
    assert_eq!(r.output, b"still here");
    client.shutdown().await;
    miner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_over_its_rate_is_refused() {
    let (miner, _) = start_miner(Arc::new(Echo), &["echo"], |c| {
        // A caller without a permit: 1 a second, bursts of 2.
        c.quotas.others = 1;
    });
    let client = client_for(&miner);
    let mut overloaded = 0;
    for _ in 0..6 {
        let frame = ask(
            &client,
            miner.local_peer_id(),
            &frame_of(&query("echo", "x")),
        )
        .await;
        if matches!(frame.body, Some(v1::query_frame::Body::Error(e)) if e.code == v1::ErrorCode::Overloaded as i32)
        {
            overloaded += 1;
        }
    }
    assert!(
        overloaded >= 3,
        "{overloaded} of 6 refused with a burst of 2"
    );
    client.shutdown().await;
    miner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_for_validators_only_refuses_a_stranger_and_says_why() {
    let (miner, _) = start_miner(Arc::new(Echo), &["echo"], |c| {
        c.quotas.admit = meshmind_node::role::quota::Admit::ValidatorsOnly;
    });
    let client = client_for(&miner);
    let frame = ask(
        &client,
        miner.local_peer_id(),
        &frame_of(&query("echo", "x")),
    )
    .await;
    match frame.body {
        Some(v1::query_frame::Body::Error(e)) => {
            assert_eq!(e.code, v1::ErrorCode::Refused as i32, "{e:?}");
            assert!(e.message.contains("validators only"), "{e:?}");
        }
        other => panic!("a refusal expected, got {other:?}"),
    }
    client.shutdown().await;
    miner.shutdown().await;
}

/// A JSON-lines model server in Python: `sort` answers sorted words (streamed word by word when
/// asked, the last word as the final output), `crash` exits.
const SCRIPT: &str = r#"
import json, sys
for line in sys.stdin:
    req = json.loads(line)
    if req["task"] == "crash":
        sys.exit(1)
    if req["task"] == "who":
        who = {"caller": req.get("caller"), "content_type": req.get("content_type")}
        print(json.dumps({"id": req["id"], "output": json.dumps(who)}), flush=True)
        continue
    if req["task"] == "reverse":
        import base64
        data = base64.b64decode(req["input_base64"]) if "input_base64" in req else req["input"].encode()
        out = base64.b64encode(data[::-1]).decode()
        print(json.dumps({"id": req["id"], "output_base64": out}), flush=True)
        continue
    words = sorted(req["input"].split())
    if req.get("stream"):
        for w in words[:-1]:
            print(json.dumps({"id": req["id"], "chunk": w + " "}), flush=True)
        print(json.dumps({"id": req["id"], "output": words[-1] if words else ""}), flush=True)
    else:
        print(json.dumps({"id": req["id"], "output": " ".join(words)}), flush=True)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exec_backend_serves_through_a_subprocess_and_survives_its_crash() {
    let backend = Arc::new(Exec::new("python3", vec!["-c".into(), SCRIPT.into()]));
    assert_eq!(
        backend.answer("sort", b"b c a").await.ok(),
        Some(b"a b c".to_vec())
    );
    // Concurrent queries are matched to their replies by id.
    let (x, y) = tokio::join!(
        backend.answer("sort", b"z y"),
        backend.answer("sort", b"2 1")
    );
    assert_eq!(x.ok(), Some(b"y z".to_vec()));
    assert_eq!(y.ok(), Some(b"1 2".to_vec()));
    // The miner's fault, not the client's.
    assert!(
        matches!(
            backend.answer("crash", b"").await,
            Err(meshmind_node::role::miner::BackendError::Failed(_))
        ),
        "a crash fails the query in flight"
    );
    assert_eq!(
        backend.answer("sort", b"again it works").await.ok(),
        Some(b"again it works".to_vec()),
        "restarted on the next query"
    );
    // The program learns who is calling.
    let caller = meshmind_node::role::miner::Caller {
        hotkey: "ab".repeat(32),
        stake: 7,
        permit: true,
    };
    let asked = meshmind_node::role::miner::Asked {
        caller: Some(&caller),
        content_type: "text/plain",
    };
    let who = backend
        .answer_for(asked, "who", b"")
        .await
        .expect("answers");
    let who: serde_json::Value = serde_json::from_slice(&who).expect("JSON");
    assert_eq!(who["caller"]["hotkey"], "ab".repeat(32));
    assert_eq!(
        (
            who["caller"]["stake"].as_u64(),
            who["caller"]["permit"].as_bool()
        ),
        (Some(7), Some(true))
    );
    assert_eq!(who["content_type"], "text/plain");
    let anonymous = backend.answer("who", b"").await.expect("answers");
    let anonymous: serde_json::Value = serde_json::from_slice(&anonymous).expect("JSON");
    assert!(
        anonymous["caller"].is_null() && anonymous["content_type"].is_null(),
        "nothing said when nothing is known: {anonymous}"
    );
    // Bytes that are not text travel as base64 both ways.
    assert_eq!(
        backend.answer("reverse", &[0xff, 0x00, 0x7f]).await.ok(),
        Some(vec![0x7f, 0x00, 0xff])
    );
    assert_eq!(
        backend.answer("reverse", b"abc").await.ok(),
        Some(b"cba".to_vec()),
        "text comes as input"
    );
    // Streamed: the process's chunk lines arrive as separate pieces, the final output last.
    let (sink, mut pieces) = tokio::sync::mpsc::channel(8);
    backend
        .answer_stream("sort", b"c a b", sink)
        .await
        .expect("streamed");
    let mut got = Vec::new();
    while let Some(piece) = pieces.recv().await {
        got.push(String::from_utf8(piece).expect("utf-8"));
    }
    assert_eq!(got, ["a ", "b ", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_answer_arrives_in_chunks_with_a_signed_trailer() {
    let (miner, key) = start_miner(Arc::new(Echo), &["echo"], |_| {});
    let client = client_for(&miner);
    let mut q = query("echo", "one two three");
    q.stream = true;
    let mut stream = client
        .query_stream(miner.local_peer_id(), &frame_of(&q), Duration::from_secs(5))
        .await
        .expect("a stream");
    let mut check = meshmind_node::role::stream::StreamCheck::new(&q, Some(key.public()));
    let mut data = Vec::new();
    let mut chunks = 0;
    let trailer = loop {
        let bytes = stream.next().await.expect("a frame").expect("no error");
        let Ok(v1::QueryFrame {
            body: Some(v1::query_frame::Body::Chunk(chunk)),
        }) = decode::<v1::QueryFrame>(&bytes)
        else {
            panic!("expected chunks");
        };
        chunks += 1;
        data.extend_from_slice(&chunk.data);
        if let Some(trailer) = check.chunk(&chunk).expect("a valid chunk") {
            break trailer.clone();
        }
    };
    assert_eq!(data, b"one two three");
    assert_eq!(chunks, 4, "three words, then the trailer");
    assert_eq!(trailer.output, blake3::hash(b"one two three").as_bytes());
    assert!(
        stream.next().await.is_none(),
        "the stream ends after the trailer"
    );
    // A streamed query the miner refuses ends in a signed trailer carrying the error.
    let mut q = query("nope", "x");
    q.stream = true;
    let mut stream = client
        .query_stream(miner.local_peer_id(), &frame_of(&q), Duration::from_secs(5))
        .await
        .expect("a stream");
    let bytes = stream.next().await.expect("a frame").expect("no error");
    let frame = decode::<v1::QueryFrame>(&bytes).expect("a frame");
    let Some(v1::query_frame::Body::Chunk(chunk)) = frame.body else {
        panic!("expected the last chunk");
    };
    let mut check = meshmind_node::role::stream::StreamCheck::new(&q, Some(key.public()));
    assert!(matches!(
        check.chunk(&chunk),
        Err(meshmind_node::role::stream::StreamError::Miner {
            code: v1::ErrorCode::UnknownTask,
            ..
        })
    ));
    client.shutdown().await;
    miner.shutdown().await;
}

#[test]
fn capability_ads_are_signed_and_valid() {
    let key = Keypair::generate().expect("os random");
    let miner = Miner::new(
        MinerConfig::new(NET, 1, vec!["arith".into(), "sort".into()]),
        key.clone(),
        Arc::new(Reference),
    );
    let ads = miner.capability_ads(
        1_000,
        60_000,
        &["/ip4/127.0.0.1/udp/1/quic-v1".into()],
        "127.0.0.1:2",
    );
    assert_eq!(ads.len(), 2);
    let context = meshmind_protocols::Context {
        network_id: NET,
        now_ms: 30_000,
        max_clock_skew_ms: 1_000,
    };
    for ad in &ads {
        context.check(ad).expect("valid ad");
        assert_eq!(ad.signer().ok(), Some(key.public()));
    }
}

#[test]
fn a_miner_hands_out_its_live_ads_on_request() {
    let key = Keypair::generate().expect("os random");
    let miner = Miner::new(
        MinerConfig::new(NET, 1, vec!["arith".into(), "sort".into()]),
        key,
        Arc::new(Reference),
    );
    let ads = miner.capability_ads(1_000, 60_000, &[], "127.0.0.1:2");
    let ask =
        |subnet: u32, now_ms: u64| miner.answer_caps(&v1::CapsRequest { subnet }, now_ms).body;
    assert_eq!(
        ask(1, 2_000),
        Some(v1::sync_response::Body::Ads(v1::CapabilityAds { ads }))
    );
    assert_eq!(
        ask(1, 61_000),
        Some(v1::sync_response::Body::Ads(v1::CapabilityAds {
            ads: Vec::new()
        })),
        "expired ads are not handed out"
    );
    match ask(2, 2_000) {
        Some(v1::sync_response::Body::Error(e)) => {
            assert_eq!(e.code, v1::ErrorCode::UnknownSubnet as i32)
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A model server on 127.0.0.1: `/stream` answers newline-delimited JSON, one piece, then (after
/// `gate` opens) two more; `/plain` answers one JSON object; `/broken` streams an error line.
async fn streaming_model_server(gate: Arc<tokio::sync::Notify>) -> String {
    use axum::response::IntoResponse;
    let ndjson = |lines: Vec<&'static str>, gate: Option<Arc<tokio::sync::Notify>>| {
        let body = futures::stream::unfold((lines, 0usize, gate), |(lines, i, gate)| async move {
            let line = *lines.get(i)?;
            if i == 1
                && let Some(gate) = &gate
            {
                gate.notified().await;
            }
            Some((
                Ok::<_, std::convert::Infallible>(format!("{line}\n")),
                (lines, i + 1, gate),
            ))
        });
        (
            [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
            axum::body::Body::from_stream(body),
        )
            .into_response()
    };
    let app = axum::Router::new()
        .route(
            "/stream",
            axum::routing::post(move || {
                let gate = gate.clone();
                async move {
                    ndjson(
                        vec![
                            r#"{"chunk":"tokens "}"#,
                            r#"{"chunk":"as they "}"#,
                            r#"{"output":"come"}"#,
                        ],
                        Some(gate),
                    )
                }
            }),
        )
        .route(
            "/plain",
            axum::routing::post(|| async { axum::Json(serde_json::json!({"output": "whole"})) }),
        )
        .route(
            "/broken",
            axum::routing::post(move || async move {
                ndjson(
                    vec![r#"{"chunk":"x"}"#, r#"{"error":"out of memory"}"#],
                    None,
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_backend_relays_a_streaming_model_server_line_by_line() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let base = streaming_model_server(gate.clone()).await;
    let backend = Arc::new(Http::new(&format!("{base}/stream")).expect("url"));
    let (sink, mut pieces) = tokio::sync::mpsc::channel(8);
    let running = {
        let backend = backend.clone();
        tokio::spawn(async move { backend.answer_stream("gen", b"prompt", sink).await })
    };
    // The first piece arrives while the server still holds back the rest.
    let first = tokio::time::timeout(Duration::from_secs(10), pieces.recv())
        .await
        .expect("in time")
        .expect("a piece");
    assert_eq!(first, b"tokens ");
    gate.notify_one();
    let mut rest = Vec::new();
    while let Some(piece) = pieces.recv().await {
        rest.push(String::from_utf8(piece).expect("utf-8"));
    }
    assert_eq!(rest, ["as they ", "come"]);
    running.await.expect("joined").expect("streamed");

    // A server that answers plain JSON is relayed whole.
    let plain = Http::new(&format!("{base}/plain")).expect("url");
    let (sink, mut pieces) = tokio::sync::mpsc::channel(8);
    plain
        .answer_stream("gen", b"prompt", sink)
        .await
        .expect("answered");
    assert_eq!(pieces.recv().await.as_deref(), Some(&b"whole"[..]));
    // An error line fails the answer.
    let broken = Http::new(&format!("{base}/broken")).expect("url");
    let (sink, _pieces) = tokio::sync::mpsc::channel(8);
    let err = broken
        .answer_stream("gen", b"prompt", sink)
        .await
        .expect_err("the server failed");
    assert!(err.to_string().contains("out of memory"), "{err}");
}
