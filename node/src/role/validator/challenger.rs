//! The validator's challenger: checkable reference tasks sent to every live miner, each answer
//! folded into the miner's score.

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use meshmind_protocols::{PublicKey, QueryId, v1};

use super::metagraph::MinerEntry;
use super::service::{Check, Validator, lock};
use crate::role::reference;
use crate::scoring::Outcome;

impl Validator {
    fn query(&self, task: &str, payload: Vec<u8>, deadline: Duration) -> v1::Query {
        v1::Query::new(
            self.config.network_id,
            self.config.subnet,
            task,
            payload,
            u32::try_from(deadline.as_millis()).unwrap_or(u32::MAX),
        )
    }

    /// Challenges every live miner once per reference task it serves and scores the answers.
    pub async fn challenge_all(&self, now_ms: u64) -> Vec<(u32, Outcome)> {
        let miners: Vec<MinerEntry> = lock(&self.metagraph).miners().cloned().collect();
        let deadline = self.config.challenge_deadline;
        let mut pending = FuturesUnordered::new();
        for miner in miners {
            let tasks: Vec<String> = reference::TASKS
                .iter()
                .filter(|t| miner.serves(t, now_ms))
                .map(|t| t.to_string())
                .collect();
            if tasks.is_empty() {
                // An expired or non-reference miner earns nothing this round.
                pending.push(
                    Box::pin(async move { (miner.uid, miner.key, Outcome::Missed) })
                        as std::pin::Pin<
                            Box<
                                dyn std::future::Future<Output = (u32, PublicKey, Outcome)>
                                    + Send
                                    + '_,
                            >,
                        >,
                );
                continue;
            }
            for task in tasks {
                // Unpredictable, so a miner cannot answer challenges from a table made in advance.
                let seed = QueryId::random();
                let nonce = u64::from_le_bytes(seed.0[..8].try_into().unwrap_or_default());
                let Some((input, expected)) = reference::challenge(&task, nonce) else {
                    continue;
                };
                let query = self.query(&task, input, deadline);
                let miner = miner.target();
                pending.push(Box::pin(async move {
                    let started = Instant::now();
                    let outcome = match self.ask(&miner, &query, Check::Always).await {
                        Ok(response) if response.output == expected => Outcome::Correct {
                            latency: started.elapsed(),
                            deadline,
                        },
                        Ok(_) => Outcome::Wrong,
                        Err(failure) => failure.outcome(),
                    };
                    (miner.uid, miner.key, outcome)
                }));
            }
        }
        let mut outcomes = Vec::new();
        while let Some((uid, key, outcome)) = pending.next().await {
            lock(&self.scores).record(key, outcome);
            outcomes.push((uid, outcome));
        }
        outcomes
    }
}
