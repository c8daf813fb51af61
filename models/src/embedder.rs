//! all-MiniLM-L6-v2 on the CPU: tokenize, run the 6-layer BERT encoder, mean-pool over the tokens,
//! normalize to unit length.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Dimensions of an embedding.
pub const DIM: usize = 384;
/// Tokens of a text the model reads (the model's `max_seq_length`); the rest is cut off.
pub const MAX_TOKENS: usize = 256;
/// Longest text accepted, in bytes: more could not fit in [`MAX_TOKENS`] tokens anyway, and
/// tokenizing it would cost the caller nothing and us a lot.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Most texts embedded in one batch.
pub const MAX_BATCH: usize = 256;

/// Why the model could not be loaded or could not embed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model file is missing or unreadable.
    #[error("model file {path}: {source} (run scripts/fetch-model.sh to fetch the model)")]
    File {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is not a BERT configuration of the expected size.
    #[error("model config {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The tokenizer failed to load or to encode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The tensor computation failed (bad weights, shapes).
    #[error("model: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The input is not acceptable (too long, too many texts).
    #[error("invalid input: {0}")]
    Input(String),
}

/// The sentence-embedding model, loaded once and shared: [`Embedder::embed`] takes `&self`.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("dim", &DIM).finish()
    }
}

fn read(path: PathBuf) -> Result<Vec<u8>, ModelError> {
    std::fs::read(&path).map_err(|source| ModelError::File { path, source })
}

impl Embedder {
    /// Loads the model unpacked in `dir` (`config.json`, `tokenizer.json`, `model.safetensors`).
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let config_path = dir.join("config.json");
        let bad = |reason: String| ModelError::Config {
            path: config_path.clone(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(&read(config_path.clone())?).map_err(|e| bad(e.to_string()))?;
        let hidden = value.get("hidden_size").and_then(serde_json::Value::as_u64);
        if hidden != Some(DIM as u64) {
            return Err(bad(format!("hidden_size {hidden:?}, expected {DIM}")));
        }
        let config: Config = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        let mut tokenizer = Tokenizer::from_bytes(read(dir.join("tokenizer.json"))?)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        let device = Device::Cpu;
        let weights = read(dir.join("model.safetensors"))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)?;
        let model = BertModel::load(vb, &config)?;
        Ok(Self {
            model,
            tokenizer,
            device,
        })
    }

    /// Loads the model from [`crate::default_dir`].
    pub fn load_default() -> Result<Self, ModelError> {
        Self::load(&crate::default_dir())
    }

    /// The unit-length embedding of each of `texts`, in order (at most [`MAX_BATCH`] texts of at
    /// most [`MAX_TEXT_BYTES`] each; longer texts are read up to [`MAX_TOKENS`] tokens).
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        if texts.len() > MAX_BATCH {
            return Err(ModelError::Input(format!(
                "{} texts in one batch, at most {MAX_BATCH}",
                texts.len()
            )));
        }
        if let Some((i, text)) = texts
            .iter()
            .enumerate()
            .find(|(_, t)| t.as_ref().len() > MAX_TEXT_BYTES)
        {
            return Err(ModelError::Input(format!(
                "text {i} is {} bytes, at most {MAX_TEXT_BYTES}",
                text.as_ref().len()
            )));
        }
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let rows = encodings.len();
        let width = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(rows * width);
        let mut mask = Vec::with_capacity(rows * width);
        for encoding in &encodings {
            ids.extend_from_slice(encoding.get_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (rows, width), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, width), &self.device)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        // Mean over the real tokens only: padding is masked out of the sum and the count.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
        let pooled = summed.broadcast_div(&counts)?;
        let mut vectors = pooled.to_vec2::<f32>()?;
        vectors.iter_mut().for_each(|v| crate::normalize(v));
        Ok(vectors)
    }
}
