//! Network-namespace testnets (`--netns`, root only): every node in its own namespace, joined by
//! veth pairs to two bridges in a bridge namespace: the data bridge (10.200.x.0/24, the nodes'
//! p2p and query traffic) and the management bridge (10.201.x.0/24, their HTTP APIs only).
//! Partitions move the data links of a group onto a bridge of its own (link state); heal moves
//! them back; management stays up so every node can still be watched. This process reaches the
//! APIs from a thread that has entered the bridge namespace, so nothing is added to the host's own
//! network.

use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::process::Command;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::launcher::LaunchError;

/// The namespaces and addresses of one testnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Netns {
    /// Four hex digits naming this testnet's namespaces and interfaces.
    pub id: String,
    /// The third octet of its 10.200.x.0/24 range.
    pub subnet: u8,
}

impl Netns {
    /// The plan for a testnet in `dir` (derived from its path, so two testnets differ).
    pub fn for_dir(dir: &std::path::Path) -> Self {
        let hash = blake3::hash(dir.to_string_lossy().as_bytes());
        let bytes = hash.as_bytes();
        Self {
            id: hex::encode(&bytes[..2]),
            subnet: bytes[2].max(1),
        }
    }

    /// The bridge namespace.
    pub fn bridge_ns(&self) -> String {
        format!("mm{}-br", self.id)
    }

    /// Node `index`'s namespace.
    pub fn node_ns(&self, index: usize) -> String {
        format!("mm{}-n{index}", self.id)
    }

    /// Node `index`'s data address (p2p and query plane).
    pub fn node_ip(&self, index: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 200, self.subnet, host_octet(index))
    }

    /// Node `index`'s management address (its HTTP API).
    pub fn mgmt_ip(&self, index: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 201, self.subnet, host_octet(index))
    }

    /// The management bridge's own address (this process's, from its gateway thread).
    pub fn gateway_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 201, self.subnet, 1)
    }

    fn node_if(&self, index: usize) -> String {
        format!("mm{}{index}n", self.id)
    }

    fn bridge_if(&self, index: usize) -> String {
        format!("mm{}{index}b", self.id)
    }

    fn node_mgmt_if(&self, index: usize) -> String {
        format!("mm{}{index}m", self.id)
    }

    fn bridge_mgmt_if(&self, index: usize) -> String {
        format!("mm{}{index}g", self.id)
    }
}

/// The last octet of node `index` (10, 11, ...; at most 240 nodes).
fn host_octet(index: usize) -> u8 {
    u8::try_from(index).map_or(250, |i| i.saturating_add(10).min(250))
}

fn ip(args: &[&str]) -> Result<(), LaunchError> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| LaunchError::Other(format!("ip {}: {e}", args.join(" "))))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(LaunchError::Command {
            command: format!("ip {}", args.join(" ")),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// Whether namespaces can be made here: root and the `ip` tool; otherwise why not.
pub fn available() -> Result<(), String> {
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("--netns needs root (network namespaces and veth pairs)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => {}
        _ => return Err("--netns needs the `ip` tool (iproute2)".into()),
    }
    // Root is not always enough (a container without CAP_SYS_ADMIN): try one.
    let probe = format!("mmprobe{}", std::process::id());
    ip(&["netns", "add", &probe])
        .map_err(|e| format!("--netns: cannot create network namespaces here: {e}"))?;
    let _ = ip(&["netns", "del", &probe]);
    Ok(())
}

/// Creates the bridge namespace and one namespace per node, wired to the bridge.
pub fn create(plan: &Netns, nodes: usize) -> Result<(), LaunchError> {
    available().map_err(LaunchError::Other)?;
    let br = plan.bridge_ns();
    let gateway = format!("{}/24", plan.gateway_ip());
    ip(&["netns", "add", &br])?;
    ip(&["-n", &br, "link", "set", "lo", "up"])?;
    ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
    ip(&["-n", &br, "link", "set", "br0", "up"])?;
    ip(&["-n", &br, "link", "add", "mgmt", "type", "bridge"])?;
    ip(&["-n", &br, "addr", "add", &gateway, "dev", "mgmt"])?;
    ip(&["-n", &br, "link", "set", "mgmt", "up"])?;
    for index in 0..nodes {
        let ns = plan.node_ns(index);
        let (node_if, bridge_if) = (plan.node_if(index), plan.bridge_if(index));
        let addr = format!("{}/24", plan.node_ip(index));
        ip(&["netns", "add", &ns])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n", &ns, "link", "add", &node_if, "type", "veth", "peer", "name", &bridge_if,
            "netns", &br,
        ])?;
        ip(&["-n", &ns, "addr", "add", &addr, "dev", &node_if])?;
        ip(&["-n", &ns, "link", "set", &node_if, "up"])?;
        ip(&["-n", &br, "link", "set", &bridge_if, "master", "br0"])?;
        ip(&["-n", &br, "link", "set", &bridge_if, "up"])?;
        let (node_mgmt, bridge_mgmt) = (plan.node_mgmt_if(index), plan.bridge_mgmt_if(index));
        let mgmt = format!("{}/24", plan.mgmt_ip(index));
        ip(&[
            "-n",
            &ns,
            "link",
            "add",
            &node_mgmt,
            "type",
            "veth",
            "peer",
            "name",
            &bridge_mgmt,
            "netns",
            &br,
        ])?;
        ip(&["-n", &ns, "addr", "add", &mgmt, "dev", &node_mgmt])?;
        ip(&["-n", &ns, "link", "set", &node_mgmt, "up"])?;
        ip(&["-n", &br, "link", "set", &bridge_mgmt, "master", "mgmt"])?;
        ip(&["-n", &br, "link", "set", &bridge_mgmt, "up"])?;
    }
    Ok(())
}

