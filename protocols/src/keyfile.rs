//! Key files: JSON holding a hotkey or coldkey, written owner-only and refused when others can read them.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::identity::{Keypair, PublicKey};

/// Largest key file read, in bytes.
const MAX_KEY_FILE_LEN: u64 = 4096;

/// Which role a key plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// A node's identity: its libp2p peer id and the signer of its votes, weights, ads and answers.
    Hotkey,
    /// An account key that owns funds and stake.
    Coldkey,
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyKind::Hotkey => "hotkey",
            KeyKind::Coldkey => "coldkey",
        })
    }
}

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is readable by group or others.
    #[error(
        "{path}: permissions {mode:04o} let other users read the secret key; run `chmod 600 {path}`"
    )]
    Permissive {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a valid key file.
    #[error("{path}: not a valid key file: {reason}")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key file already exists where a new one would be written.
    #[error("{path}: already exists; refusing to overwrite a key")]
    Exists {
        /// The key file.
        path: PathBuf,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileJson {
    kind: KeyKind,
    public_key: String,
    secret_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer_id: Option<String>,
}

/// A keypair together with the role it plays.
#[derive(Debug, Clone)]
pub struct KeyFile {
    /// The role of the key.
    pub kind: KeyKind,
    /// The keypair.
    pub keypair: Keypair,
}

impl KeyFile {
    /// A fresh random key of `kind`.
    pub fn generate(kind: KeyKind) -> Result<Self, crate::identity::IdentityError> {
        Ok(Self {
            kind,
            keypair: Keypair::generate()?,
        })
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        self.keypair.public()
    }

    /// Writes a new key file readable by its owner only; refuses to replace an existing file.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let public = self.public();
        let json = KeyFileJson {
            kind: self.kind,
            public_key: public.to_hex(),
            secret_key: hex::encode(self.keypair.secret_bytes().as_ref()),
            peer_id: (self.kind == KeyKind::Hotkey).then(|| public.peer_id().to_string()),
        };
        let text = Zeroizing::new(serde_json::to_string_pretty(&json).map_err(|e| {
            KeyFileError::Malformed {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    KeyFileError::Exists {
                        path: path.to_path_buf(),
                    }
                } else {
                    io(e)
                }
            })?;
        // The mode above is filtered by the umask; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.write_all(b"\n").map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(())
    }

    /// Reads a key file, refusing it if group or others can read it, or if it is malformed.
    pub fn read(path: &Path) -> Result<Self, KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let malformed = |reason: String| KeyFileError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        let meta = fs::metadata(path).map_err(io)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Permissive {
                path: path.to_path_buf(),
                mode,
            });
        }
        if meta.len() > MAX_KEY_FILE_LEN {
            return Err(malformed(format!(
                "{} bytes is larger than a key file can be",
                meta.len()
            )));
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                malformed("not UTF-8 text".into())
            } else {
                io(e)
            }
        })?);
        let json: KeyFileJson =
            serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
        let secret = Zeroizing::new(
            hex::decode(&json.secret_key).map_err(|e| malformed(format!("secret_key: {e}")))?,
        );
        let keypair = Keypair::from_secret_bytes(&secret)
            .map_err(|e| malformed(format!("secret_key: {e}")))?;
        let public = PublicKey::from_hex(&json.public_key)
            .map_err(|e| malformed(format!("public_key: {e}")))?;
        if public != keypair.public() {
            return Err(malformed("public_key does not belong to secret_key".into()));
        }
        if let Some(peer_id) = &json.peer_id
            && *peer_id != public.peer_id().to_string()
        {
            return Err(malformed("peer_id does not belong to the key".into()));
        }
        Ok(Self {
            kind: json.kind,
            keypair,
        })
    }

    /// Reads a key file and checks that it holds a key of `kind`.
    pub fn read_kind(path: &Path, kind: KeyKind) -> Result<Keypair, KeyFileError> {
        let file = Self::read(path)?;
        if file.kind != kind {
            return Err(KeyFileError::Malformed {
                path: path.to_path_buf(),
                reason: format!("holds a {}, expected a {kind}", file.kind),
            });
        }
        Ok(file.keypair)
    }
}
