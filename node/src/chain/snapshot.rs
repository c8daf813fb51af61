//! Snapshots: building the value a proposer offers for an epoch, and checking one received
//! (`valid(v)` of the consensus protocol).

use std::collections::{BTreeMap, BTreeSet};

use meshmind_protocols::{BatchVerifier, NetworkId, PublicKey, Validate, hash, v1};
use prost::Message;

use crate::consensus::evidence::{self, FaultKind, MAX_SNAPSHOT_EVIDENCE, Offence};
use crate::consensus::members::Members;
use crate::state::{Key, State, order_transactions};

/// Most transactions a proposer puts in one snapshot.
pub const MAX_SNAPSHOT_TXS: usize = 1024;
/// Largest encoded snapshot, so a proposal fits in one gossip message (1 MiB) with room to spare.
pub const MAX_SNAPSHOT_BYTES: usize = 768 << 10;

/// From this round on, a snapshot may carry weight vectors of at most 2/3 of the stake (so epochs
/// whose vectors were lost while validators were down can still finalize).
pub const OPEN_WEIGHTS_ROUND: u32 = 2;

/// What a snapshot of one epoch must chain to.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The network.
    pub network_id: NetworkId,
    /// The epoch.
    pub epoch: u64,
    /// Header hash of the previous epoch's snapshot (the network id for epoch 0).
    pub parent_hash: [u8; 32],
    /// The validators that finalize this epoch.
    pub members: &'a Members,
    /// The economy after the previous epoch (its `epoch` is this one).
    pub state: &'a State,
    /// Emission of one epoch.
    pub emission: u64,
}

