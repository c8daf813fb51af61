//! Streamed answers routed through a validator over real QUIC on 127.0.0.1: chunks reach the client
//! while the miner is still producing, a miner that never starts is hedged around, and a miner whose
//! signed trailer does not match its data is caught by the validator.

use std::sync::Arc;
use std::time::Duration;

use meshmind_node::clock::now_ms;
use meshmind_node::role::miner::{
    AnswerFuture, ChunkSink, Miner, MinerBackend, MinerConfig, StreamFuture,
};
use meshmind_node::role::stream::{StreamCheck, data_chunk, last_chunk};
use meshmind_node::role::validator::{Validator, ValidatorConfig};
use meshmind_p2p::{Network, NetworkConfig, NetworkEvent, NetworkHandle, QueryStream};
use meshmind_protocols::{Keypair, NetworkId, Signed, decode, hash, v1};
use prost::Message;
use tokio::sync::Notify;

const NET: NetworkId = NetworkId::new([9; 32]);
const TASK: &str = "generate";

/// Streams "hello ", then waits for the gate, then "streaming " and "world".
struct Gated(Arc<Notify>);

impl MinerBackend for Gated {
    fn name(&self) -> &'static str {
        "gated"
    }
    fn answer<'a>(&'a self, _task: &'a str, _input: &'a [u8]) -> AnswerFuture<'a> {
        Box::pin(async { Ok(b"hello streaming world".to_vec()) })
    }
    fn answer_stream<'a>(
        &'a self,
        _task: &'a str,
        _input: &'a [u8],
        sink: ChunkSink,
    ) -> StreamFuture<'a> {
        Box::pin(async move {
            let _ = sink.send(b"hello ".to_vec()).await;
            self.0.notified().await;
            let _ = sink.send(b"streaming ".to_vec()).await;
            let _ = sink.send(b"world".to_vec()).await;
            Ok(())
        })
    }
}

/// Never starts answering within any deadline used here.
struct Stuck;

impl MinerBackend for Stuck {
    fn name(&self) -> &'static str {
        "stuck"
    }
    fn answer<'a>(&'a self, _task: &'a str, _input: &'a [u8]) -> AnswerFuture<'a> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(Vec::new())
        })
    }
}

struct Node {
    net: NetworkHandle,
    key: Keypair,
    ads: Vec<v1::CapabilityAd>,
}

/// A miner node serving `TASK` with `backend`.
fn miner(backend: Arc<dyn MinerBackend>) -> Node {
    let key = Keypair::generate().expect("os random");
    let miner = Arc::new(Miner::new(
        MinerConfig::new(NET, 1, vec![TASK.into()]),
        key.clone(),
        backend,
    ));
    let (net, mut events) =
        Network::spawn(NetworkConfig::local("stream"), &key).expect("network starts");
    let addr = net.query_addr().expect("query plane").to_string();
    let ads = miner.capability_ads(now_ms(), 600_000, &[], &addr);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetworkEvent::InboundQuery(query) = event {
                let miner = miner.clone();
                tokio::spawn(async move { miner.serve(query).await });
            }
        }
    });
    Node { net, key, ads }
}

/// A miner that streams "honest data" but signs a trailer over other data (a lying miner; the
/// real miner cannot be made to do this, so the frames are written by hand).
fn lying_miner() -> Node {
    let key = Keypair::generate().expect("os random");
    let honest = Miner::new(
        MinerConfig::new(NET, 1, vec![TASK.into()]),
        key.clone(),
        Arc::new(Stuck),
    );
    let (net, mut events) =
        Network::spawn(NetworkConfig::local("stream"), &key).expect("network starts");
    let addr = net.query_addr().expect("query plane").to_string();
    let ads = honest.capability_ads(now_ms(), 600_000, &[], &addr);
    let signer = key.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let NetworkEvent::InboundQuery(inbound) = event else {
                continue;
            };
            let Ok(v1::QueryFrame {
                body: Some(v1::query_frame::Body::Query(query)),
            }) = decode::<v1::QueryFrame>(&inbound.payload)
            else {
                continue;
            };
            let mut responder = inbound.responder;
            let _ = responder
                .send(data_chunk(&query.id, 0, b"honest data".to_vec()).encode_to_vec())
                .await;
            let trailer = v1::QueryResponse {
                content_type: String::new(),
                id: query.id.clone(),
                query_hash: hash(&query).to_vec(),
                output: blake3::hash(b"other data").as_bytes().to_vec(),
                elapsed_us: 1,
                miner: Vec::new(),
                error: None,
                signature: Vec::new(),
            }
            .signed(&signer);
            let _ = responder
                .respond(last_chunk(&query.id, 1, trailer).encode_to_vec())
                .await;
        }
    });
    Node { net, key, ads }
}