/// Deletes every namespace of the plan (their interfaces go with them); errors are ignored, so
/// it also cleans up after a half-made testnet.
pub fn destroy(plan: &Netns, nodes: usize) {
    for index in 0..nodes {
        let _ = ip(&["netns", "del", &plan.node_ns(index)]);
    }
    let _ = ip(&["netns", "del", &plan.bridge_ns()]);
}

/// Puts group k (k >= 1) on data bridge `br<k>`, cutting the groups apart at the link layer;
/// group 0 stays on `br0`.
pub fn partition(plan: &Netns, groups: &[Vec<usize>]) -> Result<(), LaunchError> {
    let br = plan.bridge_ns();
    for (k, group) in groups.iter().enumerate() {
        let bridge = format!("br{k}");
        if k > 0 {
            let _ = ip(&["-n", &br, "link", "add", &bridge, "type", "bridge"]);
            ip(&["-n", &br, "link", "set", &bridge, "up"])?;
        }
        for &index in group {
            ip(&[
                "-n",
                &br,
                "link",
                "set",
                &plan.bridge_if(index),
                "master",
                &bridge,
            ])?;
        }
    }
    Ok(())
}

/// Puts every node back on `br0`.
pub fn heal(plan: &Netns, nodes: usize) -> Result<(), LaunchError> {
    let br = plan.bridge_ns();
    for index in 0..nodes {
        ip(&[
            "-n",
            &br,
            "link",
            "set",
            &plan.bridge_if(index),
            "master",
            "br0",
        ])?;
    }
    Ok(())
}

/// Work run on the gateway's thread.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

static GATEWAY: OnceLock<mpsc::UnboundedSender<Job>> = OnceLock::new();

/// Runs this process's API calls from inside `bridge_ns` from now on.
pub fn use_gateway(bridge_ns: &str) -> Result<(), LaunchError> {
    if GATEWAY.get().is_some() {
        return Ok(());
    }
    let path = format!("/var/run/netns/{bridge_ns}");
    let file = std::fs::File::open(&path)
        .map_err(|e| LaunchError::Other(format!("{path}: {e} (is the testnet up?)")))?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("netns-gateway".into())
        .spawn(move || {
            use std::os::fd::AsRawFd;
            // SAFETY: setns(2) on a namespace file we hold open; it changes only this thread.
            let entered = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } == 0;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let (Ok(runtime), true) = (runtime, entered) else {
                let _ = ready_tx.send(false);
                return;
            };
            let _ = ready_tx.send(true);
            // Sockets are opened where a job is polled: on this thread, inside the namespace.
            runtime.block_on(async move {
                while let Some(job) = rx.recv().await {
                    tokio::spawn(job);
                }
            });
        })
        .map_err(|e| LaunchError::Other(format!("gateway thread: {e}")))?;
    if ready_rx.recv().ok() != Some(true) {
        return Err(LaunchError::Other(format!(
            "could not enter network namespace {bridge_ns}"
        )));
    }
    let _ = GATEWAY.set(tx);
    Ok(())
}

/// Runs `work` where the nodes' APIs are reachable: here, or on the namespace gateway's thread
/// when one is in use.
pub async fn within<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> anyhow::Result<T> {
    match GATEWAY.get() {
        None => Ok(work.await),
        Some(gateway) => {
            let (reply, answer) = oneshot::channel();
            gateway
                .send(Box::pin(async move {
                    let _ = reply.send(work.await);
                }))
                .map_err(|_| anyhow::anyhow!("the namespace gateway stopped"))?;
            answer
                .await
                .map_err(|_| anyhow::anyhow!("the namespace gateway dropped a request"))
        }
    }
}
