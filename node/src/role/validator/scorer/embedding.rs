//! The `embedding` scorer: a challenge is a sentence the validator embeds itself; an answer scores
//! by its cosine to that reference, from 0 at [`FLOOR`] or below to 1 at [`EXACT`] or above.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use meshmind_models::{DIM, Embedder};

use super::{
    Answer, Challenge, ChallengeFuture, ScoreFuture, Scorer, ScorerError, corpus, random_u64,
};

/// A cosine at or below this scores 0: a random vector is near 0, a slightly blurred one above.
pub const FLOOR: f32 = 0.9;
/// A cosine at or above this scores 1: the same model on another machine differs only by rounding.
pub const EXACT: f32 = 0.999;

/// How long after a failed load the model is looked for again (someone may fetch it meanwhile).
const RELOAD_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Scores embeddings against the validator's own run of the model, loaded on first use.
pub struct Embedding {
    dir: PathBuf,
    model: Mutex<Loaded>,
}

/// The model, once loaded, or when loading it last failed and why.
enum Loaded {
    Not,
    Yes(Arc<Embedder>),
    Failed(Instant, String),
}

impl Embedding {
    /// A scorer using the model unpacked in `dir` (loaded when the first challenge is made).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            model: Mutex::new(Loaded::Not),
        }
    }

    /// A scorer sharing an already loaded `model`.
    pub fn with_model(model: Arc<Embedder>) -> Self {
        Self {
            dir: PathBuf::new(),
            model: Mutex::new(Loaded::Yes(model)),
        }
    }

    async fn model(&self) -> Result<Arc<Embedder>, ScorerError> {
        {
            let loaded = self.model.lock().unwrap_or_else(|p| p.into_inner());
            match &*loaded {
                Loaded::Yes(model) => return Ok(model.clone()),
                Loaded::Failed(at, why) if at.elapsed() < RELOAD_AFTER => {
                    return Err(ScorerError::Unavailable(why.clone()));
                }
                _ => {}
            }
        }
        let dir = self.dir.clone();
        let loaded = tokio::task::spawn_blocking(move || Embedder::load(&dir).map(Arc::new))
            .await
            .map_err(|e| ScorerError::Unavailable(e.to_string()))?;
        let mut slot = self.model.lock().unwrap_or_else(|p| p.into_inner());
        match loaded {
            Ok(model) => {
                *slot = Loaded::Yes(model.clone());
                Ok(model)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the embedding scorer has no model; embed miners are not challenged");
                *slot = Loaded::Failed(Instant::now(), e.to_string());
                Err(ScorerError::Unavailable(e.to_string()))
            }
        }
    }
}

impl Embedding {
    /// A challenge of `text`, with the model's own vector for it.
    async fn reference(&self, text: String) -> Result<Challenge, ScorerError> {
        let model = self.model().await?;
        let input = text.clone().into_bytes();
        let reference = tokio::task::spawn_blocking(move || model.embed(&[text]))
            .await
            .map_err(|e| ScorerError::Unavailable(e.to_string()))?
            .map_err(|e| ScorerError::Unavailable(e.to_string()))?
            .pop()
            .ok_or_else(|| ScorerError::Unavailable("no vector".into()))?;
        Ok(Challenge {
            input,
            // As the gateway's `/v1/embeddings` queries carry it.
            content_type: meshmind_protocols::media::TEXT.to_string(),
            expected: meshmind_models::to_le_bytes(&reference),
        })
    }
}

/// The score of a vector whose cosine to the reference is `cos`.
pub(super) fn quality(cos: f32) -> f64 {
    f64::from(((cos - FLOOR) / (EXACT - FLOOR)).clamp(0.0, 1.0))
}

impl Scorer for Embedding {
    fn name(&self) -> &'static str {
        "embedding"
    }

    fn challenge<'a>(&'a self, _task: &'a str) -> ChallengeFuture<'a> {
        Box::pin(async move { self.reference(corpus::sentence(random_u64())).await })
    }

    fn judges_organic(&self) -> bool {
        true
    }

    fn organic<'a>(
        &'a self,
        _task: &'a str,
        input: &'a [u8],
        _content_type: &'a str,
    ) -> ChallengeFuture<'a> {
        Box::pin(async move {
            let text = std::str::from_utf8(input)
                .map_err(|_| ScorerError::UnknownTask("not a text".into()))?;
            if text.len() > meshmind_models::MAX_TEXT_BYTES {
                return Err(ScorerError::UnknownTask("text too long".into()));
            }
            self.reference(text.to_string()).await
        })
    }

    fn score<'a>(
        &'a self,
        _task: &'a str,
        challenge: &'a Challenge,
        answers: &'a [Answer],
    ) -> ScoreFuture<'a> {
        Box::pin(async move {
            let reference = meshmind_models::from_le_bytes(&challenge.expected, DIM)
                .map_err(|e| ScorerError::Unavailable(e.to_string()))?;
            Ok(answers
                .iter()
                .map(|a| match meshmind_models::from_le_bytes(&a.output, DIM) {
                    Ok(v) => quality(meshmind_models::cosine(&v, &reference)),
                    Err(_) => 0.0,
                })
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_runs_from_floor_to_exact() {
        assert_eq!(quality(0.0), 0.0);
        assert_eq!(quality(-1.0), 0.0);
        assert_eq!(quality(FLOOR), 0.0);
        assert_eq!(quality(1.0), 1.0);
        assert_eq!(quality(EXACT), 1.0);
        let mid = quality((FLOOR + EXACT) / 2.0);
        assert!((mid - 0.5).abs() < 1e-3, "{mid}");
    }
}
