//! Who may send a miner how many queries: the validators of its subnet (permit holders that set
//! weights lately) share its capacity in proportion to their stake, read from the finalized state;
//! the operator may set any hotkey's rate (an allowlist); every other caller gets a small rate, if
//! the miner admits it at all (anyone, callers with stake on the subnet, or validators only).

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

use crate::role::miner::Caller;
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

/// Which callers without a quota of their own a miner answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Admit {
    /// Anyone, at the small rate.
    Anyone,
    /// Callers whose hotkey has at least this much stake on the subnet, at the small rate.
    Staked(u64),
    /// Nobody: only the subnet's validators and the operator's hotkeys.
    ValidatorsOnly,
}

/// A miner's admission rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaPolicy {
    /// Queries per second the subnet's validators share, by stake.
    pub capacity: u32,
    /// Queries per second from any other caller admitted.
    pub others: u32,
    /// Which other callers are admitted.
    pub admit: Admit,
    /// Rates the operator set by hotkey, over what stake gives.
    pub overrides: BTreeMap<Key, u32>,
}

impl QuotaPolicy {
    /// Defaults: 8,000 queries a second shared by stake, 50 from anyone else, no overrides.
    pub fn new() -> Self {
        Self {
            capacity: 8_000,
            others: 50,
            admit: Admit::Anyone,
            overrides: BTreeMap::new(),
        }
    }
}

