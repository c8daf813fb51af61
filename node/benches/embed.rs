//! Embedding throughput of the miner's `embed` backend against the model called directly, in the
//! same run, printed as a table.
//!
//! `cargo bench -p meshmind-node --bench embed` (needs `scripts/fetch-model.sh`). `direct` calls
//! the candle model with one text, or a batch of 32; `backend` sends the same texts through the
//! backend, one query each (32 at once for the batch row), as a miner's queries arrive. Each row
//! is the best of five timed passes over the same sentences.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meshmind_models::Embedder;
use meshmind_node::role::miner::{Embed, MinerBackend};

const PASSES: usize = 5;
const SENTENCES: usize = 64;

fn sentences() -> Vec<String> {
    (0..SENTENCES)
        .map(|i| {
            format!(
                "Sentence number {i} tells of a harbour, {} boats and a storm that came at night.",
                i * 7 % 13
            )
        })
        .collect()
}

fn best<F: FnMut()>(mut pass: F) -> Duration {
    (0..PASSES)
        .map(|_| {
            let started = Instant::now();
            pass();
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let model = Arc::new(Embedder::load_default().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2);
    }));
    let texts = sentences();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let backend = Embed::start(model.clone(), 1024, 0.0).expect("embed thread");

    let direct_1 = best(|| {
        for t in &texts {
            model.embed(&[t]).expect("embeds");
        }
    });
    let direct_32 = best(|| {
        for chunk in texts.chunks(32) {
            model.embed(chunk).expect("embeds");
        }
    });
    let backend_1 = best(|| {
        runtime.block_on(async {
            for t in &texts {
                backend.answer("embed", t.as_bytes()).await.expect("embeds");
            }
        })
    });
    let backend_32 = best(|| {
        runtime.block_on(async {
            for chunk in texts.chunks(32) {
                let all = chunk.iter().map(|t| backend.answer("embed", t.as_bytes()));
                for answer in futures::future::join_all(all).await {
                    answer.expect("embeds");
                }
            }
        })
    });
    let rate = |d: Duration| SENTENCES as f64 / d.as_secs_f64();
    println!("| batch | direct (sentences/s) | backend (sentences/s) | backend overhead |");
    println!("|---|---|---|---|");
    for (batch, direct, through) in [(1, direct_1, backend_1), (32, direct_32, backend_32)] {
        println!(
            "| {batch} | {:.0} | {:.0} | {:+.1} % |",
            rate(direct),
            rate(through),
            (through.as_secs_f64() / direct.as_secs_f64() - 1.0) * 100.0
        );
    }
}