/// Why a snapshot is not valid for the epoch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("snapshot {field}: {reason}")]
pub struct SnapshotError {
    /// The field at fault.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

fn fail(field: &str, reason: impl Into<String>) -> SnapshotError {
    SnapshotError {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// A root over the hashes of `items` under a label: blake3 in derive-key mode of their concatenation.
pub fn root<M: Message>(label: &str, items: &[M]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(&format!("meshmind/v1/root/{label}"));
    for item in items {
        hasher.update(hash(item).as_bytes());
    }
    *hasher.finalize().as_bytes()
}

/// The value id of a snapshot: the hash of its header.
pub fn value_id(snapshot: &v1::Snapshot) -> [u8; 32] {
    snapshot
        .header
        .as_ref()
        .map(|h| *hash(h).as_bytes())
        .unwrap_or_default()
}

/// Who evidence in a snapshot at `expect` may accuse: the members of the set, and finalizers
/// whose stake is still bonded (so one that left answers for what it did while in the set).
fn accountable<'a>(expect: &'a Expect<'_>) -> impl Fn(&[u8]) -> bool + 'a {
    |key: &[u8]| {
        expect.members.index_of(key).is_some()
            || Key::from_slice(key).is_some_and(|k| expect.state.bonded(&k))
    }
}

/// Jails and slashes the offender of a consensus equivocation (two votes or two proposals for
/// one slot; see [`State::punish`]). Two weight commitments for one epoch are kept as evidence
/// but not punished: a validator restarted within an epoch may commit again, which threatens
/// no one's safety.
pub(crate) fn punish(state: &mut State, evidence: &v1::Evidence) {
    let Some(offence) = Offence::of(evidence) else {
        return;
    };
    if offence.kind == FaultKind::DuplicateWeightCommit {
        return;
    }
    if let Some(offender) = Key::from_slice(&offence.offender) {
        let burned = state.punish(&offender);
        tracing::info!(offender = %offender.to_hex(), burned, "equivocation punished");
    }
}

/// Whether `reveal`'s signer holds a validator permit on its subnet, among `permits`.
fn permitted(permits: &BTreeMap<u32, BTreeSet<Key>>, reveal: &v1::WeightReveal) -> bool {
    Key::from_slice(&reveal.validator).is_some_and(|key| {
        permits
            .get(&reveal.subnet)
            .is_some_and(|holders| holders.contains(&key))
    })
}

/// The reveals a snapshot at `expect` may carry: of the right network and epoch, signed by a
/// permit holder of their subnet, well formed; finalizers' first (their vectors make the quorum),
/// then by the stake behind the signer on the subnet, as many as fit in
/// [`MAX_SNAPSHOT_WEIGHT_BYTES`].
fn usable_reveals(
    expect: &Expect<'_>,
    reveals: impl IntoIterator<Item = v1::WeightReveal>,
) -> Vec<v1::WeightReveal> {
    let Some(reveal_epoch) = reveal_epoch(expect.epoch) else {
        return Vec::new();
    };
    let permits = expect.state.permit_holders();
    let mut usable: Vec<v1::WeightReveal> = reveals
        .into_iter()
        .filter(|r| {
            expect.network_id.is(&r.network_id)
                && r.epoch == reveal_epoch
                && permitted(&permits, r)
                && r.uids.len() <= expect.state.subnet_params(r.subnet).max_uids as usize
                && r.validate().is_ok()
                // One the subnet's rules refuse would only take room.
                && expect.state.check_weights(r).is_ok()
        })
        .collect();
    usable.sort_by(|a, b| (a.subnet, &a.validator).cmp(&(b.subnet, &b.validator)));
    usable.dedup_by(|a, b| (a.subnet, &a.validator) == (b.subnet, &b.validator));
    usable.sort_by_cached_key(|r| {
        let stake = Key::from_slice(&r.validator)
            .map_or(0, |key| expect.state.hotkey_stake(r.subnet, &key));
        (
            expect.members.index_of(&r.validator).is_none(),
            std::cmp::Reverse(stake),
            r.subnet,
            r.validator.clone(),
        )
    });
    let mut room = MAX_SNAPSHOT_WEIGHT_BYTES;
    usable.retain(|r| {
        let size = r.encoded_len();
        let fits = size <= room;
        if fits {
            room -= size;
        }
        fits
    });
    usable
}

/// The epoch whose commitments a snapshot of `epoch` carries the reveals of.
fn reveal_epoch(epoch: u64) -> Option<u64> {
    epoch.checked_sub(1)
}

/// Most bytes of weight vectors one snapshot carries, so that it stays deliverable however many
/// subnets and permit holders there are.
pub const MAX_SNAPSHOT_WEIGHT_BYTES: usize = MAX_SNAPSHOT_BYTES / 2;

/// Builds the snapshot `proposer` offers for `expect.epoch`: the usable reveals (one per subnet
/// and validator, sorted; finalizers' first, then by the stake behind the signer, up to
/// [`MAX_SNAPSHOT_WEIGHT_BYTES`]), the evidence given, the transactions that apply (in order, at
/// most [`MAX_SNAPSHOT_TXS`]), the epoch's results and the state root after all of it.
pub fn build(
    expect: &Expect<'_>,
    proposer: &PublicKey,
    reveals: impl IntoIterator<Item = v1::WeightReveal>,
    evidence: Vec<v1::Evidence>,
    transactions: Vec<v1::Transaction>,
) -> v1::Snapshot {
    let reveals = usable_reveals(expect, reveals);
    // Deliverable in one gossip message: with too many transactions, fewer are taken.
    let mut limit = MAX_SNAPSHOT_TXS;
    loop {
        let snapshot = build_with(
            expect,
            proposer,
            reveals.clone(),
            evidence.clone(),
            transactions.clone(),
            limit,
        );
        if snapshot.encoded_len() <= MAX_SNAPSHOT_BYTES || limit == 0 {
            return snapshot;
        }
        limit /= 2;
    }
}

fn build_with(
    expect: &Expect<'_>,
    proposer: &PublicKey,
    reveals: Vec<v1::WeightReveal>,
    evidence: Vec<v1::Evidence>,
    transactions: Vec<v1::Transaction>,
    max_txs: usize,
) -> v1::Snapshot {
    let mut weights = reveals;
    weights.sort_by(|a, b| (a.subnet, &a.validator).cmp(&(b.subnet, &b.validator)));
    weights.dedup_by(|a, b| (a.subnet, &a.validator) == (b.subnet, &b.validator));
    // One piece per offence, recent, at most a snapshot's share; the rest waits for the next.
    let mut offences = BTreeSet::new();
    let evidence: Vec<v1::Evidence> = evidence
        .into_iter()
        .filter(|e| {
            Offence::of(e).is_some_and(|o| o.is_fresh_at(expect.epoch) && offences.insert(o))
                && evidence::check_accountable(e, expect.network_id, &accountable(expect)).is_ok()
        })
        .take(MAX_SNAPSHOT_EVIDENCE)
        .collect();
    let mut state = expect.state.clone();
    let mut included = Vec::new();
    for tx in order_transactions(transactions) {
        if included.len() >= max_txs {
            break;
        }
        // A refused transaction leaves the state as it was.
        if state.apply(&tx).is_ok() {
            included.push(tx);
        }
    }
    let results = state.end_epoch(&weights, expect.emission);
    for e in &evidence {
        punish(&mut state, e);
    }
    let next = state.hand_over(expect.members.wire());
    let header = v1::SnapshotHeader {
        network_id: expect.network_id.to_vec(),
        epoch: expect.epoch,
        parent_hash: expect.parent_hash.to_vec(),
        valset_hash: expect.members.hash().to_vec(),
        next_valset_hash: hash(&next).as_bytes().to_vec(),
        weights_root: root("weights", &weights).to_vec(),
        txs_root: root("txs", &included).to_vec(),
        results_root: root("results", &results).to_vec(),
        evidence_root: root("evidence", &evidence).to_vec(),
        state_root: state.root().to_vec(),
        proposer: proposer.to_bytes().to_vec(),
    };
    v1::Snapshot {
        header: Some(header),
        weights,
        transactions: included,
        results,
        evidence,
        next_validators: Some(next),
    }
}

/// Checks a snapshot proposed in `round` for `expect.epoch`; returns its value id and the economy
/// after it.
pub fn check(
    snapshot: &v1::Snapshot,
    expect: &Expect<'_>,
    round: u32,
) -> Result<([u8; 32], State), SnapshotError> {
    snapshot
        .validate()
        .map_err(|e| fail(&e.field, e.reason.to_string()))?;
    let size = snapshot.encoded_len();
    if size > MAX_SNAPSHOT_BYTES {
        return Err(fail(
            "snapshot",
            format!("{size} bytes; at most {MAX_SNAPSHOT_BYTES} fit in a proposal"),
        ));
    }
    let header = snapshot
        .header
        .as_ref()
        .ok_or_else(|| fail("header", "missing"))?;
    let eq = |field: &str, found: &[u8], expected: &[u8]| {
        if found == expected {
            Ok(())
        } else {
            Err(fail(
                field,
                format!(
                    "is {}, expected {}",
                    hex::encode(found),
                    hex::encode(expected)
                ),
            ))
        }
    };
    eq(
        "header.network_id",
        &header.network_id,
        expect.network_id.as_bytes(),
    )?;
    if header.epoch != expect.epoch {
        return Err(fail(
            "header.epoch",
            format!("is {}, expected {}", header.epoch, expect.epoch),
        ));
    }
    eq(
        "header.parent_hash",
        &header.parent_hash,
        &expect.parent_hash,
    )?;
    eq(
        "header.valset_hash",
        &header.valset_hash,
        &expect.members.hash(),
    )?;
    if expect.members.index_of(&header.proposer).is_none() {
        return Err(fail("header.proposer", "not in the validator set"));
    }
    // Weights: sorted, one per (subnet, validator), of the right epoch, signed by holders of a
    // validator permit on the subnet; the finalizing stake behind them counts for the quorum.
    let permits = expect.state.permit_holders();
    let mut batch = BatchVerifier::with_capacity(snapshot.weights.len());
    let mut signers = BTreeSet::new();
    let mut previous: Option<(u32, &[u8])> = None;
    for (i, reveal) in snapshot.weights.iter().enumerate() {
        let field = format!("weights[{i}]");
        let Some(reveal_epoch) = reveal_epoch(expect.epoch) else {
            return Err(fail(&field, "epoch 0 carries no weights"));
        };
        if reveal.epoch != reveal_epoch || !expect.network_id.is(&reveal.network_id) {
            return Err(fail(
                &field,
                format!("must be a reveal of epoch {reveal_epoch} of this network"),
            ));
        }
        if reveal.uids.len() > expect.state.subnet_params(reveal.subnet).max_uids as usize {
            return Err(fail(&field, "more entries than the subnet has UIDs"));
        }
        let key = (reveal.subnet, reveal.validator.as_slice());
        if previous.is_some_and(|p| p >= key) {
            return Err(fail(
                &field,
                "must be sorted by (subnet, validator), one each",
            ));
        }
        previous = Some(key);
        if !permitted(&permits, reveal) {
            return Err(fail(
                &field,
                format!(
                    "signer holds no validator permit on subnet {}",
                    reveal.subnet
                ),
            ));
        }
        if let Some(member) = expect.members.index_of(&reveal.validator) {
            signers.insert(member);
        }
        batch
            .push_signed(reveal)
            .map_err(|e| fail(&field, e.to_string()))?;
    }
    batch.verify().map_err(|e| fail("weights", e.to_string()))?;
    let power: u128 = signers.iter().map(|&m| expect.members.set().power(m)).sum();
    if expect.epoch > 0 && round < OPEN_WEIGHTS_ROUND && !expect.members.set().is_quorum(power) {
        return Err(fail(
            "weights",
            format!(
                "vectors of {power} of {} stake; more than 2/3 are required before round {OPEN_WEIGHTS_ROUND}",
                expect.members.set().total()
            ),
        ));
    }
    eq(
        "header.weights_root",
        &header.weights_root,
        &root("weights", &snapshot.weights),
    )?;
    // Transactions: in order, each applying to the state as it stands.
    for (i, pair) in snapshot.transactions.windows(2).enumerate() {
        if (&pair[0].coldkey, pair[0].nonce) >= (&pair[1].coldkey, pair[1].nonce) {
            return Err(fail(
                &format!("transactions[{}]", i + 1),
                "must be sorted by (coldkey, nonce), one each",
            ));
        }
    }
    eq(
        "header.txs_root",
        &header.txs_root,
        &root("txs", &snapshot.transactions),
    )?;
    let mut state = expect.state.clone();
    for (i, tx) in snapshot.transactions.iter().enumerate() {
        state
            .apply(tx)
            .map_err(|e| fail(&format!("transactions[{i}]"), e.to_string()))?;
    }
    let results = state.end_epoch(&snapshot.weights, expect.emission);
    if snapshot.results != results {
        return Err(fail("results", "differ from the results of this epoch"));
    }
    eq(
        "header.results_root",
        &header.results_root,
        &root("results", &snapshot.results),
    )?;
    if snapshot.evidence.len() > MAX_SNAPSHOT_EVIDENCE {
        return Err(fail(
            "evidence",
            format!("more than {MAX_SNAPSHOT_EVIDENCE} pieces"),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, item) in snapshot.evidence.iter().enumerate() {
        evidence::check_accountable(item, expect.network_id, &accountable(expect))
            .map_err(|e| fail(&format!("evidence[{i}]"), e.0))?;
        let offence = Offence::of(item).ok_or_else(|| fail(&format!("evidence[{i}]"), "empty"))?;
        if !offence.is_fresh_at(expect.epoch) {
            return Err(fail(&format!("evidence[{i}]"), "too old"));
        }
        if !seen.insert(offence) {
            return Err(fail(
                &format!("evidence[{i}]"),
                "a second piece for one offence",
            ));
        }
        punish(&mut state, item);
    }
    eq(
        "header.evidence_root",
        &header.evidence_root,
        &root("evidence", &snapshot.evidence),
    )?;
    // The hand-over records tenure in the state, so the root is taken after it, as `build` does.
    let next = state.hand_over(expect.members.wire());
    eq("header.state_root", &header.state_root, &state.root())?;
    if snapshot.next_validators.as_ref() != Some(&next) {
        return Err(fail(
            "next_validators",
            "not the set the stakes after this epoch give",
        ));
    }
    eq(
        "header.next_valset_hash",
        &header.next_valset_hash,
        hash(&next).as_bytes(),
    )?;
    Ok((*hash(header).as_bytes(), state))
}
