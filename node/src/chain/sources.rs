//! Which peers a lagging node fetches finalized snapshots from. A peer that stalls or answers
//! with nothing is avoided for a while, longer each time; one that serves a snapshot that does
//! not check (a forged certificate) is cut off.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use meshmind_p2p::PeerId;

/// How long a peer is first avoided after a fetch from it failed.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(15);
/// The longest a peer is avoided after repeated failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// How long a peer that served an invalid snapshot stays blocked.
pub const BAN: Duration = Duration::from_secs(60 * 60);
/// Peers remembered at most; expired entries are forgotten first.
const MAX_TRACKED: usize = 4096;

/// A peer's record of failed fetches.
#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: u32,
    until: Instant,
}

/// The peers to sync from, and those to avoid for now.
#[derive(Debug, Default)]
pub struct SyncSources {
    avoided: HashMap<PeerId, Strikes>,
}

impl SyncSources {
    /// Whether a fetch may be asked of `peer` at `now`.
    pub fn usable(&self, peer: &PeerId, now: Instant) -> bool {
        self.avoided.get(peer).is_none_or(|s| s.until <= now)
    }

    /// `peer` delivered snapshots that applied: its record is cleared.
    pub fn delivered(&mut self, peer: &PeerId) {
        self.avoided.remove(peer);
    }

    /// A fetch from `peer` stalled, failed or brought nothing usable: it is avoided for
    /// [`FIRST_BACKOFF`], doubled on each further failure up to [`MAX_BACKOFF`]; returns how long.
    pub fn failed(&mut self, peer: PeerId, now: Instant) -> Duration {
        self.make_room(now);
        let count = self
            .avoided
            .get(&peer)
            .map_or(1, |s| s.count.saturating_add(1));
        let backoff = FIRST_BACKOFF
            .saturating_mul(1u32 << (count - 1).min(16))
            .min(MAX_BACKOFF);
        self.avoided.insert(
            peer,
            Strikes {
                count,
                until: now + backoff,
            },
        );
        backoff
    }

    /// `peer` served a snapshot that does not check: it is avoided for [`BAN`] (the caller also
    /// blocks it on the network).
    pub fn invalid(&mut self, peer: PeerId, now: Instant) {
        self.make_room(now);
        self.avoided.insert(
            peer,
            Strikes {
                count: u32::MAX,
                until: now + BAN,
            },
        );
    }

    fn make_room(&mut self, now: Instant) {
        if self.avoided.len() >= MAX_TRACKED {
            self.avoided.retain(|_, s| s.until > now);
        }
        if self.avoided.len() >= MAX_TRACKED {
            // All still avoided: forget the one whose time is up soonest.
            if let Some(peer) = self
                .avoided
                .iter()
                .min_by_key(|(_, s)| s.until)
                .map(|(p, _)| *p)
            {
                self.avoided.remove(&peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(seed: u8) -> PeerId {
        meshmind_protocols::Keypair::from_secret(&[seed; 32])
            .public()
            .peer_id()
    }

    #[test]
    fn a_failing_peer_is_avoided_longer_each_time_until_it_delivers() {
        let mut sources = SyncSources::default();
        let (staller, honest) = (peer(1), peer(2));
        let now = Instant::now();
        assert!(sources.usable(&staller, now));
        assert_eq!(sources.failed(staller, now), FIRST_BACKOFF);
        assert!(!sources.usable(&staller, now));
        assert!(sources.usable(&honest, now), "others are still asked");
        let later = now + FIRST_BACKOFF;
        assert!(sources.usable(&staller, later));
        assert_eq!(sources.failed(staller, later), FIRST_BACKOFF * 2);
        assert_eq!(sources.failed(staller, later), FIRST_BACKOFF * 4);
        for _ in 0..40 {
            sources.failed(staller, later);
        }
        assert_eq!(sources.failed(staller, later), MAX_BACKOFF, "capped");
        sources.delivered(&staller);
        assert!(sources.usable(&staller, later));
        assert_eq!(
            sources.failed(staller, later),
            FIRST_BACKOFF,
            "a fresh start"
        );
    }

    #[test]
    fn a_forger_is_avoided_for_the_ban_and_memory_stays_bounded() {
        let mut sources = SyncSources::default();
        let now = Instant::now();
        let forger = peer(3);
        sources.invalid(forger, now);
        assert!(!sources.usable(&forger, now + BAN - Duration::from_secs(1)));
        assert!(sources.usable(&forger, now + BAN));
        for i in 0..(MAX_TRACKED as u32 + 100) {
            let key = meshmind_protocols::Keypair::from_secret(&{
                let mut s = [0u8; 32];
                s[..4].copy_from_slice(&i.to_le_bytes());
                s[31] = 9;
                s
            })
            .public()
            .peer_id();
            sources.failed(key, now);
        }
        assert!(sources.avoided.len() <= MAX_TRACKED);
    }
}
