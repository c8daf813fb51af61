//! The validator's challenger: each round, one challenge per scored task, made by the task's
//! scorer and sent to every live miner serving the task; the scorer's judgement of each answer is
//! folded into the miner's score.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use meshmind_protocols::{PublicKey, v1};

use super::metagraph::{MinerEntry, Target};
use super::scorer::{Answer, Challenge, Scorer, ScorerError};
use super::service::{AskError, Check, Organic, Validator, lock};
use crate::scoring::Outcome;

/// Longest a scorer may take to make a challenge or to score a round's answers.
const SCORER_TIMEOUT: Duration = Duration::from_secs(10);

fn timed_out() -> ScorerError {
    ScorerError::Unavailable(format!("no reply within {SCORER_TIMEOUT:?}"))
}

impl Validator {
    /// A query carrying `challenge` for `task`, under a fresh random id.
    fn query(&self, task: &str, challenge: &Challenge, deadline: Duration) -> v1::Query {
        v1::Query {
            content_type: challenge.content_type.clone(),
            ..v1::Query::new(
                self.config.network_id,
                self.config.subnet,
                task,
                challenge.input.clone(),
                u32::try_from(deadline.as_millis()).unwrap_or(u32::MAX),
            )
        }
    }

    /// Challenges every live miner once per scored task it serves and scores the answers; a miner
    /// serving no scored task is scored as missed.
    pub async fn challenge_all(&self, now_ms: u64) -> Vec<(u32, Outcome)> {
        let miners: Vec<MinerEntry> = lock(&self.metagraph).miners().cloned().collect();
        let mut by_task: BTreeMap<String, Vec<Target>> = BTreeMap::new();
        let mut outcomes = Vec::new();
        for miner in &miners {
            let mut scored = false;
            for task in self.config.scorers.tasks() {
                if miner.serves(task, now_ms) {
                    by_task
                        .entry(task.to_string())
                        .or_default()
                        .push(miner.target());
                    scored = true;
                }
            }
            if !scored {
                // An expired miner, or one whose tasks no scorer here judges, earns nothing.
                outcomes.push((miner.uid, miner.key, Outcome::Missed));
            }
        }
        let mut rounds: FuturesUnordered<BoxFuture<'_, Vec<(u32, PublicKey, Outcome)>>> =
            FuturesUnordered::new();
        for (task, targets) in by_task {
            let Some(scorer) = self.config.scorers.get(&task).cloned() else {
                continue;
            };
            rounds.push(Box::pin(async move {
                self.challenge_task(scorer.as_ref(), &task, &targets).await
            }));
        }
        // Routed answers drawn since the last round are judged as challenges' are.
        // At most one per miner a round, so a busy miner's many routed answers do not swamp its
        // challenges.
        let mut organic = std::mem::take(&mut *lock(&self.organic));
        let mut seen = std::collections::HashSet::new();
        organic.retain(|sample| seen.insert(sample.miner));
        for sample in organic {
            rounds.push(Box::pin(self.judge_organic(sample)));
        }
        while let Some(round) = rounds.next().await {
            outcomes.extend(round);
        }
        let mut scores = lock(&self.scores);
        outcomes
            .into_iter()
            .map(|(uid, key, outcome)| {
                scores.record(key, outcome);
                (uid, outcome)
            })
            .collect()
    }

