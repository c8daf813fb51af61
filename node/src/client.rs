//! `meshmind query`: one query to a validator, over the p2p query plane as a short-lived peer, or
//! through its HTTP API.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;

use meshmind_p2p::{Multiaddr, Network, NetworkConfig, NetworkHandle, PeerId};
use meshmind_protocols::{Keypair, NetworkId, Signed, Validate, decode, v1};
use prost::Message;

use crate::api::client::{ApiClient, ClientError};
use crate::api::types::{ApiError, QueryRequest, StreamLine};
use crate::api::view::query_answer;
use crate::role::stream::StreamCheck;

/// The validator's IP, UDP port and peer id from a `/ip4/../udp/../quic-v1/p2p/..` address.
pub fn split_query_addr(addr: &Multiaddr) -> anyhow::Result<(SocketAddr, PeerId)> {
    use meshmind_p2p::multiaddr::Protocol;
    let (mut ip, mut port, mut peer) = (None::<IpAddr>, None, None);
    for part in addr.iter() {
        match part {
            Protocol::Ip4(a) => ip = Some(a.into()),
            Protocol::Ip6(a) => ip = Some(a.into()),
            Protocol::Udp(p) => port = Some(p),
            Protocol::P2p(id) => peer = Some(id),
            _ => {}
        }
    }
    match (ip, port, peer) {
        (Some(ip), Some(port), Some(peer)) => Ok((SocketAddr::new(ip, port), peer)),
        _ => anyhow::bail!(
            "--validator {addr}: needs /ip4|ip6/<ip>/udp/<port>/quic-v1/p2p/<peer id> \
             (the query_multiaddr in the validator's status)"
        ),
    }
}

/// One query for `meshmind query`.
pub struct QueryArgs<'a> {
    /// Subnet.
    pub subnet: u32,
    /// Task.
    pub task: &'a str,
    /// Input text.
    pub input: &'a str,
    /// Deadline in milliseconds.
    pub deadline_ms: u32,
    /// Whether to ask for the answer as a stream.
    pub stream: bool,
}

/// Sends a query to the validator at `validator` and writes the answer to `out`: as JSON text, or,
/// streamed, the answer's text as it arrives, after which the miner's signed trailer is verified
/// and summarised on stderr. An error names the validator's error code.
pub async fn query_plane(
    validator: &Multiaddr,
    network_id_hex: &str,
    args: &QueryArgs<'_>,
    out: &mut (impl Write + Send),
) -> anyhow::Result<()> {
    let (addr, peer) = split_query_addr(validator)?;
    let network_id: NetworkId = network_id_hex
        .parse()
        .with_context(|| format!("--network-id {network_id_hex:?}"))?;
    let tag = network_id.tag();
    // Bind where the validator can be reached from: loopback for a local one, any address else.
    let local_ip: IpAddr = match (addr.ip().is_loopback(), addr.is_ipv4()) {
        (true, true) => std::net::Ipv4Addr::LOCALHOST.into(),
        (true, false) => std::net::Ipv6Addr::LOCALHOST.into(),
        (false, true) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        (false, false) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let mut config = NetworkConfig::local(&tag);
    config.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse()?];
    config.query_listen = Some(SocketAddr::new(local_ip, 0));
    config.kad_server = false;
    let keypair = Keypair::generate().context("a key for this client")?;
    let (network, _events) = Network::builder(config, &keypair).spawn()?;
    network.add_query_addr(peer, addr)?;
    let query = v1::Query {
        stream: args.stream,
        ..v1::Query::new(
            network_id,
            args.subnet,
            args.task,
            args.input.as_bytes().to_vec(),
            args.deadline_ms,
        )
    };
    query.validate().context("the query")?;
    let frame = v1::QueryFrame {
        body: Some(v1::query_frame::Body::Query(query.clone())),
    };
    let deadline = Duration::from_millis(u64::from(args.deadline_ms) + 500);
    let result = match args.stream {
        false => one_answer(&network, peer, &frame, deadline, out).await,
        true => streamed_answer(&network, peer, &query, &frame, deadline, out).await,
    };
    network.shutdown().await;
    result.with_context(|| format!("query to {peer} at {addr}"))
}

async fn one_answer(
    network: &NetworkHandle,
    peer: PeerId,
    frame: &v1::QueryFrame,
    deadline: Duration,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let bytes = network
        .query(peer, &frame.encode_to_vec(), deadline)
        .await?;
    let frame: v1::QueryFrame = decode(&bytes).context("the validator's answer")?;
    match query_answer(Some(&frame)) {
        Ok(answer) => Ok(writeln!(out, "{}", serde_json::to_string(&answer)?)?),
        Err((code, message)) => anyhow::bail!("{}: {message}", code.as_str_name()),
    }
}

async fn streamed_answer(
    network: &NetworkHandle,
    peer: PeerId,
    query: &v1::Query,
    frame: &v1::QueryFrame,
    deadline: Duration,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut stream = network
        .query_stream(peer, &frame.encode_to_vec(), deadline)
        .await?;
    let mut check = StreamCheck::new(query, None);
    loop {
        let bytes = stream
            .next()
            .await
            .context("the stream ended before the miner's last chunk")??;
        let chunk = match decode::<v1::QueryFrame>(&bytes).context("the validator's frame")? {
            v1::QueryFrame {
                body: Some(v1::query_frame::Body::Chunk(chunk)),
            } => chunk,
            other => match query_answer(Some(&other)) {
                Err((code, message)) => anyhow::bail!("{}: {message}", code.as_str_name()),
                Ok(_) => anyhow::bail!("the validator answered a stream with a single frame"),
            },
        };
        let trailer = check.chunk(&chunk)?;
        out.write_all(&chunk.data)?;
        out.flush()?;
        if let Some(trailer) = trailer {
            writeln!(out)?;
            let miner = trailer.signer().map(|k| k.to_hex()).unwrap_or_default();
            eprintln!(
                "answered by miner {miner} in {} us: {} bytes in {} chunks, signature verified",
                trailer.elapsed_us,
                check.bytes(),
                chunk.seq + 1
            );
            return Ok(());
        }
    }
}

/// Sends `request` to the validator API at `api` and writes the answer to `out`: whole, or line by
/// line as the validator relays it when streamed. An error answer is written too, then returned.
pub async fn query_api(
    api: &str,
    request: &QueryRequest,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let client = ApiClient::new(api)?;
    let result = async {
        if !request.stream {
            let answer = client.query(request).await?;
            writeln!(out, "{}", serde_json::to_string(&answer)?)?;
            return Ok(());
        }
        let mut lines = client.query_stream(request).await?;
        while let Some(line) = lines.next().await {
            let line = line?;
            writeln!(out, "{}", serde_json::to_string(&line)?)?;
            out.flush()?;
            if let StreamLine::Error(e) = line {
                anyhow::bail!("{}: {}", e.error.code, e.error.message);
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = &result
        && let Some(ClientError::Api { error, .. }) = e.downcast_ref::<ClientError>()
    {
        let body = ApiError {
            error: error.clone(),
        };
        writeln!(out, "{}", serde_json::to_string(&body)?)?;
    }
    result.with_context(|| format!("query through {api}"))
}
