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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinerSection {
    /// Subnet served. Default 1.
    pub subnet: u32,
    /// Tasks served. Default the reference tasks `arith` and `sort`.
    pub tasks: Vec<String>,
    /// Backend: `reference`, `echo`, `embed` (sentence embeddings with the model in `model_dir`;
    /// serve the task `embed`), `exec`, `http` or `openai` (an OpenAI-compatible server at `url`).
    /// Default `reference`.
    pub backend: String,
    /// For the `exec` backend: the program and its arguments.
    pub exec: Vec<String>,
    /// For the `http` backend: the model server's URL (`http://host:port/path`); for `openai`, the
    /// OpenAI-compatible API's base URL (`http://host:port/v1`).
    pub url: String,
    /// For the `openai` backend: the model name sent with each request. Default empty.
    pub model: String,
    /// For the `openai` backend: the API key sent as a bearer token (none if empty; prefer the
    /// environment, `MESHMIND_MINER__API_KEY`). Default empty.
    pub api_key: String,
    /// Queries answered at once. Default 32.
    pub max_concurrency: usize,
    /// Queries per second accepted from a caller without a validator permit on the subnet, with
    /// bursts of twice as many. Default 50.
    pub rate_per_peer: u32,
    /// Queries per second the validators holding a permit on the subnet share, in proportion to
    /// their stake in the finalized state (bursts of twice each share); advertised in the ads so
    /// that validators keep under their share. Default 8000.
    pub capacity: u32,
    /// How long a capability ad is valid; ads are refreshed at a third of it. Default 60000 ms.
    pub ad_ttl_ms: u64,
    /// Added latency before every answer, for testing slow miners. Default 0.
    pub delay_ms: u64,
    /// For testing degraded `embed` miners: a uniform value in `[-noise, noise]` is added to every
    /// component of a vector (a component of a unit vector of 384 is about 0.05; 10 makes the
    /// vectors random). Default 0.
    pub noise: f32,
    /// Publish ads on the subnet's caps topic too; without it the miner is found only through its
    /// DHT provider records. Default true.
    pub gossip_ads: bool,
    /// Which callers without a quota of their own (neither the subnet's validators nor listed in
    /// `[miner.quotas]`) are answered: `anyone`, `staked` (hotkeys with at least
    /// `min_caller_stake` on the subnet) or `validators` (nobody else). Default `anyone`.
    pub admit: String,
    /// Under `admit = "staked"`, the least stake a caller's hotkey needs on the subnet. Default 1.
    pub min_caller_stake: u64,
    /// Rates set by the operator, queries per second by caller hotkey (hex), over what stake
    /// gives (`[miner.quotas]`); with `admit = "validators"`, the allowlist. Default none.
    pub quotas: std::collections::BTreeMap<String, u32>,
}

impl Default for MinerSection {
    fn default() -> Self {
        Self {
            subnet: 1,
            tasks: vec!["arith".into(), "sort".into()],
            backend: "reference".into(),
            exec: Vec::new(),
            url: String::new(),
            model: String::new(),
            api_key: String::new(),
            max_concurrency: 32,
            rate_per_peer: 50,
            capacity: 8_000,
            ad_ttl_ms: 60_000,
            delay_ms: 0,
            noise: 0.0,
            gossip_ads: true,
            admit: "anyone".into(),
            min_caller_stake: 1,
            quotas: std::collections::BTreeMap::new(),
        }
    }
}

/// How a validator scores one task (`[validator.scorers.<task>]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScorerSection {
    /// `reference` (the tasks `arith` and `sort`), `embedding` (the model in `model_dir`), `exec`
    /// or `http` (the subnet owner's program: see `role/validator/scorer/program.rs`).
    pub kind: String,
    /// For `exec`: the program and its arguments.
    pub exec: Vec<String>,
    /// For `http`: the scorer's URL (`http://host:port/path`).
    pub url: String,
}