/// Why a miner does not take a query from a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The caller is over its quota.
    #[error("rate limit exceeded")]
    OverQuota,
    /// The miner does not answer this caller at all.
    #[error("this miner answers {0}")]
    NotAdmitted(&'static str),
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
    /// Which callers without a quota of their own are answered.
    pub admit: Admit,
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

/// The hotkey (hex) inside an ed25519 peer id, read from its bytes (an identity multihash of the
/// key's protobuf) without decoding the curve point; empty for other keys.
fn ed25519_hex(peer: &PeerId) -> String {
    const PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
    let bytes = peer.to_bytes();
    match bytes.strip_prefix(&PREFIX[..]) {
        Some(key) if key.len() == 32 => hex::encode(key),
        _ => String::new(),
    }
}

/// A miner's quotas and the buckets that enforce them.
pub struct Quotas {
    policy: QuotaPolicy,
    epoch: Option<u64>,
    callers: HashMap<Key, Entry>,
    /// The peer id of each caller with a quota of its own, worked out once per change.
    peers: HashMap<PeerId, Key>,
    /// Under [`Admit::Staked`], the peer ids of the hotkeys with enough stake on the subnet.
    staked: std::collections::HashSet<PeerId>,
    /// The stake on the subnet behind each peer id with any, and the permit holders'.
    stakes: HashMap<PeerId, u64>,
    permits: std::collections::HashSet<PeerId>,
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
            staked: std::collections::HashSet::new(),
            stakes: HashMap::new(),
            permits: std::collections::HashSet::new(),
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
        let peer = |hotkey: &Key| Some(PublicKey::from_bytes(&hotkey.0).ok()?.peer_id());
        self.stakes = state
            .stakes
            .get(&subnet)
            .into_iter()
            .flat_map(|hotkeys| hotkeys.keys())
            .filter_map(|hotkey| Some((peer(hotkey)?, state.hotkey_stake(subnet, hotkey))))
            .filter(|(_, stake)| *stake > 0)
            .collect();
        self.permits = state
            .permits(subnet)
            .iter()
            .filter_map(|(hotkey, _)| peer(hotkey))
            .collect();
        if let Admit::Staked(least) = self.policy.admit {
            self.staked = state
                .stakes
                .get(&subnet)
                .into_iter()
                .flat_map(|hotkeys| hotkeys.keys())
                .filter(|hotkey| state.hotkey_stake(subnet, hotkey) >= least)
                .filter_map(|hotkey| Some(PublicKey::from_bytes(&hotkey.0).ok()?.peer_id()))
                .collect();
        }
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

    /// Who `peer` is in the finalized state: its hotkey, stake on the subnet and permit.
    pub fn caller(&self, peer: &PeerId) -> Caller {
        Caller {
            hotkey: ed25519_hex(peer),
            stake: self.stakes.get(peer).copied().unwrap_or(0),
            permit: self.permits.contains(peer),
        }
    }

    /// Whether the finalized state has been read, so stakes are known.
    pub fn knows_stakes(&self) -> bool {
        self.epoch.is_some()
    }

    /// Takes one query from `peer` at `now`, or says why not.
    pub fn admit(&mut self, peer: PeerId, now: Instant) -> Result<(), Refusal> {
        let own = self.peers.get(&peer).and_then(|k| self.callers.get(k));
        let (entry, allowed) = match own {
            Some(entry) => {
                let (rate, burst) = (entry.rate, entry.rate.saturating_mul(2));
                (entry, self.limiter.allow_with(peer, now, rate, burst))
            }
            None => {
                let refusal = match self.policy.admit {
                    Admit::Anyone => None,
                    Admit::Staked(_) if self.staked.contains(&peer) => None,
                    Admit::Staked(_) => Some("callers with stake on its subnet only"),
                    Admit::ValidatorsOnly => Some("its subnet's validators only"),
                };
                if let Some(reason) = refusal {
                    self.others.refused.inc();
                    return Err(Refusal::NotAdmitted(reason));
                }
                (&self.others, self.limiter.allow(peer, now))
            }
        };
        match allowed {
            true => entry.admitted.inc(),
            false => entry.refused.inc(),
        };
        allowed.then_some(()).ok_or(Refusal::OverQuota)
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
            admit: self.policy.admit,
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
            admit: Admit::Anyone,
            overrides: BTreeMap::new(),
        };
        policy.overrides.insert(key(&vip), 30);
        let mut quotas = Quotas::new(policy);
        quotas.set_permits(&[(key(&big), 3_000), (key(&small), 1_000)]);
        let now = Instant::now();
        let taken = |quotas: &mut Quotas, who: &Keypair| {
            (0..1_000)
                .filter(|_| quotas.admit(who.peer_id(), now).is_ok())
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

#[cfg(test)]
mod admission_tests {
    use super::*;
    use meshmind_protocols::Keypair;

    #[test]
    fn a_miner_can_answer_only_validators_its_operators_list_and_staked_callers() {
        let (validator, listed, stranger) = (
            Keypair::generate().unwrap(),
            Keypair::generate().unwrap(),
            Keypair::generate().unwrap(),
        );
        let key = |k: &Keypair| Key(k.public().to_bytes());
        let mut policy = QuotaPolicy {
            admit: Admit::ValidatorsOnly,
            ..QuotaPolicy::new()
        };
        policy.overrides.insert(key(&listed), 10);
        let mut quotas = Quotas::new(policy.clone());
        quotas.set_permits(&[(key(&validator), 1_000)]);
        let now = Instant::now();
        assert_eq!(quotas.admit(validator.peer_id(), now), Ok(()));
        assert_eq!(quotas.admit(listed.peer_id(), now), Ok(()));
        assert!(matches!(
            quotas.admit(stranger.peer_id(), now),
            Err(Refusal::NotAdmitted(_))
        ));
        assert_eq!(quotas.view().callers.last().map(|r| r.refused), Some(1));

        // Staked: a caller with stake on the subnet gets the small rate, one without none.
        let mut quotas = Quotas::new(QuotaPolicy {
            admit: Admit::Staked(500),
            ..policy
        });
        quotas.staked.insert(stranger.peer_id());
        assert_eq!(quotas.admit(stranger.peer_id(), now), Ok(()));
        let nobody = Keypair::generate().unwrap();
        assert!(matches!(
            quotas.admit(nobody.peer_id(), now),
            Err(Refusal::NotAdmitted(_))
        ));
    }

    #[test]
    fn a_caller_is_named_with_its_stake_and_permit() {
        let (validator, stranger) = (Keypair::generate().unwrap(), Keypair::generate().unwrap());
        let mut quotas = Quotas::new(QuotaPolicy::new());
        assert!(!quotas.knows_stakes());
        quotas.stakes.insert(validator.peer_id(), 1_000);
        quotas.permits.insert(validator.peer_id());
        let caller = quotas.caller(&validator.peer_id());
        assert_eq!(caller.hotkey, validator.public().to_hex());
        assert_eq!((caller.stake, caller.permit), (1_000, true));
        let caller = quotas.caller(&stranger.peer_id());
        assert_eq!(caller.hotkey, stranger.public().to_hex());
        assert_eq!((caller.stake, caller.permit), (0, false));
    }
}