/// A validator knowing `miners` (UIDs in this order, so equal scores route to the first) that
/// routes inbound queries.
fn validator(miners: &[&Node]) -> Node {
    let key = Keypair::generate().expect("os random");
    let (net, mut events) =
        Network::spawn(NetworkConfig::local("stream"), &key).expect("network starts");
    let mut config = ValidatorConfig::new(NET, 1);
    config.hedge_after = Duration::from_millis(100);
    let validator = Arc::new(Validator::new(config, &key, net.clone()));
    for miner in miners {
        for ad in &miner.ads {
            validator.on_ad(ad, now_ms()).expect("valid ad");
        }
    }
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetworkEvent::InboundQuery(query) = event {
                let router = validator.clone();
                tokio::spawn(async move { router.serve(query, now_ms()).await });
            }
        }
    });
    Node {
        net,
        key,
        ads: Vec::new(),
    }
}

fn streamed_query(id: u8) -> v1::Query {
    v1::Query {
        content_type: String::new(),
        id: vec![id; 16],
        network_id: NET.to_vec(),
        subnet: 1,
        task: TASK.into(),
        payload: b"prompt".to_vec(),
        deadline_ms: 5_000,
        want_all: false,
        stream: true,
    }
}

/// A client's stream of the validator's answer to `query`.
async fn ask(validator: &Node, query: &v1::Query) -> (NetworkHandle, QueryStream) {
    let key = Keypair::generate().expect("os random");
    let (client, _events) =
        Network::spawn(NetworkConfig::local("stream"), &key).expect("network starts");
    let addr = validator.net.query_addr().expect("query plane");
    client
        .add_query_addr(validator.net.local_peer_id(), addr)
        .expect("query plane");
    let frame = v1::QueryFrame {
        body: Some(v1::query_frame::Body::Query(query.clone())),
    };
    let stream = client
        .query_stream(
            validator.net.local_peer_id(),
            &frame.encode_to_vec(),
            Duration::from_secs(6),
        )
        .await
        .expect("a stream");
    (client, stream)
}

async fn next_frame(stream: &mut QueryStream) -> v1::QueryFrame {
    let bytes = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a frame in time")
        .expect("a frame")
        .expect("not a transport error");
    decode::<v1::QueryFrame>(&bytes).expect("a canonical frame")
}

fn chunk(frame: v1::QueryFrame) -> v1::QueryChunk {
    match frame.body {
        Some(v1::query_frame::Body::Chunk(chunk)) => chunk,
        other => panic!("expected a chunk, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_reach_the_client_while_the_miner_is_still_answering() {
    let gate = Arc::new(Notify::new());
    let m = miner(Arc::new(Gated(gate.clone())));
    let v = validator(&[&m]);
    let query = streamed_query(1);
    let (client, mut stream) = ask(&v, &query).await;

    // The first piece arrives although the miner cannot produce the rest until the gate opens.
    let first = chunk(next_frame(&mut stream).await);
    assert_eq!(first.data, b"hello ");
    assert!(!first.last);
    gate.notify_one();

    // The client checks the relayed stream end to end against the miner's own signature.
    let mut check = StreamCheck::new(&query, Some(m.key.public()));
    assert!(check.chunk(&first).expect("valid").is_none());
    let mut data = first.data.clone();
    let trailer = loop {
        let next = chunk(next_frame(&mut stream).await);
        data.extend_from_slice(&next.data);
        if let Some(trailer) = check.chunk(&next).expect("a valid chunk") {
            break trailer.clone();
        }
    };
    assert_eq!(data, b"hello streaming world");
    assert_eq!(trailer.signer().ok(), Some(m.key.public()));
    assert!(stream.next().await.is_none(), "finished after the trailer");
    client.shutdown().await;
    for node in [m, v] {
        node.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_that_never_starts_is_hedged_around() {
    let stuck = miner(Arc::new(Stuck));
    let gate = Arc::new(Notify::new());
    gate.notify_one();
    let good = miner(Arc::new(Gated(gate)));
    let v = validator(&[&stuck, &good]);
    let query = streamed_query(2);
    let (client, mut stream) = ask(&v, &query).await;
    let mut check = StreamCheck::new(&query, None);
    let mut data = Vec::new();
    let trailer = loop {
        let next = chunk(next_frame(&mut stream).await);
        data.extend_from_slice(&next.data);
        if let Some(trailer) = check.chunk(&next).expect("a valid chunk") {
            break trailer.clone();
        }
    };
    assert_eq!(data, b"hello streaming world");
    assert_eq!(
        trailer.signer().ok(),
        Some(good.key.public()),
        "answered by the second miner"
    );
    client.shutdown().await;
    for node in [stuck, good, v] {
        node.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trailer_that_does_not_match_the_data_is_caught_by_the_validator() {
    let liar = lying_miner();
    let v = validator(&[&liar]);
    let query = streamed_query(3);
    let (client, mut stream) = ask(&v, &query).await;
    let first = chunk(next_frame(&mut stream).await);
    assert_eq!(first.data, b"honest data");
    // The forged trailer is not relayed; an error takes its place.
    match next_frame(&mut stream).await.body {
        Some(v1::query_frame::Body::Error(e)) => {
            assert_eq!(e.code, v1::ErrorCode::Unavailable as i32);
            assert!(e.message.contains("data hash differs"), "{}", e.message);
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(stream.next().await.is_none());
    client.shutdown().await;
    for node in [liar, v] {
        node.net.shutdown().await;
    }
}