/// The validator section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidatorSection {
    /// The subnets validated (`subnets = [1, 2]`; `subnet = 1` is read as one). Empty, the
    /// default: every subnet the genesis or the finalized ledger knows, including subnets created
    /// while the node runs.
    #[serde(alias = "subnet", deserialize_with = "one_or_many")]
    pub subnets: Vec<u32>,
    /// Time between challenge rounds. Default 2000 ms.
    pub challenge_interval_ms: u64,
    /// Deadline of a challenge. Default 2000 ms.
    pub challenge_deadline_ms: u64,
    /// Miners a routed query may go to. Default 3.
    pub top_k: usize,
    /// Hedge to the next miner after this long. Default 150 ms.
    pub hedge_after_ms: u64,
    /// Time between DHT lookups of the subnet's miners (providers without a live ad are asked for
    /// their ads). Default 10000 ms; 0 turns the lookups off.
    pub discovery_interval_ms: u64,
    /// Queries one client may route through this validator per second (a peer on the query
    /// plane; over HTTP an IPv4 address or an IPv6 /64), with bursts of twice as many; past it the
    /// answer is `Overloaded` (HTTP 429). Default 250.
    pub client_rate: u32,
    /// Client queries this validator routes to one miner per second (bursts of twice as many)
    /// when it holds no permit or the miner does not advertise its capacity; keep it under the
    /// miners' rate for callers without a permit (`[miner] rate_per_peer`, default 50) so that
    /// challenges always find room. With a permit it routes three quarters of its share of each
    /// miner's advertised capacity. Default 40.
    pub routed_rate_per_miner: u32,
    /// The scorer of each task, over the defaults: `arith` and `sort` by `reference`, `embed` by
    /// `embedding` (`[validator.scorers.<task>]`). Tasks without a scorer are not challenged.
    pub scorers: std::collections::BTreeMap<String, ScorerSection>,
}

impl Default for ValidatorSection {
    fn default() -> Self {
        Self {
            subnets: Vec::new(),
            challenge_interval_ms: 2_000,
            challenge_deadline_ms: 2_000,
            top_k: 3,
            hedge_after_ms: 150,
            discovery_interval_ms: 10_000,
            client_rate: 250,
            routed_rate_per_miner: 40,
            scorers: std::collections::BTreeMap::new(),
        }
    }
}

