//! Creating a testnet (keys, one genesis, a config per node) and starting and stopping its node
//! processes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use meshmind_node::clock::now_ms;
use meshmind_node::config::NodeConfig;
use meshmind_node::genesis::{
    BalanceFile, EconomyFile, GenesisFile, NeuronFile, SubnetFile, ValidatorFile,
};
use meshmind_protocols::{KeyFile, KeyKind};

use crate::manifest::{Manifest, NodeEntry, NodeRole};
use crate::process::{self, ProcState, Sig};

/// What `up` builds.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Validators (`v0`, `v1`, ...), equal stake.
    pub validators: usize,
    /// Miners (`m1`, `m2`, ...), spread over the subnets.
    pub miners: usize,
    /// Subnets, each serving the reference tasks.
    pub subnets: u32,
    /// Epoch length.
    pub epoch_ms: u64,
    /// API port of `v0`; the others count up from it (0: any free ports).
    pub base_port: u16,
    /// Per-miner behaviour, one of [`BEHAVIOURS`]: `reference` (honest), `slow`, `wrong` (answers
    /// with its input), `embed`, `embed-degraded`, `embed-random`.
    pub behaviours: Vec<(String, String)>,
    /// Validators that equivocate on purpose (the node's test-only mode).
    pub byzantine: Vec<String>,
    /// Each node in its own network namespace (root only).
    pub netns: bool,
}

/// Why the testnet could not be built or driven.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A `meshmind` command failed.
    #[error("{command}: {message}")]
    Command {
        /// What ran.
        command: String,
        /// Its error output.
        message: String,
    },
    /// File system trouble.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Anything else, said plainly.
    #[error("{0}")]
    Other(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LaunchError + '_ {
    move |source| LaunchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A port free for both TCP and UDP on 127.0.0.1 and not handed out before in this process (nodes
/// bind QUIC on UDP and TCP on the same number).
fn free_port() -> Result<u16, LaunchError> {
    static TAKEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..200 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| LaunchError::Other(format!("no free port: {e}")))?;
        let port = tcp
            .local_addr()
            .map_err(|e| LaunchError::Other(format!("no free port: {e}")))?
            .port();
        let udp_free = std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok();
        let mut taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
        if udp_free && !taken.contains(&port) {
            taken.push(port);
            return Ok(port);
        }
    }
    Err(LaunchError::Other(
        "no port free for both TCP and UDP".into(),
    ))
}

/// The `meshmind` binary next to this one, or `MESHMIND_BIN`.
pub fn default_meshmind() -> PathBuf {
    if let Some(path) = std::env::var_os("MESHMIND_BIN") {
        return PathBuf::from(path);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("meshmind")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("meshmind"))
}

