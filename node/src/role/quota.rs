//! Who may send a miner how many queries: the validators of its subnet (permit holders that set
//! weights lately) share its capacity in proportion to their stake, read from the finalized state;
//! every other caller gets a small rate, and the operator may set any hotkey's rate.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use meshmind_p2p::{PeerId, RateLimiter};
use meshmind_protocols::PublicKey;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::state::{Key, State};

/// The label of callers without a quota of their own.
const OTHERS: &str = "others";

/// What `stake` of `total` gets of `capacity`: its proportional share, at least 1 (0 when nobody
/// has stake).
pub fn stake_share(capacity: u32, stake: u64, total: u64) -> u32 {
    if total == 0 || stake == 0 {
        return 0;
    }
    let share = u128::from(capacity) * u128::from(stake.min(total)) / u128::from(total);
    u32::try_from(share).unwrap_or(u32::MAX).max(1)
}

/// A miner's admission rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaPolicy {
    /// Queries per second the subnet's validators share, by stake.
    pub capacity: u32,
    /// Queries per second from any other caller.
    pub others: u32,
    /// Rates the operator set by hotkey, over what stake gives.
    pub overrides: BTreeMap<Key, u32>,
}

impl QuotaPolicy {
    /// Defaults: 8,000 queries a second shared by stake, 50 from anyone else, no overrides.
    pub fn new() -> Self {
        Self {
            capacity: 8_000,
            others: 50,
            overrides: BTreeMap::new(),
        }
    }
}

impl Default for QuotaPolicy {
    fn default() -> Self {
        Self::new()
    }
}

/// One caller's quota and what it used, as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaView {
    /// The caller's hotkey (hex), or `others` for every caller without a quota of its own.
    pub caller: String,
    /// Stake behind it on the subnet (0 for `others`).
    pub stake: u64,
    /// Queries a second it may send (bursts of twice as many).
    pub rate: u32,
    /// Whether the operator set the rate.
    pub set_by_operator: bool,
    /// Queries admitted since the node started.
    pub admitted: u64,
    /// Queries refused at the quota since the node started.
    pub refused: u64,
}

/// Every quota of a miner, as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotasView {
    /// The finalized epoch the stakes were read at; `None` before the first one.
    pub epoch: Option<u64>,
    /// Queries per second the subnet's validators share.
    pub capacity: u32,
    /// Callers with a quota of their own, then `others`.
    pub callers: Vec<QuotaView>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallerLabel {
    caller: String,
}

/// The quota metrics, by caller.
#[derive(Clone, Default)]
struct QuotaMetrics {
    rate: Family<CallerLabel, Gauge>,
    admitted: Family<CallerLabel, Counter>,
    refused: Family<CallerLabel, Counter>,
}

impl QuotaMetrics {
    /// An entry counting into the counters of `key` (`None`: every other caller).
    fn entry(&self, key: Option<&Key>) -> Entry {
        let label = label(key);
        Entry {
            admitted: self.admitted.get_or_create(&label).clone(),
            refused: self.refused.get_or_create(&label).clone(),
            ..Entry::default()
        }
    }
}

/// One caller's quota, and its counters (shared with the metrics, so counts survive quota
/// changes).
#[derive(Debug, Clone, Default)]
struct Entry {
    stake: u64,
    rate: u32,
    set_by_operator: bool,
    admitted: Counter,
    refused: Counter,
}

/// A miner's quotas and the buckets that enforce them.
pub struct Quotas {
    policy: QuotaPolicy,
    epoch: Option<u64>,
    callers: HashMap<Key, Entry>,
    /// The peer id of each caller with a quota of its own, worked out once per change.
    peers: HashMap<PeerId, Key>,
    others: Entry,
    limiter: RateLimiter<PeerId>,
    metrics: QuotaMetrics,
}

impl Quotas {
    /// Quotas under `policy`; until the first finalized state only the operator's are known.
    pub fn new(policy: QuotaPolicy) -> Self {
        let metrics = QuotaMetrics::default();
        let mut quotas = Self {
            limiter: RateLimiter::new(policy.others, policy.others.saturating_mul(2)),
            others: Entry {
                rate: policy.others,
                ..metrics.entry(None)
            },
            policy,
            epoch: None,
            callers: HashMap::new(),
            peers: HashMap::new(),
            metrics,
        };
        quotas.set_permits(&[]);
        quotas
    }