/// A list of subnets, or one subnet alone.
fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(u32),
        Many(Vec<u32>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(subnet) => vec![subnet],
        OneOrMany::Many(subnets) => subnets,
    })
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
    /// connections to given peers), which testnets use to partition the network. Only with a
    /// loopback `api_listen`, and only to callers bearing the token in `admin.token` of the data
    /// directory (made on first use, readable by its owner only). Default off.
    pub api_admin: bool,
    /// Network layer settings (its `network` name is replaced by the genesis's network tag).
    pub network: NetworkConfig,
    /// Miner settings.
    pub miner: MinerSection,
    /// Validator settings.
    pub validator: ValidatorSection,
    /// Consensus and ledger settings.
    pub consensus: ConsensusSection,
    /// Folder of the sentence-embedding model (`scripts/fetch-model.sh` unpacks it), for the
    /// `embed` backend and the `embedding` scorer. Default: `$MESHMIND_MODEL_DIR`, else
    /// `~/.cache/meshmind/models/all-MiniLM-L6-v2`.
    pub model_dir: PathBuf,
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
            model_dir: PathBuf::new(),
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
    /// Loads `config.toml` from `path`, then applies `MESHMIND_*` environment overrides from the
    /// process environment (see [`NodeConfig::from_toml_with_env`]).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: name.clone(),
            source,
        })?;
        Self::from_toml_with_env(&name, &text, std::env::vars())
    }

    /// Parses config text, then applies overrides from `env`: `MESHMIND_<KEY>` for a top-level key
    /// and `MESHMIND_<SECTION>__<KEY>` for a key of a section (`MESHMIND_VALIDATOR__TOP_K=5`,
    /// `MESHMIND_NETWORK__LOCAL=true`). Values are TOML (`5`, `true`, `["a", "b"]`), or plain text
    /// for text keys. A variable naming a key of a known section that does not exist, or with a value
    /// of the wrong type, is an error that names it; other `MESHMIND_*` variables are not config.
    pub fn from_toml_with_env(
        name: &str,
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: name.to_string(),
            message,
        };
        // Check the file alone first, so its errors carry line and column.
        let _: NodeConfig = toml::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        let defaults =
            toml::Table::try_from(NodeConfig::default()).map_err(|e| parse_error(e.to_string()))?;
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("MESHMIND_"))
            .collect();
        overrides.sort();
        for (var, value) in overrides {
            let path: Vec<String> = var["MESHMIND_".len()..]
                .split("__")
                .map(str::to_lowercase)
                .collect();
            let env_error = |reason: String| ConfigError::Env {
                name: var.clone(),
                reason,
            };
            let (section, key) = match path.as_slice() {
                [key] if defaults.contains_key(key) && !defaults[key].is_table() => (None, key),
                [section, key] if defaults.get(section).is_some_and(toml::Value::is_table) => {
                    (Some(section), key)
                }
                // Not a config key (e.g. MESHMIND_LOG).
                _ => continue,
            };
            let default = match section {
                None => defaults.get(key.as_str()),
                Some(section) => defaults
                    .get(section.as_str())
                    .and_then(|t| t.get(key.as_str())),
            };
            let parsed = match default {
                Some(toml::Value::String(_)) => toml::Value::String(value.clone()),
                _ => toml::from_str::<toml::Table>(&format!("v = {value}"))
                    .ok()
                    .and_then(|mut t| t.remove("v"))
                    .unwrap_or_else(|| toml::Value::String(value.clone())),
            };
            let target = match section {
                None => &mut table,
                Some(section) => table
                    .entry(section.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| env_error(format!("[{section}] is not a section")))?,
            };
            target.insert(key.clone(), parsed);
            // Check after each override, so an error names the variable that caused it.
            toml::Value::Table(table.clone())
                .try_into::<NodeConfig>()
                .map_err(|e| env_error(format!("{value:?}: {}", e.message())))?;
        }
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| parse_error(e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_any_key_and_names_bad_ones() {
        let text = "role = \"validator\"\n[validator]\ntop_k = 2\n";
        let config = NodeConfig::from_toml_with_env(
            "c.toml",
            text,
            env(&[
                ("MESHMIND_VALIDATOR__TOP_K", "5"),
                ("MESHMIND_ROLE", "miner"),
                ("MESHMIND_API_LISTEN", "127.0.0.1:9999"),
                ("MESHMIND_MINER__TASKS", "[\"sort\"]"),
                ("MESHMIND_CONSENSUS__PROPOSE_MS", "450"),
                ("MESHMIND_NETWORK__LOCAL", "true"),
                ("MESHMIND_LOG", "debug"),
            ]),
        )
        .unwrap();
        assert_eq!(config.validator.top_k, 5, "env beats the file");
        assert_eq!(config.role, Role::Miner);
        assert_eq!(config.api_listen, SocketAddr::from(([127, 0, 0, 1], 9999)));
        assert_eq!(config.miner.tasks, vec!["sort".to_string()]);
        assert_eq!(config.consensus.propose_ms, 450);
        assert!(config.network.local);

        let err = NodeConfig::from_toml_with_env(
            "c.toml",
            text,
            env(&[("MESHMIND_VALIDATOR__TOP_K", "many")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("MESHMIND_VALIDATOR__TOP_K"), "{err}");
        let err = NodeConfig::from_toml_with_env(
            "c.toml",
            text,
            env(&[("MESHMIND_VALIDATOR__TOPK", "3")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("MESHMIND_VALIDATOR__TOPK"), "{err}");
        let err = NodeConfig::from_toml_with_env("c.toml", "rol = 1\n", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("rol") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn validated_subnets_are_a_list_or_one() {
        let read = |text: &str, pairs: &[(&str, &str)]| {
            NodeConfig::from_toml_with_env("c.toml", text, env(pairs))
                .map(|c| c.validator.subnets)
                .map_err(|e| e.to_string())
        };
        assert_eq!(read("", &[]), Ok(vec![]));
        assert_eq!(read("[validator]\nsubnet = 2\n", &[]), Ok(vec![2]));
        assert_eq!(read("[validator]\nsubnets = [1, 3]\n", &[]), Ok(vec![1, 3]));
        assert_eq!(
            read("", &[("MESHMIND_VALIDATOR__SUBNETS", "[2, 4]")]),
            Ok(vec![2, 4])
        );
        let err = read("[validator]\nsubnets = \"all\"\n", &[]).expect_err("refused");
        assert!(err.contains("subnets"), "{err}");
    }
}
