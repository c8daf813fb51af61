//! Two validators and six miners over real QUIC on 127.0.0.1: both validators' challenges rank the
//! miners by quality, and client queries routed through a validator survive the best miner dying.

use std::sync::Arc;
use std::time::Duration;

use meshmind_node::clock::now_ms;
use meshmind_node::role::miner::{AnswerFuture, Http, Miner, MinerBackend, MinerConfig, Reference};
use meshmind_node::role::reference;
use meshmind_node::role::validator::{Validator, ValidatorConfig};
use meshmind_node::scoring::Outcome;
use meshmind_p2p::{Network, NetworkConfig, NetworkEvent, NetworkHandle};
use meshmind_protocols::{Keypair, NetworkId, Signed, decode, v1};
use prost::Message;

const NET: NetworkId = NetworkId::new([5; 32]);

/// The reference tasks, answered after a delay.
struct Slow(Duration);

impl MinerBackend for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }
    fn answer<'a>(&'a self, task: &'a str, input: &'a [u8]) -> AnswerFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(self.0).await;
            Ok(reference::expected(task, input)?)
        })
    }
}

/// Always answers "0".
struct Wrong;

impl MinerBackend for Wrong {
    fn name(&self) -> &'static str {
        "wrong"
    }
    fn answer<'a>(&'a self, _task: &'a str, _input: &'a [u8]) -> AnswerFuture<'a> {
        Box::pin(async { Ok(b"0".to_vec()) })
    }
}

struct RunningMiner {
    handle: NetworkHandle,
    ads: Vec<v1::CapabilityAd>,
    key: Keypair,
}

/// A miner serving queries as a node does (streamed ones piece by piece).
fn start_miner(backend: Arc<dyn MinerBackend>) -> RunningMiner {
    start_miner_with(backend, None)
}

/// A miner whose one-frame answers pass through `tamper` on their way out.
fn start_miner_that(
    backend: Arc<dyn MinerBackend>,
    tamper: fn(v1::QueryFrame) -> v1::QueryFrame,
) -> RunningMiner {
    start_miner_with(backend, Some(tamper))
}

fn start_miner_with(
    backend: Arc<dyn MinerBackend>,
    tamper: Option<fn(v1::QueryFrame) -> v1::QueryFrame>,
) -> RunningMiner {
    let key = Keypair::generate().expect("os random");
    let config = MinerConfig::new(
        NET,
        1,
        Reference::TASKS.iter().map(|t| t.to_string()).collect(),
    );
    let miner = Arc::new(Miner::new(config, key.clone(), backend));
    let (handle, mut events) =
        Network::spawn(NetworkConfig::local("market"), &key).expect("network starts");
    let query_addr = handle.query_addr().expect("query plane").to_string();
    let ads = miner.capability_ads(now_ms(), 600_000, &[], &query_addr);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetworkEvent::InboundQuery(query) = event {
                let miner = miner.clone();
                tokio::spawn(async move {
                    let Some(tamper) = tamper else {
                        return miner.serve(query).await;
                    };
                    let frame = tamper(miner.answer(query.peer, &query.payload).await);
                    let _ = query.responder.respond(frame.encode_to_vec()).await;
                });
            }
        }
    });
    RunningMiner { handle, ads, key }
}

