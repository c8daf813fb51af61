//! Routed versus direct query latency and throughput, printed as a table.
//!
//! `cargo bench -p meshmind-node --bench routing`: a client, a validator and an echo miner in one
//! process over loopback QUIC, 256-byte payloads. `direct` is client -> miner; `routed` is
//! client -> validator -> miner -> validator -> client. Both in the same run; then the same two
//! paths for a streamed answer (time to the first chunk and to the signed trailer).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use meshmind_node::clock::now_ms;
use meshmind_node::role::miner::{Echo, Miner, MinerConfig};
use meshmind_node::role::validator::{Validator, ValidatorConfig};
use meshmind_p2p::{Network, NetworkConfig, NetworkEvent, NetworkHandle, PeerId};
use meshmind_protocols::{Keypair, NetworkId, v1};
use prost::Message;

const NET: NetworkId = NetworkId::new([2; 32]);
const IN_FLIGHT: usize = 64;

fn frame(payload: &[u8]) -> Vec<u8> {
    query_frame(payload, false)
}

fn query_frame(payload: &[u8], stream: bool) -> Vec<u8> {
    v1::QueryFrame {
        body: Some(v1::query_frame::Body::Query(v1::Query {
            content_type: String::new(),
            id: vec![1; 16],
            network_id: NET.to_vec(),
            subnet: 1,
            task: "echo".into(),
            payload: payload.to_vec(),
            deadline_ms: 10_000,
            want_all: false,
            stream,
        })),
    }
    .encode_to_vec()
}

async fn measure(
    client: &NetworkHandle,
    target: PeerId,
    request: &[u8],
    sequential: usize,
    total: usize,
) -> (Duration, Duration, f64) {
    let deadline = Duration::from_secs(10);
    for _ in 0..200 {
        client
            .query(target, request, deadline)
            .await
            .expect("warm-up");
    }
    let mut latencies = Vec::with_capacity(sequential);
    for _ in 0..sequential {
        let start = Instant::now();
        client
            .query(target, request, deadline)
            .await
            .expect("query");
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let start = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut issued = 0;
    while issued < IN_FLIGHT.min(total) {
        pending.push(client.query(target, request, deadline));
        issued += 1;
    }
    while let Some(result) = pending.next().await {
        result.expect("query");
        if issued < total {
            pending.push(client.query(target, request, deadline));
            issued += 1;
        }
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    (p(0.5), p(0.99), rate)
}

/// p50 time to the first frame and to the end of `n` streamed queries, one at a time.
async fn measure_stream(
    client: &NetworkHandle,
    target: PeerId,
    request: &[u8],
    n: usize,
) -> (Duration, Duration, usize) {
    let (mut first, mut full) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut frames = 0;
    for i in 0..n + 100 {
        let start = Instant::now();
        let mut stream = client
            .query_stream(target, request, Duration::from_secs(10))
            .await
            .expect("stream");
        let mut count = 0;
        while let Some(frame) = stream.next().await {
            frame.expect("frame");
            if count == 0 && i >= 100 {
                first.push(start.elapsed());
            }
            count += 1;
        }
        if i >= 100 {
            full.push(start.elapsed());
        }
        frames = count;
    }
    first.sort();
    full.sort();
    (first[n / 2], full[n / 2], frames)
}

fn main() -> anyhow::Result<()> {
    let quick = std::env::var_os("MESHMIND_BENCH_QUICK").is_some();
    let (sequential, total) = if quick { (300, 3_000) } else { (3_000, 30_000) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let miner_key = Keypair::generate()?;
        let (miner_net, mut miner_events) =
            Network::spawn(NetworkConfig::local("bench"), &miner_key)?;
        let miner = Arc::new(Miner::new(
            {
                let mut c = MinerConfig::new(NET, 1, vec!["echo".into()]);
                c.quotas.others = 1_000_000;
                c.max_concurrency = 1024;
                c
            },
            miner_key,
            Arc::new(Echo),
        ));
        let ads = miner.capability_ads(
            now_ms(),
            3_600_000,
            &[],
            &miner_net.query_addr().expect("qp").to_string(),
        );
        tokio::spawn(async move {
            while let Some(event) = miner_events.recv().await {
                if let NetworkEvent::InboundQuery(q) = event {
                    let m = miner.clone();
                    tokio::spawn(async move { m.serve(q).await });
                }
            }
        });

        let validator_key = Keypair::generate()?;
        let (validator_net, mut validator_events) =
            Network::spawn(NetworkConfig::local("bench"), &validator_key)?;
        let validator = Arc::new(Validator::new(
            ValidatorConfig::new(NET, 1),
            &validator_key,
            validator_net.clone(),
        ));
        for ad in &ads {
            validator.on_ad(ad, now_ms())?;
        }
        let router = validator.clone();
        tokio::spawn(async move {
            while let Some(event) = validator_events.recv().await {
                if let NetworkEvent::InboundQuery(q) = event {
                    let r = router.clone();
                    tokio::spawn(async move { r.serve(q, now_ms()).await });
                }
            }
        });

        let (client, _events) =
            Network::spawn(NetworkConfig::local("bench"), &Keypair::generate()?)?;
        client.add_query_addr(
            miner_net.local_peer_id(),
            miner_net.query_addr().expect("qp"),
        )?;
        client.add_query_addr(
            validator_net.local_peer_id(),
            validator_net.query_addr().expect("qp"),
        )?;
        let request = frame(&[0xa5; 256]);

        let direct = measure(
            &client,
            miner_net.local_peer_id(),
            &request,
            sequential,
            total,
        )
        .await;
        let routed = measure(
            &client,
            validator_net.local_peer_id(),
            &request,
            sequential,
            total,
        )
        .await;
        // 32 words of 8 bytes: the echo miner streams one chunk per word, then its trailer.
        let words: Vec<u8> = (0..32).flat_map(|_| *b"abcdefg ").collect();
        let streamed = query_frame(&words, true);
        let n = sequential / 3;
        let direct_stream =
            measure_stream(&client, miner_net.local_peer_id(), &streamed, n).await;
        let routed_stream =
            measure_stream(&client, validator_net.local_peer_id(), &streamed, n).await;

        println!("| path | p50 | p99 | p50 / direct | req/s ({IN_FLIGHT} in flight) |");
        println!("|---|---|---|---|---|");
        for (name, (p50, p99, rate)) in [
            ("direct client -> miner", direct),
            ("routed via validator", routed),
        ] {
            println!(
                "| {name} | {:.0} us | {:.0} us | {:.2}x | {:.0} |",
                p50.as_secs_f64() * 1e6,
                p99.as_secs_f64() * 1e6,
                p50.as_secs_f64() / direct.0.as_secs_f64(),
                rate
            );
        }
        println!();
        println!("| streamed answer (256 B in 32 chunks + trailer) | first chunk p50 | whole answer p50 | whole / direct | frames |");
        println!("|---|---|---|---|---|");
        for (name, (first, full, frames)) in [
            ("direct client -> miner", direct_stream),
            ("routed via validator", routed_stream),
        ] {
            println!(
                "| {name} | {:.0} us | {:.0} us | {:.2}x | {frames} |",
                first.as_secs_f64() * 1e6,
                full.as_secs_f64() * 1e6,
                full.as_secs_f64() / direct_stream.1.as_secs_f64(),
            );
        }
        for handle in [&client, &validator_net, &miner_net] {
            handle.shutdown().await;
        }
        Ok(())
    })
}
