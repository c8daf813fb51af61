//! The validator's live view of a subnet's miners, built from signed capability ads.

use std::collections::BTreeMap;
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
}

impl MinerEntry {
    /// Whether it has an unexpired ad for `task` at `now_ms`.
    pub fn serves(&self, task: &str, now_ms: u64) -> bool {
        self.tasks.get(task).is_some_and(|&expiry| expiry > now_ms)
    }
}

/// Miners of one subnet, by UID.
#[derive(Debug, Clone, Default)]
pub struct Metagraph {
    subnet: u32,
    miners: BTreeMap<u32, MinerEntry>,
    next_uid: u32,
}

impl Metagraph {
    /// An empty metagraph of `subnet`.
    pub fn new(subnet: u32) -> Self {
        Self {
            subnet,
            miners: BTreeMap::new(),
            next_uid: 0,
        }
    }

    /// Accepts a capability ad after checking it against `context`; returns the miner's UID.
    pub fn accept(
        &mut self,
        ad: &v1::CapabilityAd,
        context: &Context,
    ) -> Result<u32, ValidationError> {
        context.check(ad)?;
        if ad.subnet != self.subnet {
            return Err(ValidationError::new(
                "subnet",
                meshmind_protocols::Reason::OutOfRange(format!("not subnet {}", self.subnet)),
            ));
        }
        let key = ad.signer().map_err(|e| {
            ValidationError::new("miner", meshmind_protocols::Reason::BadSignature(e))
        })?;
        let query_addr = ad.query_addr.parse().ok();
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
                })
            }
        };
        entry.tasks.insert(ad.task.clone(), ad.expires_at_ms);
        entry.last_seen_ms = context.now_ms;
        if query_addr.is_some() {
            entry.query_addr = query_addr;
        }
        Ok(entry.uid)
    }

    /// The miners with a live ad for `task`.
    pub fn serving(&self, task: &str, now_ms: u64) -> Vec<&MinerEntry> {
        self.miners
            .values()
            .filter(|m| m.serves(task, now_ms))
            .collect()
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
