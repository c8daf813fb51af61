//! Query-plane and gossip benchmarks, printed as a table.
//!
//! Rows, all in one run on loopback with a 256-byte payload:
//! - `bare quinn echo`: a quinn client and server in this process, one stream per request, TLS from
//!   libp2p's certificate scheme (the floor any QUIC query protocol can reach here);
//! - `NetworkHandle::query`: the public query-plane API, answered by an application task;
//! - `libp2p request-response`: the sync plane (`NetworkHandle::request`) over libp2p QUIC.
//!
//! Then gossip delivery latency across 50 nodes in one process.
//!
//! `cargo bench -p meshmind-p2p --bench network` (set `MESHMIND_BENCH_QUICK=1` for a short run).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use meshmind_p2p::{Network, NetworkConfig, NetworkEvent, NetworkHandle, PeerId};
use meshmind_protocols::Keypair;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};

const PAYLOAD: usize = 256;
const IN_FLIGHT: usize = 64;

struct Sizes {
    sequential: usize,
    throughput: usize,
    gossip_messages: usize,
}

fn sizes() -> Sizes {
    if std::env::var_os("MESHMIND_BENCH_QUICK").is_some() {
        Sizes {
            sequential: 500,
            throughput: 5_000,
            gossip_messages: 20,
        }
    } else {
        Sizes {
            sequential: 5_000,
            throughput: 50_000,
            gossip_messages: 100,
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

struct Row {
    name: &'static str,
    p50: Duration,
    p99: Duration,
    per_sec: f64,
}

/// A bare quinn echo server and a client connected to it.
async fn bare_quinn() -> anyhow::Result<(quinn::Endpoint, quinn::Connection)> {
    let server_key = libp2p::identity::Keypair::generate_ed25519();
    let client_key = libp2p::identity::Keypair::generate_ed25519();
    let server_tls = libp2p_tls::make_server_config(&server_key)?;
    let server_config =
        quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(server_tls)?));
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(256u32.into());
    let mut server_config = server_config;
    server_config.transport_config(Arc::new(transport));
    let server = quinn::Endpoint::server(server_config, "127.0.0.1:0".parse()?)?;
    let addr = server.local_addr()?;
    let accept = server.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accept.accept().await {
            tokio::spawn(async move {
                let Ok(connection) = incoming.await else {
                    return;
                };
                while let Ok((mut send, mut recv)) = connection.accept_bi().await {
                    tokio::spawn(async move {
                        if let Ok(data) = recv.read_to_end(1 << 20).await {
                            let _ = send.write_all(&data).await;
                            let _ = send.finish();
                        }
                    });
                }
            });
        }
    });
    let client_tls =
        libp2p_tls::make_client_config(&client_key, Some(server_key.public().to_peer_id()))?;
    let client_config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(client_tls)?));
    let client = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    let connection = client.connect_with(client_config, addr, "l")?.await?;
    Ok((client, connection))
}

async fn bare_echo(connection: &quinn::Connection, payload: &[u8]) -> anyhow::Result<Vec<u8>> {
    let (mut send, mut recv) = connection.open_bi().await?;
    send.write_all(payload).await?;
    send.finish()?;
    Ok(recv.read_to_end(1 << 20).await?)
}

/// Runs `op` `count` times one after another, then `count` times with `IN_FLIGHT` at once.
async fn measure<F, Fut>(name: &'static str, sizes: &Sizes, op: F) -> Row
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    for _ in 0..200 {
        op().await.expect("warm-up");
    }
    let mut latencies = Vec::with_capacity(sizes.sequential);
    for _ in 0..sizes.sequential {
        let start = Instant::now();
        op().await.expect("sequential op");
        latencies.push(start.elapsed());
    }
    latencies.sort();

    let start = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut issued = 0;
    while issued < IN_FLIGHT.min(sizes.throughput) {
        pending.push(op());
        issued += 1;
    }
    while let Some(result) = pending.next().await {
        result.expect("concurrent op");
        if issued < sizes.throughput {
            pending.push(op());
            issued += 1;
        }
    }
    let per_sec = sizes.throughput as f64 / start.elapsed().as_secs_f64();
    Row {
        name,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        per_sec,
    }
}

/// Starts a node that echoes queries and sync requests.
fn echo_node(network: &str) -> anyhow::Result<NetworkHandle> {
    let (handle, mut events) =
        Network::spawn(NetworkConfig::local(network), &Keypair::generate()?)?;
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                NetworkEvent::InboundQuery(query) => {
                    tokio::spawn(async move {
                        let _ = query.responder.respond(query.payload).await;
                    });
                }
                NetworkEvent::InboundRequest(request) => request.responder.respond(request.data),
                _ => {}
            }
        }
    });
    Ok(handle)
}

