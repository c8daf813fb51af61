//! The `embed` backend: sentence embeddings from the model in `meshmind-models`, computed on a
//! thread of their own in batches of the queries waiting, behind a bounded queue.

use std::sync::Arc;

use meshmind_models::{DIM, Embedder, MAX_TEXT_BYTES};
use tokio::sync::{mpsc, oneshot};

use super::backend::{AnswerFuture, BackendError, MinerBackend};

/// The task this backend serves: UTF-8 text in, [`DIM`] little-endian f32 values out.
pub const TASK: &str = "embed";
/// Most queries embedded in one pass of the model.
const BATCH: usize = 32;

struct Job {
    text: String,
    reply: oneshot::Sender<Result<Vec<f32>, String>>,
}

/// Serves [`TASK`] with the sentence-embedding model.
pub struct Embed {
    jobs: mpsc::Sender<Job>,
    noise: f32,
}

impl Embed {
    /// Starts the model's thread with room for `queue` waiting texts. `noise`, for testing
    /// degraded miners, adds a uniform value in `[-noise, noise]` to every component before the
    /// vector is normalized again (0 serves the model's vectors as they are).
    pub fn start(model: Arc<Embedder>, queue: usize, noise: f32) -> std::io::Result<Self> {
        let (jobs, mut waiting) = mpsc::channel::<Job>(queue.max(1));
        std::thread::Builder::new()
            .name("embed".into())
            .spawn(move || {
                while let Some(first) = waiting.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        match waiting.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    // Texts whose reader went away (deadline passed) are not computed.
                    batch.retain(|job| !job.reply.is_closed());
                    let texts: Vec<&str> = batch.iter().map(|job| job.text.as_str()).collect();
                    match embed_guarded(&model, &texts) {
                        Ok(vectors) => {
                            for (job, vector) in batch.into_iter().zip(vectors) {
                                let _ = job.reply.send(Ok(vector));
                            }
                        }
                        // One bad text must not fail the others: each is tried alone.
                        Err(e) => {
                            tracing::warn!(error = %e, texts = texts.len(), "embedding a batch failed");
                            for job in batch {
                                let alone = embed_guarded(&model, &[job.text.as_str()])
                                    .and_then(|mut v| v.pop().ok_or_else(|| "no vector".into()));
                                let _ = job.reply.send(alone);
                            }
                        }
                    }
                }
            })?;
        Ok(Self {
            jobs,
            noise: noise.max(0.0),
        })
    }

    fn perturb(&self, vector: &mut [f32]) {
        if self.noise == 0.0 {
            return;
        }
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        let mut state = u64::from_le_bytes(seed) | 1;
        for v in vector.iter_mut() {
            // xorshift64*: cheap, and good enough to blur a vector.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            let unit = r as f32 / (1u64 << 24) as f32;
            *v += (unit * 2.0 - 1.0) * self.noise;
        }
        meshmind_models::normalize(vector);
    }
}

/// `texts` embedded, with a panic in the model turned into an error so the thread lives on.
fn embed_guarded(model: &Embedder, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.embed(texts))) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("the model panicked".into()),
    }
}

impl MinerBackend for Embed {
    fn name(&self) -> &'static str {
        "embed"
    }

    fn content_type(&self, _task: &str) -> &'static str {
        meshmind_protocols::media::F32LE
    }

    fn answer<'a>(&'a self, task: &'a str, input: &'a [u8]) -> AnswerFuture<'a> {
        Box::pin(async move {
            if task != TASK {
                return Err(BackendError::UnknownTask(task.to_string()));
            }
            if input.len() > MAX_TEXT_BYTES {
                return Err(BackendError::InvalidInput(format!(
                    "text of {} bytes is over {MAX_TEXT_BYTES}",
                    input.len()
                )));
            }
            let text = std::str::from_utf8(input)
                .map_err(|_| BackendError::InvalidInput("text is not UTF-8".into()))?
                .to_string();
            let (reply, answer) = oneshot::channel();
            self.jobs
                .try_send(Job { text, reply })
                .map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => {
                        BackendError::Busy("the embedding queue is full".into())
                    }
                    mpsc::error::TrySendError::Closed(_) => {
                        BackendError::Failed("the embedding thread stopped".into())
                    }
                })?;
            let mut vector = answer
                .await
                .map_err(|_| BackendError::Failed("the embedding thread stopped".into()))?
                .map_err(BackendError::Failed)?;
            debug_assert_eq!(vector.len(), DIM);
            self.perturb(&mut vector);
            Ok(meshmind_models::to_le_bytes(&vector))
        })
    }
}
