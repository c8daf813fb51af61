//! The validator's live view of a subnet's miners, built from signed capability ads.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use meshmind_p2p::PeerId;
use meshmind_protocols::{Context, PublicKey, Signed, ValidationError, v1};

/// One miner as the validator knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MinerEntry {
    /// The UID the validator gave it (stable while it stays registered).
    pub uid: u32,
    /// Its hotkey.
    pub key: PublicKey,
    /// Its peer id.
    pub peer: PeerId,
    /// Its query-plane address, if it advertised one that parses.
    pub query_addr: Option<SocketAddr>,
    /// Task -> expiry of its latest ad, in ms.
    pub tasks: BTreeMap<String, u64>,
    /// When an ad from it was last accepted, in ms.
    pub last_seen_ms: u64,
    /// Queries per second it takes from permit holders, as its latest ad says (0: not said).
    pub capacity: u32,
    /// Queries it answers at once, as its latest ad says.
    pub max_concurrency: u32,
}

/// A miner as queries address it: who it is and what it takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// Its UID here.
    pub uid: u32,
    /// Its hotkey.
    pub key: PublicKey,
    /// Its peer id.
    pub peer: PeerId,
    /// Queries per second it takes from permit holders (0: not said).
    pub capacity: u32,
    /// Queries it answers at once.
    pub max_concurrency: u32,
}

impl MinerEntry {
    /// This miner as queries address it.
    pub fn target(&self) -> Target {
        Target {
            uid: self.uid,
            key: self.key,
            peer: self.peer,
            capacity: self.capacity,
            max_concurrency: self.max_concurrency,
        }
    }

    /// Whether it has an unexpired ad for `task` at `now_ms`.
    pub fn serves(&self, task: &str, now_ms: u64) -> bool {
        self.tasks.get(task).is_some_and(|&expiry| expiry > now_ms)
    }
}

/// Most miners not registered on the subnet kept at once (candidates that may register soon).
pub const MAX_CANDIDATES: usize = 16;

/// Why an ad was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdError {
    /// It is malformed, expired, for another network or subnet, or badly signed.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Its miner is not registered on the subnet and the candidate slots are taken.
    #[error("the miner is not registered on the subnet, and {MAX_CANDIDATES} candidates are known")]
    Unregistered,
}

impl AdError {
    /// Whether the sender broke a rule (an unregistered miner may just not be registered yet
    /// where the relay looked).
    pub fn penalise(&self) -> bool {
        matches!(self, AdError::Invalid(_))
    }
}

/// Miners of one subnet, by UID.
#[derive(Debug, Clone, Default)]
pub struct Metagraph {
    subnet: u32,
    miners: BTreeMap<u32, MinerEntry>,
    next_uid: u32,
    /// The hotkeys registered on the subnet, once the finalized economy is known.
    registered: Option<BTreeSet<PublicKey>>,
}

impl Metagraph {
    /// An empty metagraph of `subnet`.
    pub fn new(subnet: u32) -> Self {
        Self {
            subnet,
            miners: BTreeMap::new(),
            next_uid: 0,
            registered: None,
        }
    }

    /// Sets the hotkeys registered on the subnet: other miners are kept only as a few
    /// candidates, the ones seen last.
    pub fn set_registered(&mut self, registered: impl IntoIterator<Item = PublicKey>) {
        let registered: BTreeSet<PublicKey> = registered.into_iter().collect();
        let mut candidates: Vec<(u64, u32)> = self
            .miners
            .values()
            .filter(|m| !registered.contains(&m.key))
            .map(|m| (m.last_seen_ms, m.uid))
            .collect();
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        for (_, uid) in candidates.into_iter().skip(MAX_CANDIDATES) {
            self.miners.remove(&uid);
        }
        self.registered = Some(registered);
    }

    /// Whether `key` is registered on the subnet (every key is while that is not known).
    fn is_registered(&self, key: &PublicKey) -> bool {
        self.registered.as_ref().is_none_or(|r| r.contains(key))
    }