async fn first_addr(handle: &NetworkHandle, kind: &str) -> anyhow::Result<libp2p::Multiaddr> {
    for _ in 0..100 {
        if let Some(addr) = handle
            .listen_addrs()
            .await?
            .into_iter()
            .find(|a| a.to_string().contains(kind))
        {
            return addr
                .with_p2p(handle.local_peer_id())
                .map_err(|_| anyhow::anyhow!("p2p"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("no {kind} listen address")
}

async fn query_rows(sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let payload = vec![0xa5u8; PAYLOAD];
    let deadline = Duration::from_secs(10);

    let (_client_endpoint, connection) = bare_quinn().await?;
    let bare = measure("bare quinn echo", sizes, || async {
        let answer = bare_echo(&connection, &payload).await?;
        anyhow::ensure!(answer.len() == PAYLOAD);
        Ok(())
    })
    .await;

    let server = echo_node("bench")?;
    let client = echo_node("bench")?;
    let server_id: PeerId = server.local_peer_id();
    let server_query = server
        .query_addr()
        .ok_or_else(|| anyhow::anyhow!("no query plane"))?;
    client.add_query_addr(server_id, server_query)?;
    let ours = measure("NetworkHandle::query", sizes, || async {
        let answer = client.query(server_id, &payload, deadline).await?;
        anyhow::ensure!(answer.len() == PAYLOAD);
        Ok(())
    })
    .await;

    client.dial(first_addr(&server, "quic-v1").await?).await?;
    for _ in 0..100 {
        if client
            .request(server_id, b"ping".to_vec(), deadline)
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let libp2p_rr = measure("libp2p request-response", sizes, || async {
        let answer = client.request(server_id, payload.clone(), deadline).await?;
        anyhow::ensure!(answer.len() == PAYLOAD);
        Ok(())
    })
    .await;
    client.shutdown().await;
    server.shutdown().await;
    Ok(vec![bare, ours, libp2p_rr])
}

async fn gossip_latency(sizes: &Sizes) -> anyhow::Result<(Duration, Duration, usize)> {
    let n = 50;
    let mut config = NetworkConfig::local("gossip-bench");
    config.query_listen = None;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u32, Instant)>();
    let mut handles = Vec::new();
    let mut boot_addr = None;
    for i in 0..n {
        let mut config = config.clone();
        if let Some(addr) = &boot_addr {
            config.bootnodes = vec![libp2p::Multiaddr::clone(addr)];
        }
        let (handle, mut events) = Network::spawn(config, &Keypair::generate()?)?;
        if i == 0 {
            boot_addr = Some(first_addr(&handle, "quic-v1").await?);
        }
        handle.subscribe("bench").await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let NetworkEvent::Gossip(message) = event {
                    let now = Instant::now();
                    if let Ok(bytes) =
                        <[u8; 4]>::try_from(&message.data[..4.min(message.data.len())])
                    {
                        let _ = tx.send((i, u32::from_be_bytes(bytes), now));
                    }
                    message.validation.accept();
                }
            }
        });
        handles.push(handle);
    }
    // Let connections, subscriptions and meshes settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut latencies = Vec::new();
    let mut incomplete = 0;
    for seq in 0..sizes.gossip_messages as u32 {
        let publisher = &handles[(seq as usize * 7) % n];
        let mut data = seq.to_be_bytes().to_vec();
        data.resize(PAYLOAD, 0);
        let start = Instant::now();
        publisher.publish("bench", data).await?;
        let mut got = std::collections::HashSet::new();
        let deadline = start + Duration::from_secs(5);
        let mut last = start;
        while got.len() < n - 1 {
            match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                Ok(Some((node, s, at))) if s == seq => {
                    if got.insert(node) {
                        last = at;
                    }
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        if got.len() == n - 1 {
            latencies.push(last - start);
        } else {
            incomplete += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for handle in &handles {
        handle.shutdown().await;
    }
    latencies.sort();
    anyhow::ensure!(!latencies.is_empty(), "no message reached every node");
    Ok((
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        incomplete,
    ))
}

fn us(d: Duration) -> String {
    format!("{:.0} us", d.as_secs_f64() * 1e6)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; there are no other arguments.
    let sizes = sizes();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let rows = query_rows(&sizes).await?;
        let bare = &rows[0];
        println!("\nquery plane, {PAYLOAD}-byte echo on loopback ({} sequential, {} with {IN_FLIGHT} in flight)", sizes.sequential, sizes.throughput);
        println!("| path | p50 | p99 | p50 / bare | req/s ({IN_FLIGHT} in flight) | of bare |");
        println!("|---|---|---|---|---|---|");
        for row in &rows {
            println!(
                "| {} | {} | {} | {:.2}x | {:.0} | {:.0} % |",
                row.name,
                us(row.p50),
                us(row.p99),
                row.p50.as_secs_f64() / bare.p50.as_secs_f64(),
                row.per_sec,
                100.0 * row.per_sec / bare.per_sec
            );
        }
        let (p50, p99, incomplete) = gossip_latency(&sizes).await?;
        println!("\ngossip, 50 nodes in one process over loopback QUIC, {PAYLOAD}-byte messages, publish -> delivered at all 49 others ({} messages)", sizes.gossip_messages);
        println!("| p50 | p99 | messages not delivered to all within 5 s |");
        println!("|---|---|---|");
        println!("| {} | {} | {incomplete} |", us(p50), us(p99));
        Ok(())
    })
}
