//! The testnet on disk: `testnet.json` in the testnet directory names every node, its role, data
//! directory, API address and process id, so every command (in any later invocation) finds them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A node's role, as `meshmind init` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// Holds stake and votes.
    Validator,
    /// Serves queries.
    Miner,
}

impl NodeRole {
    /// The name `meshmind init --role` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validator => "validator",
            Self::Miner => "miner",
        }
    }
}

/// One node of the testnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Short name: `v0`, `v1`, ... for validators, `m1`, `m2`, ... for miners.
    pub name: String,
    /// Role.
    pub role: NodeRole,
    /// Data directory.
    pub data_dir: PathBuf,
    /// HTTP API address (`127.0.0.1:port`).
    pub api: String,
    /// Process id of the last start, if any.
    pub pid: Option<u32>,
    /// Miner backend override (`reference`, `echo`, `slow`, `wrong`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour: Option<String>,
}

/// The whole testnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The `meshmind` binary the nodes run.
    pub meshmind: PathBuf,
    /// Epoch length.
    pub epoch_ms: u64,
    /// Start of epoch 0, ms since the Unix epoch.
    pub genesis_time_ms: u64,
    /// The bootnode's control-plane address, once known.
    pub bootnode: Option<String>,
    /// The nodes, validators first.
    pub nodes: Vec<NodeEntry>,
    /// The network namespaces, when the testnet runs in them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<crate::netns::Netns>,
}

/// Why the manifest could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// No testnet in the directory.
    #[error("no testnet in {0} (start one with `meshmind-testnet up`)")]
    Missing(PathBuf),
    /// File system trouble.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a manifest.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No node of that name.
    #[error("no node {0:?} in this testnet (see `meshmind-testnet status`)")]
    UnknownNode(String),
}

impl Manifest {
    /// The manifest file of a testnet directory.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("testnet.json")
    }

    /// Reads the manifest of `dir`.
    pub fn load(dir: &Path) -> Result<Self, ManifestError> {
        let path = Self::path(dir);
        if !path.exists() {
            return Err(ManifestError::Missing(dir.to_path_buf()));
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| ManifestError::Parse {
            path,
            message: e.to_string(),
        })
    }

    /// Writes the manifest into `dir` (atomically: a temporary file renamed over it).
    pub fn save(&self, dir: &Path) -> Result<(), ManifestError> {
        let path = Self::path(dir);
        let tmp = dir.join("testnet.json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| ManifestError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| ManifestError::Io { path, source })
    }

    /// The position of node `name` (its namespace number under `--netns`).
    pub fn index(&self, name: &str) -> Result<usize, ManifestError> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| ManifestError::UnknownNode(name.to_string()))
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Result<&NodeEntry, ManifestError> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| ManifestError::UnknownNode(name.to_string()))
    }

    /// The node called `name`, for changing.
    pub fn node_mut(&mut self, name: &str) -> Result<&mut NodeEntry, ManifestError> {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .ok_or_else(|| ManifestError::UnknownNode(name.to_string()))
    }
}