    /// Registers the quota metrics in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "miner_quota_rate",
            "Queries per second a caller may send this miner",
            self.metrics.rate.clone(),
        );
        registry.register(
            "miner_quota_admitted",
            "Queries this miner admitted, by caller",
            self.metrics.admitted.clone(),
        );
        registry.register(
            "miner_quota_refused",
            "Queries this miner refused at the caller's quota, by caller",
            self.metrics.refused.clone(),
        );
    }

    /// Follows the finalized `state` of `subnet`: recomputes the quotas when its epoch is new.
    pub fn follow(&mut self, state: &State, subnet: u32) {
        if self.epoch == Some(state.epoch) {
            return;
        }
        self.epoch = Some(state.epoch);
        self.set_permits(&state.validators(subnet));
    }

    /// Sets the permit holders and their stake; the operator's rates stay over them.
    fn set_permits(&mut self, permits: &[(Key, u64)]) {
        let total = permits
            .iter()
            .fold(0u64, |sum, (_, s)| sum.saturating_add(*s));
        let mut callers: HashMap<Key, Entry> = permits
            .iter()
            .map(|&(key, stake)| {
                let rate = stake_share(self.policy.capacity, stake, total);
                (
                    key,
                    Entry {
                        stake,
                        rate,
                        ..self.metrics.entry(Some(&key))
                    },
                )
            })
            .collect();
        for (&key, &rate) in &self.policy.overrides {
            let entry = callers
                .entry(key)
                .or_insert_with(|| self.metrics.entry(Some(&key)));
            entry.rate = rate;
            entry.set_by_operator = true;
        }
        self.peers = callers
            .keys()
            .filter_map(|key| Some((PublicKey::from_bytes(&key.0).ok()?.peer_id(), *key)))
            .collect();
        for key in self.callers.keys().filter(|k| !callers.contains_key(k)) {
            self.metrics.rate.remove(&label(Some(key)));
        }
        for (key, entry) in &callers {
            let rate = i64::from(entry.rate);
            self.metrics.rate.get_or_create(&label(Some(key))).set(rate);
        }
        let others = i64::from(self.others.rate);
        self.metrics.rate.get_or_create(&label(None)).set(others);
        self.callers = callers;
    }

    /// Takes one query from `peer` at `now`; false when it is over its quota.
    pub fn admit(&mut self, peer: PeerId, now: Instant) -> bool {
        let own = self.peers.get(&peer).and_then(|k| self.callers.get(k));
        let (entry, allowed) = match own {
            Some(entry) => {
                let (rate, burst) = (entry.rate, entry.rate.saturating_mul(2));
                (entry, self.limiter.allow_with(peer, now, rate, burst))
            }
            None => (&self.others, self.limiter.allow(peer, now)),
        };
        match allowed {
            true => entry.admitted.inc(),
            false => entry.refused.inc(),
        };
        allowed
    }

    /// The quotas and their use, biggest rate first, then `others`.
    pub fn view(&self) -> QuotasView {
        let row = |caller: String, e: &Entry| QuotaView {
            caller,
            stake: e.stake,
            rate: e.rate,
            set_by_operator: e.set_by_operator,
            admitted: e.admitted.get(),
            refused: e.refused.get(),
        };
        let mut callers: Vec<QuotaView> = self
            .callers
            .iter()
            .map(|(key, e)| row(key.to_hex(), e))
            .collect();
        callers.sort_by(|a, b| b.rate.cmp(&a.rate).then(a.caller.cmp(&b.caller)));
        callers.push(row(OTHERS.into(), &self.others));
        QuotasView {
            epoch: self.epoch,
            capacity: self.policy.capacity,
            callers,
        }
    }
}

fn label(key: Option<&Key>) -> CallerLabel {
    CallerLabel {
        caller: key.map_or_else(|| OTHERS.to_string(), Key::to_hex),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshmind_protocols::Keypair;

    fn key(keypair: &Keypair) -> Key {
        Key(keypair.public().to_bytes())
    }

    #[test]
    fn shares_follow_stake_and_never_round_to_nothing() {
        assert_eq!(stake_share(8_000, 3, 4), 6_000);
        assert_eq!(stake_share(8_000, 1, 1_000_000), 1);
        assert_eq!(stake_share(8_000, 0, 10), 0);
        assert_eq!(stake_share(8_000, 5, 0), 0);
        assert_eq!(stake_share(u32::MAX, u64::MAX, u64::MAX), u32::MAX);
    }

    #[test]
    fn permit_holders_share_capacity_by_stake_and_others_get_the_small_rate() {
        let (big, small, stranger, vip) = (
            Keypair::generate().unwrap(),
            Keypair::generate().unwrap(),
            Keypair::generate().unwrap(),
            Keypair::generate().unwrap(),
        );
        let mut policy = QuotaPolicy {
            capacity: 100,
            others: 5,
            overrides: BTreeMap::new(),
        };
        policy.overrides.insert(key(&vip), 30);
        let mut quotas = Quotas::new(policy);
        quotas.set_permits(&[(key(&big), 3_000), (key(&small), 1_000)]);
        let now = Instant::now();
        let taken = |quotas: &mut Quotas, who: &Keypair| {
            (0..1_000)
                .filter(|_| quotas.admit(who.peer_id(), now))
                .count()
        };
        // Bursts of twice the rate: 75/s -> 150, 25/s -> 50, others 5/s -> 10, the operator's 30/s.
        assert_eq!(taken(&mut quotas, &big), 150);
        assert_eq!(taken(&mut quotas, &small), 50);
        assert_eq!(taken(&mut quotas, &stranger), 10);
        assert_eq!(taken(&mut quotas, &vip), 60);
        let view = quotas.view();
        let rates: Vec<(u32, bool, u64, u64)> = view
            .callers
            .iter()
            .map(|r| (r.rate, r.set_by_operator, r.admitted, r.refused))
            .collect();
        assert_eq!(
            rates,
            vec![
                (75, false, 150, 850),
                (30, true, 60, 940),
                (25, false, 50, 950),
                (5, false, 10, 990)
            ]
        );
        assert_eq!(view.callers.last().map(|r| r.caller.as_str()), Some(OTHERS));
        // A stake change moves the quotas and keeps the counts.
        quotas.set_permits(&[(key(&small), 1_000)]);
        let view = quotas.view();
        assert_eq!(view.callers[0].rate, 100);
        assert_eq!(view.callers[0].admitted, 50);
        assert_eq!(view.callers.len(), 3);
    }
}
