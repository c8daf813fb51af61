//! Hedged attempts over ranked candidates: the one race that both single and streamed answers run.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::time::Instant;

/// How many answers a hedged race waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// The first success: candidates start one at a time, the next when `hedge_after` passes or an
    /// attempt fails.
    First,
    /// Every success: all candidates start at once.
    All,
}

/// What a hedged race produced.
#[derive(Debug)]
pub struct Hedged<T, E> {
    /// Successful attempts, in the order they finished (at most one with [`Want::First`]).
    pub won: Vec<T>,
    /// Failed attempts, in the order they finished.
    pub failed: Vec<E>,
    /// Whether the deadline ended the race.
    pub timed_out: bool,
}

/// Runs `attempt(i)` for candidates `0..candidates`, best first, as `want` says, until `until`.
pub async fn hedge<T, E, F, Fut>(
    candidates: usize,
    want: Want,
    hedge_after: Duration,
    until: Instant,
    attempt: F,
) -> Hedged<T, E>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut running = FuturesUnordered::new();
    let mut next = 0;
    if want == Want::All {
        running.extend((0..candidates).map(&attempt));
        next = candidates;
    }
    let mut outcome = Hedged {
        won: Vec::new(),
        failed: Vec::new(),
        timed_out: false,
    };
    loop {
        if next < candidates && running.is_empty() {
            running.push(attempt(next));
            next += 1;
        }
        if running.is_empty() {
            return outcome;
        }
        let hedge = tokio::time::sleep(hedge_after);
        tokio::select! {
            Some(result) = running.next() => match result {
                Ok(value) => {
                    outcome.won.push(value);
                    if want == Want::First {
                        return outcome;
                    }
                }
                Err(error) => outcome.failed.push(error),
            },
            () = hedge, if next < candidates => {
                running.push(attempt(next));
                next += 1;
            }
            () = tokio::time::sleep_until(until) => {
                outcome.timed_out = true;
                return outcome;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Candidate `i` answers after `delays[i]` ms, with `Ok(i)` unless it is in `failing`; the
    /// hedge delay is 100 ms. Gaps between finishing times are wide, for loaded machines.
    async fn race(
        delays: &'static [u64],
        failing: &'static [usize],
        want: Want,
        deadline_ms: u64,
    ) -> Hedged<usize, usize> {
        let until = Instant::now() + Duration::from_millis(deadline_ms);
        hedge(
            delays.len(),
            want,
            Duration::from_millis(100),
            until,
            |i| async move {
                tokio::time::sleep(Duration::from_millis(delays[i])).await;
                if failing.contains(&i) { Err(i) } else { Ok(i) }
            },
        )
        .await
    }

    #[tokio::test]
    async fn a_slow_best_candidate_is_hedged_around() {
        let started = Instant::now();
        let out = race(&[5_000, 1, 1], &[], Want::First, 10_000).await;
        assert_eq!(out.won, vec![1]);
        assert!(!out.timed_out);
        assert!(
            started.elapsed() < Duration::from_millis(4_000),
            "waited for the slow one"
        );
    }

    #[tokio::test]
    async fn failures_move_on_at_once_and_are_kept() {
        let out = race(&[1, 1, 1], &[0, 1], Want::First, 10_000).await;
        assert_eq!(out.won, vec![2]);
        assert_eq!(out.failed, vec![0, 1]);
        let out = race(&[1, 1], &[0, 1], Want::First, 10_000).await;
        assert!(out.won.is_empty() && !out.timed_out);
        assert_eq!(out.failed, vec![0, 1]);
    }

    #[tokio::test]
    async fn all_keeps_every_success_and_the_deadline_ends_the_race() {
        let out = race(&[300, 1, 150, 10_000], &[2], Want::All, 1_500).await;
        assert_eq!(out.won, vec![1, 0]);
        assert_eq!(out.failed, vec![2]);
        assert!(out.timed_out);
        let out = race(&[], &[], Want::First, 500).await;
        assert!(out.won.is_empty() && out.failed.is_empty() && !out.timed_out);
    }
}
