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
    /// The directory holds files but no manifest: it is not this tool's to delete.
    #[error(
        "{0} is not empty and holds no testnet manifest; it was not made by this tool and is left alone (choose another --dir, or empty it yourself)"
    )]
    Foreign(PathBuf),
}

impl Manifest {
    /// The manifest file of a testnet directory.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("testnet.json")
    }

    /// Makes `dir` ready for a new testnet: an absent or empty directory is fine; one holding a
    /// manifest was made by this tool, so `stop` is given its manifest and the directory is
    /// removed; anything else is refused, never deleted.
    pub fn clear_own_dir<E: From<ManifestError>>(
        dir: &Path,
        stop: impl FnOnce(Manifest) -> Result<(), E>,
    ) -> Result<(), E> {
        let io = |source| ManifestError::Io {
            path: dir.to_path_buf(),
            source,
        };
        if !dir.exists() {
            return Ok(());
        }
        if std::fs::read_dir(dir).map_err(io)?.next().is_none() {
            return Ok(());
        }
        if !Self::path(dir).exists() {
            return Err(ManifestError::Foreign(dir.to_path_buf()).into());
        }
        // A manifest that does not parse still marks the directory as this tool's.
        if let Ok(old) = Self::load(dir) {
            stop(old)?;
        }
        Ok(std::fs::remove_dir_all(dir).map_err(io)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn clear(dir: &Path) -> Result<(), ManifestError> {
        Manifest::clear_own_dir(dir, |_| Ok::<(), ManifestError>(()))
    }

    #[test]
    fn a_foreign_directory_is_refused_and_left_whole() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("runs");
        clear(&dir).expect("an absent directory is fine");
        std::fs::create_dir_all(&dir).expect("mkdir");
        clear(&dir).expect("an empty one too");
        std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
        std::fs::write(dir.join("precious.txt"), "keep me").expect("write");
        let refused = clear(&dir).expect_err("files without a manifest");
        assert!(
            matches!(refused, ManifestError::Foreign(ref d) if d == &dir),
            "{refused}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("precious.txt")).expect("still there"),
            "keep me"
        );
        assert!(dir.join("sub").is_dir());
    }

    #[test]
    fn a_directory_with_a_manifest_is_this_tools_to_clear() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("runs");
        std::fs::create_dir_all(dir.join("v0")).expect("mkdir");
        std::fs::write(Manifest::path(&dir), "{ not json").expect("write");
        clear(&dir).expect("cleared");
        assert!(!dir.exists());
    }
}
