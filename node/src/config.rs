//! The node's configuration file (`config.toml` in the data directory), with defaults for every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use meshmind_p2p::NetworkConfig;
use serde::{Deserialize, Serialize};

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Serves a capability on a subnet.
    Miner,
    /// Challenges and scores miners, routes queries, publishes weights.
    Validator,
    /// Follows the network and serves the HTTP API.
    #[default]
    Observer,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Miner => "miner",
            Role::Validator => "validator",
            Role::Observer => "observer",
        })
    }
}

/// The miner section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinerSection {
    /// Subnet served. Default 1.
    pub subnet: u32,
    /// Tasks served. Default the reference tasks `arith` and `sort`.
    pub tasks: Vec<String>,
    /// Backend: `reference`, `echo`, `exec` or `http`. Default `reference`.
    pub backend: String,
    /// For the `exec` backend: the program and its arguments.
    pub exec: Vec<String>,
    /// For the `http` backend: the model server's URL (`http://host:port/path`).
    pub url: String,
    /// Queries answered at once. Default 32.
    pub max_concurrency: usize,
    /// Queries per second accepted from one peer. Default 50.
    pub rate_per_peer: u32,
    /// How long a capability ad is valid; ads are refreshed at a third of it. Default 60000 ms.
    pub ad_ttl_ms: u64,
    /// Added latency before every answer, for testing slow miners. Default 0.
    pub delay_ms: u64,
}

impl Default for MinerSection {
    fn default() -> Self {
        Self {
            subnet: 1,
            tasks: vec!["arith".into(), "sort".into()],
            backend: "reference".into(),
            exec: Vec::new(),
            url: String::new(),
            max_concurrency: 32,
            rate_per_peer: 50,
            ad_ttl_ms: 60_000,
            delay_ms: 0,
        }
    }
}

/// The validator section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidatorSection {
    /// Subnet validated. Default 1.
    pub subnet: u32,
    /// Time between challenge rounds. Default 2000 ms.
    pub challenge_interval_ms: u64,
    /// Deadline of a challenge. Default 2000 ms.
    pub challenge_deadline_ms: u64,
    /// Miners a routed query may go to. Default 3.
    pub top_k: usize,
    /// Hedge to the next miner after this long. Default 150 ms.
    pub hedge_after_ms: u64,
}

impl Default for ValidatorSection {
    fn default() -> Self {
        Self {
            subnet: 1,
            challenge_interval_ms: 2_000,
            challenge_deadline_ms: 2_000,
            top_k: 3,
            hedge_after_ms: 150,
        }
    }
}

/// Consensus and ledger settings (validators and observers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsensusSection {
    /// Ledger directory (RocksDB). Default `ledger`.
    pub ledger: PathBuf,
    /// Wait for a proposal, round 0. Default 300 ms.
    pub propose_ms: u64,
    /// Wait for prevotes to agree, round 0. Default 150 ms.
    pub prevote_ms: u64,
    /// Wait for precommits to agree, round 0. Default 150 ms.
    pub precommit_ms: u64,
    /// Added to every step's wait per round. Default 100 ms.
    pub delta_ms: u64,
    /// Resend own votes and the round's votes to every peer this often while undecided. Default 1000 ms.
    pub rebroadcast_ms: u64,
    /// Start deciding an epoch this long after it ends (slack for skewed clocks). Default 0 ms.
    pub start_delay_ms: u64,
    /// TEST ONLY: sign a conflicting nil vote beside every vote for a value, so that testnets can
    /// check that equivocation becomes evidence. A validator running with it is slashable.
    pub test_equivocate: bool,
}

impl Default for ConsensusSection {
    fn default() -> Self {
        Self {
            ledger: PathBuf::from("ledger"),
            propose_ms: 300,
            prevote_ms: 150,
            precommit_ms: 150,
            delta_ms: 100,
            rebroadcast_ms: 1_000,
            start_delay_ms: 0,
            test_equivocate: false,
        }
    }
}

/// Everything in `config.toml`; paths are relative to the data directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's role. Default `observer`.
    pub role: Role,
    /// Genesis file. Default `genesis.toml`.
    pub genesis: PathBuf,
    /// Hotkey file. Default `hotkey.json`.
    pub hotkey: PathBuf,
    /// HTTP API address. Default `127.0.0.1:7410`.
    pub api_listen: SocketAddr,
    /// TEST NETWORKS ONLY: serve `POST /admin/block` and `/admin/unblock` (cut or restore
    /// connections to given peers), which testnets use to partition the network. Default off.
    pub api_admin: bool,
    /// Network layer settings (its `network` name is replaced by the genesis's network tag).
    pub network: NetworkConfig,
    /// Miner settings.
    pub miner: MinerSection,
    /// Validator settings.
    pub validator: ValidatorSection,
    /// Consensus and ledger settings.
    pub consensus: ConsensusSection,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            role: Role::Observer,
            genesis: PathBuf::from("genesis.toml"),
            hotkey: PathBuf::from("hotkey.json"),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 7410)),
            api_admin: false,
            network: NetworkConfig::local("dev"),
            miner: MinerSection::default(),
            validator: ValidatorSection::default(),
            consensus: ConsensusSection::default(),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not parse; the message names the key and line.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What and where.
        message: String,
    },
    /// An environment override has a bad value.
    #[error("environment variable {name}: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

impl NodeConfig {
    /// Loads `config.toml` from `path`, then applies `MESHMIND_*` environment overrides
    /// (`MESHMIND_ROLE`, `MESHMIND_API_LISTEN`).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: name.clone(),
            source,
        })?;
        let mut config: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: name,
            message: e.to_string(),
        })?;
        if let Ok(role) = std::env::var("MESHMIND_ROLE") {
            config.role =
                toml::Value::String(role.clone())
                    .try_into()
                    .map_err(|_| ConfigError::Env {
                        name: "MESHMIND_ROLE".into(),
                        reason: format!("{role:?} is not miner, validator or observer"),
                    })?;
        }
        if let Ok(addr) = std::env::var("MESHMIND_API_LISTEN") {
            config.api_listen = addr.parse().map_err(|e| ConfigError::Env {
                name: "MESHMIND_API_LISTEN".into(),
                reason: format!("{addr:?}: {e}"),
            })?;
        }
        Ok(config)
    }

    /// The file text for this configuration.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!(
            "# meshmind node configuration. Every key is optional and shown with its value; the\n\
             # defaults and meanings are documented in node/src/config.rs and p2p/src/config.rs.\n\
             # Precedence: command-line flags > MESHMIND_* environment > this file > defaults.\n\n{body}"
        )
    }
}