/// A tiny model server on 127.0.0.1 answering `{"task","input"}` with `{"output"}` after 50 ms.
async fn model_server() -> String {
    async fn infer(
        axum::Json(body): axum::Json<serde_json::Value>,
    ) -> axum::Json<serde_json::Value> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let task = body["task"].as_str().unwrap_or_default();
        let input = body["input"].as_str().unwrap_or_default();
        let output = reference::expected(task, input.as_bytes()).unwrap_or_default();
        axum::Json(serde_json::json!({ "output": String::from_utf8_lossy(&output) }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route("/infer", axum::routing::post(infer));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/infer")
}

struct RunningValidator {
    validator: Arc<Validator>,
    net: NetworkHandle,
}

/// A validator that knows every miner's ads (in the order given) and routes client queries.
fn start_validator(miners: &[&RunningMiner]) -> (RunningValidator, Vec<u32>) {
    let key = Keypair::generate().expect("os random");
    let (net, mut events) =
        Network::spawn(NetworkConfig::local("market"), &key).expect("network starts");
    let mut config = ValidatorConfig::new(NET, 1);
    config.hedge_after = Duration::from_millis(100);
    config.challenge_deadline = Duration::from_secs(1);
    let validator = Arc::new(Validator::new(config, &key, net.clone()));
    let mut uids = Vec::new();
    for miner in miners {
        let mut uid = None;
        for ad in &miner.ads {
            uid = Some(validator.on_ad(ad, now_ms()).expect("valid ad"));
        }
        uids.push(uid.expect("two ads"));
    }
    let router = validator.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetworkEvent::InboundQuery(query) = event {
                let router = router.clone();
                tokio::spawn(async move { router.serve(query, now_ms()).await });
            }
        }
    });
    (RunningValidator { validator, net }, uids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_rank_miners_and_routing_fails_over() {
    let model_url = model_server().await;
    let http = start_miner(Arc::new(Http::new(&model_url).expect("url")));
    let fast = start_miner(Arc::new(Reference));
    let fast2 = start_miner(Arc::new(Reference));
    let slow = start_miner(Arc::new(Slow(Duration::from_millis(400))));
    let wrong = start_miner(Arc::new(Wrong));
    let offline = start_miner(Arc::new(Reference));
    let miners = [&fast, &fast2, &slow, &wrong, &offline, &http];
    let (a, a_uids) = start_validator(&miners);
    let (b, b_uids) = start_validator(&miners);

    // One challenge round each, then the offline miner goes away; more rounds follow.
    let round = || async {
        let now = now_ms();
        tokio::join!(
            a.validator.challenge_all(now),
            b.validator.challenge_all(now)
        );
    };
    round().await;
    offline.handle.shutdown().await;
    for _ in 0..8 {
        round().await;
    }
    for (name, v, uids) in [("A", &a, &a_uids), ("B", &b, &b_uids)] {
        let [
            fast_uid,
            fast2_uid,
            slow_uid,
            wrong_uid,
            offline_uid,
            http_uid,
        ] = uids[..]
        else {
            panic!("six miners")
        };
        let graph = v.validator.metagraph();
        let score = |uid| {
            v.validator
                .score(&graph.get(uid).expect("a known miner").key)
        };
        let best = score(fast_uid).max(score(fast2_uid));
        for honest in [fast_uid, fast2_uid] {
            assert!(
                score(honest) > score(slow_uid) && score(honest) > score(http_uid),
                "validator {name}: fast {} slow {} http {}",
                score(honest),
                score(slow_uid),
                score(http_uid)
            );
        }
        assert!(score(slow_uid) > score(wrong_uid), "validator {name}");
        assert!(
            score(http_uid) > score(wrong_uid),
            "validator {name}: the HTTP-served model answers correctly"
        );
        assert_eq!(score(wrong_uid), 0.0, "validator {name}");
        assert!(
            score(offline_uid) < 0.05 * best,
            "validator {name}: offline decays to {}",
            score(offline_uid)
        );
        let weights = v.validator.weights();
        let weight = |uid| weights.iter().find(|(u, _)| *u == uid).map_or(0, |w| w.1);
        assert_eq!(
            weight(fast_uid).max(weight(fast2_uid)),
            u16::MAX,
            "validator {name}"
        );
        assert_eq!(weight(wrong_uid), 0, "validator {name}");
        assert!(weight(offline_uid) < u16::MAX / 20, "validator {name}");
        assert!(
            weight(slow_uid) > 0 && weight(http_uid) > 0,
            "validator {name}"
        );
    }
    let validator_net = a.net.clone();

    // A client asks the validator.
    let client_key = Keypair::generate().expect("os random");
    let (client, _events) =
        Network::spawn(NetworkConfig::local("market"), &client_key).expect("network starts");
    client
        .add_query_addr(
            validator_net.local_peer_id(),
            validator_net.query_addr().expect("query plane"),
        )
        .expect("query plane");
    let ask = |input: &str| {
        let query = v1::Query {
            content_type: String::new(),
            id: vec![9; 16],
            network_id: NET.to_vec(),
            subnet: 1,
            task: "arith".into(),
            payload: input.as_bytes().to_vec(),
            deadline_ms: 3_000,
            want_all: false,
            stream: false,
        };
        v1::QueryFrame {
            body: Some(v1::query_frame::Body::Query(query)),
        }
        .encode_to_vec()
    };
    let answer = |bytes: Vec<u8>| -> v1::QueryResponse {
        match decode::<v1::QueryFrame>(&bytes).expect("frame").body {
            Some(v1::query_frame::Body::Response(r)) => r,
            other => panic!("expected a response, got {other:?}"),
        }
    };
    let validator_id = validator_net.local_peer_id();
    let first = answer(
        client
            .query(validator_id, &ask("6 * 7"), Duration::from_secs(4))
            .await
            .expect("routed"),
    );
    assert_eq!(first.output, b"42");
    // The first miner tried is drawn among the best three by score (and room): an honest one.
    let honest = [&fast, &fast2, &slow, &http].map(|m| m.key.public());
    assert!(
        first.signer().is_ok_and(|k| honest.contains(&k)),
        "an honest miner answers"
    );

    // Both fast miners die; the query still succeeds within its deadline through the next one.
    fast.handle.shutdown().await;
    fast2.handle.shutdown().await;
    let second = answer(
        client
            .query(validator_id, &ask("1 + 1"), Duration::from_secs(4))
            .await
            .expect("routed"),
    );
    assert_eq!(second.output, b"2");
    let signer = second.signer().ok();
    assert!(
        signer == Some(http.key.public()) || signer == Some(slow.key.public()),
        "the next live honest miner answers"
    );
    assert!(second.verify_signature().is_ok());

    for handle in [
        &client,
        &validator_net,
        &b.net,
        &slow.handle,
        &wrong.handle,
        &http.handle,
    ] {
        handle.shutdown().await;
    }
}

/// Query flooding through a validator: client queries beyond the share a validator routes to a
/// miner wait for room within their deadline, then are refused as overloaded at the validator
/// (not a 502 that blames the miner), and the validator's own challenges still find room at the
/// miner and score it correct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_flood_through_a_validator_leaves_room_for_its_challenges() {
    let miner = start_miner(Arc::new(Reference));
    let (v, _) = start_validator(&[&miner]);
    let ask = || v1::Query::new(NET, 1, "sort", b"b a".to_vec(), 2_000);
    // Until the miner is reachable.
    let started = std::time::Instant::now();
    loop {
        let frame = v.validator.route(&ask(), now_ms()).await;
        if matches!(frame.body, Some(v1::query_frame::Body::Response(_))) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{frame:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 400 at once with half a second each: the validator routes at most 40 a second (bursts of
    // 80) to a miner whose capacity it does not know a share of.
    let short = || v1::Query::new(NET, 1, "sort", b"b a".to_vec(), 500);
    let started = std::time::Instant::now();
    let flood = (0..400).map(|_| {
        let (validator, query) = (v.validator.clone(), short());
        tokio::spawn(async move { validator.route(&query, now_ms()).await })
    });
    let (mut answered, mut overloaded) = (0, 0);
    for routed in futures::future::join_all(flood).await {
        match routed.expect("routed").body {
            Some(v1::query_frame::Body::Response(_)) => answered += 1,
            Some(v1::query_frame::Body::Error(e)) if e.code == v1::ErrorCode::Overloaded as i32 => {
                overloaded += 1
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let waited = started.elapsed();
    assert!(overloaded > 0, "{answered} answered, none refused");
    // The burst, and more while the queries waited for room.
    assert!(answered > 80, "{answered} answered");
    assert!(
        waited >= Duration::from_millis(400),
        "refused after {waited:?}"
    );
    let outcomes = v.validator.challenge_all(now_ms()).await;
    assert!(!outcomes.is_empty());
    for (uid, outcome) in &outcomes {
        assert!(
            matches!(outcome, Outcome::Correct { .. }),
            "uid {uid}: {outcome:?} after the flood"
        );
    }
    v.net.shutdown().await;
    miner.handle.shutdown().await;
}

/// Routed answers are checked against the miner's key and the query, and one in
/// `SIGNATURE_SAMPLE` has its signature verified too (the connection already proves the miner's
/// key): a miner that garbles its signatures is caught within a few dozen answers, and the answer
/// caught is not passed on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_that_forges_its_signatures_is_caught_on_routed_answers() {
    fn garble(mut frame: v1::QueryFrame) -> v1::QueryFrame {
        if let Some(v1::query_frame::Body::Response(response)) = &mut frame.body
            && let Some(byte) = response.signature.first_mut()
        {
            *byte ^= 0xff;
        }
        frame
    }
    let forger = start_miner_that(Arc::new(Reference), garble);
    let (v, _) = start_validator(&[&forger]);
    let query = || v1::Query::new(NET, 1, "sort", b"b a".to_vec(), 2_000);
    let (mut passed, mut caught) = (0, 0);
    let started = std::time::Instant::now();
    while caught == 0 || passed == 0 {
        match v.validator.route(&query(), now_ms()).await.body {
            Some(v1::query_frame::Body::Response(_)) => passed += 1,
            Some(v1::query_frame::Body::Error(e)) if e.message.contains("bad signature") => {
                caught += 1
            }
            // Until the miner is reachable.
            Some(v1::query_frame::Body::Error(e))
                if e.message.contains("no answer")
                    || e.code == v1::ErrorCode::DeadlineExceeded as i32 => {}
            other => panic!("unexpected answer {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(30) && passed + caught < 500,
            "{passed} passed, {caught} caught"
        );
    }
    v.net.shutdown().await;
    forger.handle.shutdown().await;
}

/// Routing spreads load: with four equally good miners and 64 concurrent clients, the first miner
/// tried is drawn among the best in proportion to score and room, so no miner takes more than 40 %
/// of the queries (always asking the best one first gave it nearly all of them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_queries_spread_over_equally_good_miners() {
    let miners: Vec<RunningMiner> = (0..4).map(|_| start_miner(Arc::new(Reference))).collect();
    let (v, _) = start_validator(&miners.iter().collect::<Vec<_>>());
    // Until every miner is reachable and scored.
    let started = std::time::Instant::now();
    loop {
        let outcomes = v.validator.challenge_all(now_ms()).await;
        if outcomes
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Correct { .. }))
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{outcomes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let clients = (0..64).map(|_| {
        let validator = v.validator.clone();
        tokio::spawn(async move {
            let mut answered_by = Vec::new();
            for _ in 0..4 {
                let query = v1::Query::new(NET, 1, "sort", b"b a".to_vec(), 2_000);
                match validator.route(&query, now_ms()).await.body {
                    Some(v1::query_frame::Body::Response(r)) => answered_by.push(r.miner),
                    other => panic!("unexpected answer {other:?}"),
                }
            }
            answered_by
        })
    });
    let mut shares = std::collections::HashMap::<Vec<u8>, usize>::new();
    for client in futures::future::join_all(clients).await {
        for miner in client.expect("a client") {
            *shares.entry(miner).or_default() += 1;
        }
    }
    let most = shares.values().copied().max().unwrap_or(0);
    assert!(shares.len() >= 3, "{shares:?}");
    assert!(most * 100 <= 256 * 40, "{most} of 256 to one miner");
    v.net.shutdown().await;
    for miner in miners {
        miner.handle.shutdown().await;
    }
}

/// Answers `sort` right only when every word is one the reference challenges draw from, so it
/// passes every challenge and cheats everyone else.
struct ChallengeSpotter;

impl MinerBackend for ChallengeSpotter {
    fn name(&self) -> &'static str {
        "spotter"
    }
    fn answer<'a>(&'a self, task: &'a str, input: &'a [u8]) -> AnswerFuture<'a> {
        Box::pin(async move {
            const CHALLENGE_WORDS: [&str; 12] = [
                "apple", "birch", "cedar", "delta", "ember", "fjord", "grove", "heron", "iris",
                "juniper", "kestrel", "lichen",
            ];
            let text = String::from_utf8_lossy(input);
            let spotted = text
                .split_whitespace()
                .all(|w| CHALLENGE_WORDS.contains(&w));
            if task == "sort" && !spotted {
                return Ok(b"cheap".to_vec());
            }
            Ok(reference::expected(task, input)?)
        })
    }
}

/// A miner that answers challenges well and clients badly is caught: a sample of routed answers
/// is judged by the task's scorer, as challenges are, and its score falls below an honest miner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_that_cheats_clients_but_not_challenges_loses_its_score() {
    cheat_is_caught(false).await;
}

/// The same with streamed answers, which the validator relays piece by piece.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_that_cheats_streamed_clients_loses_its_score() {
    cheat_is_caught(true).await;
}