fn run_meshmind(meshmind: &Path, args: &[&str]) -> Result<String, LaunchError> {
    let output = Command::new(meshmind)
        .args(args)
        .env("MESHMIND_LOG", "warn")
        .output()
        .map_err(|e| LaunchError::Command {
            command: format!("{} {}", meshmind.display(), args.join(" ")),
            message: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(LaunchError::Command {
            command: format!("meshmind {}", args.join(" ")),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// What a miner may be told to do: answer the reference tasks (`reference`) slowly or wrongly, or
/// serve sentence embeddings with the real model, a blurred copy of it, or random vectors.
pub const BEHAVIOURS: [&str; 6] = [
    "reference",
    "slow",
    "wrong",
    "embed",
    "embed-degraded",
    "embed-random",
];
/// Noise of an `embed-degraded` miner: its vectors have a cosine of about 0.95 to the model's.
const DEGRADED_NOISE: f32 = 0.03;
/// Noise of an `embed-random` miner: its vectors point anywhere.
const RANDOM_NOISE: f32 = 10.0;

/// The subnet of each miner, given its behaviour: with two or more subnets, miners with an
/// `embed` behaviour serve subnet 2 (the embeddings subnet) and the others take the other subnets
/// in turn; otherwise every miner takes the subnets in turn.
pub fn miner_subnets(behaviours: &[Option<&str>], subnets: u32) -> Vec<u32> {
    let subnets = subnets.max(1);
    let embeds = |b: &Option<&str>| b.is_some_and(|b| b.starts_with("embed"));
    let apart = subnets >= 2 && behaviours.iter().any(embeds);
    let others: Vec<u32> = (1..=subnets).filter(|&s| !apart || s != 2).collect();
    let mut next = 0;
    behaviours
        .iter()
        .map(|b| {
            if apart && embeds(b) {
                return 2;
            }
            let subnet = others[next % others.len()];
            next += 1;
            subnet
        })
        .collect()
}

/// The genesis for these validators (hotkey, coldkey): equal stake and a funded coldkey each,
/// `subnets` subnets with the reference tasks and `embed`, the miners (hotkey, coldkey, subnet) registered,
/// starting `lead_ms` from now.
pub fn genesis_file(
    validators: &[(String, String)],
    miners: &[(String, String, u32)],
    subnets: u32,
    epoch_ms: u64,
    lead_ms: u64,
) -> GenesisFile {
    GenesisFile {
        network_name: "meshmind-testnet".into(),
        genesis_time_ms: now_ms() + lead_ms,
        epoch_ms,
        emission_per_epoch: 1_000_000_000,
        subnets: (1..=subnets)
            .map(|id| SubnetFile {
                id,
                name: format!("reference-{id}"),
                tasks: vec!["arith".into(), "sort".into(), "embed".into()],
                owner: None,
            })
            .collect(),
        validators: validators
            .iter()
            .map(|(hotkey, coldkey)| ValidatorFile {
                hotkey: hotkey.clone(),
                coldkey: coldkey.clone(),
                stake: 1_000,
            })
            .collect(),
        balances: validators
            .iter()
            .map(|(_, coldkey)| BalanceFile {
                coldkey: coldkey.clone(),
                amount: 1_000_000_000,
            })
            .collect(),
        neurons: miners
            .iter()
            .map(|(hotkey, coldkey, subnet)| NeuronFile {
                subnet: *subnet,
                hotkey: hotkey.clone(),
                coldkey: coldkey.clone(),
            })
            .collect(),
        // Owners and delegates on a local testnet may change things within seconds, not minutes.
        economy: Some(EconomyFile {
            owner_rate_limit: 10,
            take_rate_limit: 10,
            ..Default::default()
        }),
    }
}

/// Creates the data directories, keys, genesis and configs of a new testnet in `dir`.
pub fn create(dir: &Path, layout: &Layout, meshmind: &Path) -> Result<Manifest, LaunchError> {
    if Manifest::path(dir).exists() {
        return Err(LaunchError::Other(format!(
            "a testnet already exists in {} (use `down --purge` first, or another --dir)",
            dir.display()
        )));
    }
    if layout.validators == 0 {
        return Err(LaunchError::Other(
            "at least one validator is needed".into(),
        ));
    }
    if let Some((name, _)) = layout
        .behaviours
        .iter()
        .find(|(name, _)| !(1..=layout.miners).any(|i| *name == format!("m{i}")))
    {
        return Err(LaunchError::Other(format!(
            "behaviour for {name}: not a miner of this testnet (m1..m{})",
            layout.miners
        )));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let dir_abs = std::fs::canonicalize(dir).map_err(io(dir))?;
    let netns = if layout.netns {
        crate::netns::available().map_err(LaunchError::Other)?;
        let plan = crate::netns::Netns::for_dir(&dir_abs);
        let count = layout.validators + layout.miners;
        if let Err(e) = crate::netns::create(&plan, count) {
            crate::netns::destroy(&plan, count);
            return Err(e);
        }
        crate::netns::use_gateway(&plan.bridge_ns())?;
        Some(plan)
    } else {
        None
    };
    let mut nodes = Vec::new();
    let names = (0..layout.validators)
        .map(|i| (format!("v{i}"), NodeRole::Validator))
        .chain((1..=layout.miners).map(|i| (format!("m{i}"), NodeRole::Miner)));
    let mut ports = Vec::new();
    for (index, (name, role)) in names.enumerate() {
        // API, control plane (UDP for QUIC and TCP) and query plane ports.
        let (port, p2p, query) = match layout.base_port {
            _ if netns.is_some() => (7410, 7400, 7401),
            0 => (free_port()?, free_port()?, free_port()?),
            base => {
                let at = |offset: u16| {
                    base.checked_add(offset)
                        .and_then(|p| p.checked_add(u16::try_from(index).ok()?))
                        .ok_or_else(|| LaunchError::Other("ports past 65535".into()))
                };
                (at(0)?, at(1_000)?, at(2_000)?)
            }
        };
        ports.push((p2p, query));
        let data_dir = dir.join(&name);
        let host = match &netns {
            Some(plan) => plan.mgmt_ip(index),
            None => std::net::Ipv4Addr::LOCALHOST,
        };
        let api = format!("{host}:{port}");
        init_node(meshmind, role, &data_dir, &api)?;
        let behaviour = layout
            .behaviours
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b.clone());
        nodes.push(NodeEntry {
            name,
            role,
            data_dir: std::fs::canonicalize(&data_dir).map_err(io(&data_dir))?,
            api,
            pid: None,
            behaviour,
        });
    }
    let node_keys = |n: &NodeEntry| {
        let hot = KeyFile::read_kind(&n.data_dir.join("hotkey.json"), KeyKind::Hotkey);
        let cold = KeyFile::read_kind(&n.data_dir.join("coldkey.json"), KeyKind::Coldkey);
        match (hot, cold) {
            (Ok(h), Ok(c)) => Ok((h.public().to_hex(), c.public().to_hex())),
            (Err(e), _) | (_, Err(e)) => Err(LaunchError::Other(e.to_string())),
        }
    };
    let keys: Vec<(String, String)> = nodes
        .iter()
        .filter(|n| n.role == NodeRole::Validator)
        .map(node_keys)
        .collect::<Result<_, _>>()?;
    // Miners are registered from genesis on the subnet each serves.
    let miner_nodes: Vec<&NodeEntry> = nodes.iter().filter(|n| n.role == NodeRole::Miner).collect();
    let behaviours: Vec<Option<&str>> =
        miner_nodes.iter().map(|n| n.behaviour.as_deref()).collect();
    let miner_subnets = miner_subnets(&behaviours, layout.subnets);
    let miners: Vec<(String, String, u32)> = miner_nodes
        .iter()
        .zip(&miner_subnets)
        .map(|(n, &subnet)| node_keys(n).map(|(hot, cold)| (hot, cold, subnet)))
        .collect::<Result<_, _>>()?;
    // Epoch 0 starts once every node has had time to come up.
    let lead_ms = 2_000 + 150 * nodes.len() as u64;
    let genesis = genesis_file(&keys, &miners, layout.subnets, layout.epoch_ms, lead_ms);
    let genesis_text = toml::to_string_pretty(&genesis)
        .map_err(|e| LaunchError::Other(format!("genesis: {e}")))?;
    let mut miner_index = 0usize;
    let mut bootnode = None;
    for (index, (node, (p2p, query))) in nodes.iter().zip(&ports).enumerate() {
        let host = match &netns {
            Some(plan) => plan.node_ip(index),
            None => std::net::Ipv4Addr::LOCALHOST,
        };
        let genesis_path = node.data_dir.join("genesis.toml");
        std::fs::write(&genesis_path, &genesis_text).map_err(io(&genesis_path))?;
        let config_path = node.data_dir.join("config.toml");
        let mut config =
            NodeConfig::load(&config_path).map_err(|e| LaunchError::Other(e.to_string()))?;
        local_config(&mut config, host, (*p2p, *query), layout.epoch_ms)?;
        if bootnode.is_none() {
            let hotkey = KeyFile::read_kind(&node.data_dir.join("hotkey.json"), KeyKind::Hotkey)
                .map_err(|e| LaunchError::Other(e.to_string()))?;
            bootnode = Some(format!(
                "/ip4/{host}/udp/{p2p}/quic-v1/p2p/{}",
                hotkey.public().peer_id()
            ));
        }
        config.consensus.test_equivocate = layout.byzantine.contains(&node.name);
        // The test-only admin routes let `partition` cut connections without root (in network
        // namespaces links are cut instead, and the API is not on loopback).
        config.api_admin = netns.is_none();
        if node.role == NodeRole::Miner {
            config.miner.subnet = miner_subnets[miner_index];
            miner_index += 1;
            match node.behaviour.as_deref() {
                None | Some("reference") => {}
                Some("slow") => config.miner.delay_ms = 400,
                Some("wrong") => config.miner.backend = "echo".into(),
                Some(embed @ ("embed" | "embed-degraded" | "embed-random")) => {
                    config.miner.backend = "embed".into();
                    config.miner.tasks = vec!["embed".into()];
                    config.miner.noise = match embed {
                        "embed-degraded" => DEGRADED_NOISE,
                        "embed-random" => RANDOM_NOISE,
                        _ => 0.0,
                    };
                }
                Some(other) => {
                    return Err(LaunchError::Other(format!(
                        "miner {}: unknown behaviour {other:?} ({})",
                        node.name,
                        BEHAVIOURS.join(", ")
                    )));
                }
            }
        }
        std::fs::write(&config_path, config.to_toml()).map_err(io(&config_path))?;
    }
    let manifest = Manifest {
        meshmind: meshmind.to_path_buf(),
        epoch_ms: layout.epoch_ms,
        genesis_time_ms: genesis.genesis_time_ms,
        bootnode,
        nodes,
        netns,
    };
    manifest
        .save(dir)
        .map_err(|e| LaunchError::Other(e.to_string()))?;
    Ok(manifest)
}

/// `meshmind init` of a `role` node in `data_dir` with its API on `api`.
fn init_node(
    meshmind: &Path,
    role: NodeRole,
    data_dir: &Path,
    api: &str,
) -> Result<(), LaunchError> {
    let data = data_dir.to_string_lossy().into_owned();
    let args = [
        "init",
        "--role",
        role.as_str(),
        "--data-dir",
        &data,
        "--api-listen",
        api,
    ];
    run_meshmind(meshmind, &args).map(|_| ())
}

/// What every node of a local testnet shares: frequent challenges (so every epoch has weights to
/// reveal), its listen addresses on `host` at `ports` (control plane, query plane), long-lived ads.
fn local_config(
    config: &mut NodeConfig,
    host: std::net::Ipv4Addr,
    (p2p, query): (u16, u16),
    epoch_ms: u64,
) -> Result<(), LaunchError> {
    config.validator.challenge_interval_ms = (epoch_ms / 4).clamp(100, 2_000);
    let listen = |text: String| {
        text.parse()
            .map_err(|e| LaunchError::Other(format!("address {text}: {e}")))
    };
    config.network.listen = vec![
        listen(format!("/ip4/{host}/udp/{p2p}/quic-v1"))?,
        listen(format!("/ip4/{host}/tcp/{p2p}"))?,
    ];
    config.network.query_listen = Some(std::net::SocketAddr::from((host, query)));
    config.miner.ad_ttl_ms = 30_000;
    Ok(())
}

/// Adds a node of `role` to a running loopback testnet, as an outsider would join it: new keys
/// (`meshmind init`), the network's genesis, v0 as its bootnode; then starts it. Its name is the
/// next free one (`v<n>` or `m<n>`). It holds no stake and is registered nowhere: that is up to
/// its operator (`meshmind tx register`, `tx stake`).
pub fn join(manifest: &mut Manifest, dir: &Path, role: NodeRole) -> Result<String, LaunchError> {
    if manifest.netns.is_some() {
        return Err(LaunchError::Other(
            "join works on loopback testnets, not in network namespaces".into(),
        ));
    }
    let (prefix, first) = match role {
        NodeRole::Validator => ("v", 0),
        NodeRole::Miner => ("m", 1),
    };
    let name = (first..)
        .map(|i| format!("{prefix}{i}"))
        .find(|n| manifest.node(n).is_err())
        .ok_or_else(|| LaunchError::Other("no free name".into()))?;
    let v0 = manifest
        .node("v0")
        .map_err(|e| LaunchError::Other(e.to_string()))?
        .clone();
    let data_dir = dir.join(&name);
    let api = format!("127.0.0.1:{}", free_port()?);
    init_node(&manifest.meshmind, role, &data_dir, &api)?;
    let genesis = v0.data_dir.join("genesis.toml");
    let copy = data_dir.join("genesis.toml");
    std::fs::copy(&genesis, &copy).map_err(io(&copy))?;
    let config_path = data_dir.join("config.toml");
    let mut config =
        NodeConfig::load(&config_path).map_err(|e| LaunchError::Other(e.to_string()))?;
    let ports = (free_port()?, free_port()?);
    local_config(
        &mut config,
        std::net::Ipv4Addr::LOCALHOST,
        ports,
        manifest.epoch_ms,
    )?;
    config.api_admin = true;
    std::fs::write(&config_path, config.to_toml()).map_err(io(&config_path))?;
    manifest.nodes.push(NodeEntry {
        name: name.clone(),
        role,
        data_dir: std::fs::canonicalize(&data_dir).map_err(io(&data_dir))?,
        api,
        pid: None,
        behaviour: None,
    });
    manifest
        .save(dir)
        .map_err(|e| LaunchError::Other(e.to_string()))?;
    start(manifest, dir, &name)?;
    Ok(name)
}

/// The state of a node's process.
pub fn node_state(node: &NodeEntry) -> ProcState {
    node.pid.map_or(ProcState::Exited, process::state)
}

/// Starts node `name` (if it is not running), logging to `<data>/node.log`; returns its pid.
pub fn start(manifest: &mut Manifest, dir: &Path, name: &str) -> Result<u32, LaunchError> {
    let node = manifest
        .node(name)
        .map_err(|e| LaunchError::Other(e.to_string()))?
        .clone();
    if let Some(pid) = node.pid
        && process::state(pid) != ProcState::Exited
    {
        return Ok(pid);
    }
    let log_path = node.data_dir.join("node.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io(&log_path))?;
    let err = log.try_clone().map_err(io(&log_path))?;
    let mut command = match &manifest.netns {
        Some(plan) => {
            let index = manifest
                .index(name)
                .map_err(|e| LaunchError::Other(e.to_string()))?;
            // `ip netns exec` enters the namespace and then becomes meshmind (same pid).
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &plan.node_ns(index)])
                .arg(&manifest.meshmind);
            c
        }
        None => Command::new(&manifest.meshmind),
    };
    command
        .args(["run", "--data-dir"])
        .arg(&node.data_dir)
        .env(
            "MESHMIND_LOG",
            std::env::var("MESHMIND_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    if let Some(bootnode) = &manifest.bootnode
        && node.name != "v0"
    {
        command.args(["--bootnode", bootnode]);
    }
    // Its own process group, so a Ctrl-C in the launching terminal does not reach it.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command.spawn().map_err(|e| LaunchError::Command {
        command: format!("{} run", manifest.meshmind.display()),
        message: e.to_string(),
    })?;
    let pid = child.id();
    // The child is reaped by `reap`, or by init once this process exits.
    drop(child);
    manifest
        .node_mut(name)
        .map_err(|e| LaunchError::Other(e.to_string()))?
        .pid = Some(pid);
    manifest
        .save(dir)
        .map_err(|e| LaunchError::Other(e.to_string()))?;
    Ok(pid)
}

/// Sends `sig` to node `name`; an error if it is not running.
pub fn signal(manifest: &Manifest, name: &str, sig: Sig) -> Result<(), LaunchError> {
    let node = manifest
        .node(name)
        .map_err(|e| LaunchError::Other(e.to_string()))?;
    match node.pid {
        Some(pid) if process::state(pid) != ProcState::Exited && process::signal(pid, sig) => {
            Ok(())
        }
        _ => Err(LaunchError::Other(format!("{name} is not running"))),
    }
}

/// Stops every node: SIGTERM, then SIGKILL for any still up after `grace`.
pub fn stop_all(
    manifest: &mut Manifest,
    dir: &Path,
    grace: Duration,
) -> Result<usize, LaunchError> {
    let mut stopped = 0;
    for node in &manifest.nodes {
        if let Some(pid) = node.pid {
            if process::state(pid) == ProcState::Paused {
                process::signal(pid, Sig::Cont);
            }
            if process::state(pid) != ProcState::Exited && process::signal(pid, Sig::Term) {
                stopped += 1;
            }
        }
    }
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline
        && manifest.nodes.iter().any(|n| {
            n.pid
                .is_some_and(|p| process::state(p) != ProcState::Exited)
        })
    {
        reap();
        std::thread::sleep(Duration::from_millis(50));
    }
    for node in &mut manifest.nodes {
        if let Some(pid) = node.pid.take()
            && process::state(pid) != ProcState::Exited
        {
            process::signal(pid, Sig::Kill);
        }
    }
    reap();
    manifest
        .save(dir)
        .map_err(|e| LaunchError::Other(e.to_string()))?;
    Ok(stopped)
}

/// Removes what the testnet made outside its directory: its network namespaces, if any.
pub fn teardown(manifest: &Manifest) {
    if let Some(plan) = &manifest.netns {
        crate::netns::destroy(plan, manifest.nodes.len());
    }
}

/// Collects exited children of this process so they do not linger as zombies.
pub fn reap() {
    let mut status = 0;
    // SAFETY: waitpid(2) with WNOHANG writes only the status integer we pass.
    while unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } > 0 {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshmind_protocols::Keypair;

    #[test]
    fn embed_miners_get_subnet_two_and_the_others_the_rest() {
        let spread = [None, None, None, None];
        assert_eq!(miner_subnets(&spread, 1), vec![1, 1, 1, 1]);
        assert_eq!(miner_subnets(&spread, 2), vec![1, 2, 1, 2]);
        let mixed = [
            None,
            Some("slow"),
            None,
            Some("embed"),
            Some("embed-degraded"),
        ];
        assert_eq!(miner_subnets(&mixed, 1), vec![1, 1, 1, 1, 1]);
        assert_eq!(miner_subnets(&mixed, 2), vec![1, 1, 1, 2, 2]);
        assert_eq!(miner_subnets(&mixed, 3), vec![1, 3, 1, 2, 2]);
    }

    #[test]
    fn the_genesis_lists_every_validator_and_subnet_and_checks() {
        let keys: Vec<(String, String)> = (1..=3u8)
            .map(|i| {
                (
                    Keypair::from_secret(&[i; 32]).public().to_hex(),
                    Keypair::from_secret(&[i + 10; 32]).public().to_hex(),
                )
            })
            .collect();
        let miners = vec![(
            Keypair::from_secret(&[40; 32]).public().to_hex(),
            Keypair::from_secret(&[41; 32]).public().to_hex(),
            2,
        )];
        let file = genesis_file(&keys, &miners, 2, 1000, 5000);
        assert_eq!(file.validators.len(), 3);
        assert_eq!(file.neurons.len(), 1);
        assert_eq!(file.balances.len(), 3);
        assert_eq!(
            file.subnets.iter().map(|s| s.id).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(file.genesis_time_ms > now_ms() + 4000);
        let genesis = file.clone().into_genesis().expect("a valid genesis");
        assert_eq!(genesis.message.validators.len(), 3);
        // Another start time is another network.
        let mut later = file;
        later.genesis_time_ms += 1;
        assert_ne!(later.into_genesis().unwrap().network_id, genesis.network_id);
    }
}
