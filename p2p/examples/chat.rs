//! A tiny chat over the meshmind network: joins a mesh, subscribes to a topic, publishes stdin lines.
//!
//! Terminal 1: `cargo run -p meshmind-p2p --example chat`
//! Terminal 2: `cargo run -p meshmind-p2p --example chat -- /ip4/127.0.0.1/udp/<port>/quic-v1/p2p/<id>`
//! (the first prints its address). Type lines in either; they appear in the other.

use std::time::Duration;

use meshmind_p2p::{Multiaddr, Network, NetworkConfig, NetworkError, NetworkEvent};
use meshmind_protocols::Keypair;
use tokio::io::{AsyncBufReadExt, BufReader};

const TOPIC: &str = "chat";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = NetworkConfig::local("chat-example");
    for arg in std::env::args().skip(1) {
        let addr: Multiaddr = arg.parse()?;
        config.bootnodes.push(addr);
    }
    let (network, mut events) = Network::spawn(config, &Keypair::generate()?)?;
    network.subscribe(TOPIC).await?;
    println!("peer id {}", network.local_peer_id());

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) if !line.trim().is_empty() => {
                    match network.publish(TOPIC, line.into_bytes()).await {
                        Ok(()) => {}
                        Err(NetworkError::NoPeers) => println!("(nobody is listening yet)"),
                        Err(e) => println!("(not sent: {e})"),
                    }
                }
                Some(_) => {}
                None => break,
            },
            event = events.recv() => match event {
                Some(NetworkEvent::ListenAddr(addr)) => {
                    println!("listening on {addr}/p2p/{}", network.local_peer_id());
                }
                Some(NetworkEvent::Gossip(message)) => {
                    let from = message.origin.map(|p| p.to_string()).unwrap_or_default();
                    println!("{from}: {}", String::from_utf8_lossy(&message.data));
                    message.validation.accept();
                }
                Some(NetworkEvent::PeerConnected(peer)) => println!("(connected to {peer})"),
                Some(_) => {}
                None => break,
            },
        }
    }
    tokio::time::timeout(Duration::from_secs(5), network.shutdown()).await?;
    Ok(())
}