async fn cheat_is_caught(streamed: bool) {
    let honest = start_miner(Arc::new(Reference));
    let spotter = start_miner(Arc::new(ChallengeSpotter));
    let (v, _) = start_validator(&[&honest, &spotter]);
    let started = std::time::Instant::now();
    loop {
        // Clients sort their own words; challenges keep coming in between. A stream over the
        // validator's routed share fails at once (it does not wait for room), so streamed rounds
        // keep under the share and are paced as the validator's own rounds would be.
        let queries = if streamed { 48 } else { 256 };
        for i in 0..queries {
            let input = format!("zebra{i} yak{i} walrus{i}");
            let query = v1::Query {
                stream: streamed,
                ..v1::Query::new(NET, 1, "sort", input.into_bytes(), 2_000)
            };
            if streamed {
                let (out, mut frames) = tokio::sync::mpsc::channel(16);
                let relay = async { while frames.recv().await.is_some() {} };
                tokio::join!(v.validator.route_stream(&query, now_ms(), out), relay);
            } else {
                let _ = v.validator.route(&query, now_ms()).await;
            }
        }
        if streamed {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        v.validator.challenge_all(now_ms()).await;
        let (h, s) = (
            v.validator.score(&honest.key.public()),
            v.validator.score(&spotter.key.public()),
        );
        // Each round its right answers to challenges lift it again and one judged routed answer
        // pulls it down: it settles near 0.6-0.75 of the honest miner's score (without the
        // judging, the two stay level).
        if h > 0.5 && s < h * 0.85 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the cheat was not caught (streamed: {streamed}): honest {h:.3}, spotter {s:.3}"
        );
    }
    v.net.shutdown().await;
    honest.handle.shutdown().await;
    spotter.handle.shutdown().await;
}