    /// Accepts a capability ad after checking it against `context`; returns the miner's UID.
    pub fn accept(&mut self, ad: &v1::CapabilityAd, context: &Context) -> Result<u32, AdError> {
        context.check(ad)?;
        if ad.subnet != self.subnet {
            return Err(ValidationError::new(
                "subnet",
                meshmind_protocols::Reason::OutOfRange(format!("not subnet {}", self.subnet)),
            )
            .into());
        }
        let key = ad.signer().map_err(|e| {
            ValidationError::new("miner", meshmind_protocols::Reason::BadSignature(e))
        })?;
        let query_addr = ad.query_addr.parse().ok();
        let known = self.miners.values().any(|m| m.key == key);
        if !known && !self.is_registered(&key) {
            let candidates = self
                .miners
                .values()
                .filter(|m| !self.is_registered(&m.key))
                .count();
            if candidates >= MAX_CANDIDATES {
                return Err(AdError::Unregistered);
            }
        }
        let existing = self.miners.values_mut().find(|m| m.key == key);
        let entry = match existing {
            Some(entry) => entry,
            None => {
                let uid = self.next_uid;
                self.next_uid += 1;
                self.miners.entry(uid).or_insert(MinerEntry {
                    uid,
                    key,
                    peer: key.peer_id(),
                    query_addr: None,
                    tasks: BTreeMap::new(),
                    last_seen_ms: 0,
                    capacity: 0,
                    max_concurrency: 0,
                })
            }
        };
        entry.tasks.insert(ad.task.clone(), ad.expires_at_ms);
        entry.last_seen_ms = context.now_ms;
        entry.capacity = ad.queries_per_second;
        entry.max_concurrency = ad.max_concurrency;
        if query_addr.is_some() {
            entry.query_addr = query_addr;
        }
        Ok(entry.uid)
    }

    /// The miners with a live ad for `task`.
    pub fn serving(&self, task: &str, now_ms: u64) -> impl Iterator<Item = &MinerEntry> {
        self.miners.values().filter(move |m| m.serves(task, now_ms))
    }

    /// Every miner, by UID.
    pub fn miners(&self) -> impl Iterator<Item = &MinerEntry> {
        self.miners.values()
    }

    /// The entry of `uid`.
    pub fn get(&self, uid: u32) -> Option<&MinerEntry> {
        self.miners.get(&uid)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use meshmind_protocols::{Keypair, NetworkId};

    use super::*;
    use crate::role::miner::{Miner, MinerConfig, Reference};

    const NET: NetworkId = NetworkId::new([8; 32]);

    fn ad(key: &Keypair) -> v1::CapabilityAd {
        let miner = Miner::new(
            MinerConfig::new(NET, 1, vec!["sort".into()]),
            key.clone(),
            Arc::new(Reference),
        );
        miner
            .capability_ads(1_000, 60_000, &[], "127.0.0.1:9")
            .remove(0)
    }

    /// Fake ads as a reflector: 2,000 self-signed ads of unregistered keys add at most
    /// `MAX_CANDIDATES` entries (each a miner the validator would dial), not 2,000; registered
    /// miners still get in, and learning the registrations drops all but the newest candidates.
    #[test]
    fn unregistered_miners_are_a_bounded_set_of_candidates() {
        let context = Context {
            network_id: NET,
            now_ms: 2_000,
            max_clock_skew_ms: 0,
        };
        let honest = Keypair::from_secret(&[1; 32]);
        let mut graph = Metagraph::new(1);
        graph.set_registered([honest.public()]);
        let mut refused = 0;
        for n in 0..2_000u32 {
            let fake = Keypair::from_secret(blake3::hash(&n.to_be_bytes()).as_bytes());
            match graph.accept(&ad(&fake), &context) {
                Ok(_) => {}
                Err(e @ AdError::Unregistered) => {
                    assert!(!e.penalise());
                    refused += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(refused, 2_000 - MAX_CANDIDATES);
        assert_eq!(graph.miners().count(), MAX_CANDIDATES);
        graph.accept(&ad(&honest), &context).expect("registered");
        assert_eq!(graph.miners().count(), MAX_CANDIDATES + 1);
        // A bad signature is the sender's fault.
        let mut forged = ad(&honest);
        forged.signature[0] ^= 1;
        let error = graph.accept(&forged, &context).unwrap_err();
        assert!(
            matches!(&error, AdError::Invalid(e) if e.field == "signature"),
            "{error:?}"
        );
        assert!(error.penalise());
        // Before the registrations are known every miner counts; once known, the rest shrink.
        let mut open = Metagraph::new(1);
        for n in 0..40u32 {
            let key = Keypair::from_secret(blake3::hash(&(n + 5_000).to_be_bytes()).as_bytes());
            open.accept(&ad(&key), &context)
                .expect("not known yet: taken");
        }
        open.set_registered([honest.public()]);
        assert_eq!(open.miners().count(), MAX_CANDIDATES);
    }
}