    /// One challenge for `task`, sent to each of `targets` under a query id of its own, and the
    /// outcome of each. A scorer that cannot make a challenge or judge the answers scores nobody.
    async fn challenge_task(
        &self,
        scorer: &dyn Scorer,
        task: &str,
        targets: &[Target],
    ) -> Vec<(u32, PublicKey, Outcome)> {
        let made = tokio::time::timeout(SCORER_TIMEOUT, scorer.challenge(task)).await;
        let challenge = match made.unwrap_or_else(|_| Err(timed_out())) {
            Ok(challenge) => challenge,
            Err(e) => {
                tracing::debug!(task, scorer = scorer.name(), error = %e, "no challenge this round");
                return Vec::new();
            }
        };
        let deadline = self.config.challenge_deadline;
        // A scorer's bad challenge (too large, say) is its fault, not the miners'.
        let probe = self.query(task, &challenge, deadline);
        if let Err(e) = meshmind_protocols::Validate::validate(&probe) {
            tracing::warn!(task, scorer = scorer.name(), error = %e, "the scorer's challenge is not a valid query");
            return Vec::new();
        }
        let asked: Vec<(Target, Result<Answer, AskError>)> =
            futures::future::join_all(targets.iter().map(|target| {
                let query = self.query(task, &challenge, deadline);
                async move {
                    let started = Instant::now();
                    let answer = self
                        .ask(target, &query, Check::Always)
                        .await
                        .map(|response| Answer {
                            miner: target.key,
                            output: response.output,
                            elapsed: started.elapsed(),
                        });
                    (*target, answer)
                }
            }))
            .await;
        self.judge(scorer, task, &challenge, asked, deadline).await
    }

    /// The outcome of a routed answer, judged by its task's scorer against the client's input,
    /// with the time the validator waited for it.
    async fn judge_organic(&self, sample: Organic) -> Vec<(u32, PublicKey, Outcome)> {
        let task = sample.query.task.as_str();
        let Some(scorer) = self.config.scorers.get(task).cloned() else {
            return Vec::new();
        };
        let target = lock(&self.metagraph)
            .miners()
            .find(|m| m.key == sample.miner)
            .map(MinerEntry::target);
        let Some(target) = target else {
            return Vec::new();
        };
        let made = scorer.organic(task, &sample.query.payload, &sample.query.content_type);
        let challenge = match tokio::time::timeout(SCORER_TIMEOUT, made).await {
            Ok(Ok(challenge)) => challenge,
            // Not every query can be judged (not a text, say): it is let go.
            _ => return Vec::new(),
        };
        let answer = Answer {
            miner: sample.miner,
            output: sample.output,
            elapsed: sample.elapsed,
        };
        let deadline = Duration::from_millis(u64::from(sample.query.deadline_ms));
        let asked = vec![(target, Ok(answer))];
        self.judge(scorer.as_ref(), task, &challenge, asked, deadline)
            .await
    }

    async fn judge(
        &self,
        scorer: &dyn Scorer,
        task: &str,
        challenge: &Challenge,
        asked: Vec<(Target, Result<Answer, AskError>)>,
        deadline: Duration,
    ) -> Vec<(u32, PublicKey, Outcome)> {
        let answers: Vec<Answer> = asked
            .iter()
            .filter_map(|(_, a)| a.as_ref().ok().cloned())
            .collect();
        let scores = if answers.is_empty() {
            Some(Vec::new())
        } else {
            let scored =
                tokio::time::timeout(SCORER_TIMEOUT, scorer.score(task, challenge, &answers)).await;
            match scored.unwrap_or_else(|_| Err(timed_out())) {
                Ok(scores) => Some(scores),
                Err(e) => {
                    tracing::warn!(task, scorer = scorer.name(), error = %e, "answers not scored this round");
                    None
                }
            }
        };
        let mut scores = scores.map(Vec::into_iter);
        asked
            .into_iter()
            .filter_map(|(target, answer)| {
                let outcome = match (answer, scores.as_mut()) {
                    (Err(failure), _) => failure.outcome(),
                    // Unscored answers count for nothing either way; failures still count.
                    (Ok(_), None) => return None,
                    (Ok(answer), Some(scores)) => match scores.next() {
                        Some(quality) if quality >= 1.0 => Outcome::Correct {
                            latency: answer.elapsed,
                            deadline,
                        },
                        Some(quality) if quality > 0.0 => Outcome::Graded {
                            quality,
                            latency: answer.elapsed,
                            deadline,
                        },
                        _ => Outcome::Wrong,
                    },
                };
                Some((target.uid, target.key, outcome))
            })
            .collect()
    }
}
