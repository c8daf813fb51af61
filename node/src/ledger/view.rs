//! JSON views of ledger records, shared by the HTTP API and `meshmind ledger`.

use meshmind_protocols::v1;
use serde_json::{Value, json};

use super::snapshot::value_id;

/// A snapshot as JSON.
pub fn snapshot(snapshot: &v1::Snapshot) -> Value {
    let header = snapshot.header.clone().unwrap_or_default();
    json!({
        "epoch": header.epoch,
        "hash": hex::encode(value_id(snapshot)),
        "parent_hash": hex::encode(&header.parent_hash),
        "valset_hash": hex::encode(&header.valset_hash),
        "next_valset_hash": hex::encode(&header.next_valset_hash),
        "weights_root": hex::encode(&header.weights_root),
        "evidence_root": hex::encode(&header.evidence_root),
        "state_root": hex::encode(&header.state_root),
        "proposer": hex::encode(&header.proposer),
        "weights": snapshot.weights.iter().map(|w| json!({
            "subnet": w.subnet,
            "validator": hex::encode(&w.validator),
            "uids": w.uids,
            "weights": w.weights,
        })).collect::<Vec<_>>(),
        "txs_root": hex::encode(&header.txs_root),
        "results_root": hex::encode(&header.results_root),
        "transactions": snapshot.transactions.iter().map(transaction).collect::<Vec<_>>(),
        "results": snapshot.results.iter().map(|r| json!({
            "subnet": r.subnet,
            "uids": r.uids,
            "consensus": r.consensus,
            "incentive": r.incentive,
            "dividends": r.dividends,
            "validator_trust": r.validator_trust,
            "emission": r.emission,
        })).collect::<Vec<_>>(),
        "evidence": snapshot.evidence.iter().map(evidence).collect::<Vec<_>>(),
        "next_validators": snapshot.next_validators.iter().flat_map(|s| &s.validators).map(|v| json!({
            "hotkey": hex::encode(&v.hotkey),
            "stake": v.stake,
        })).collect::<Vec<_>>(),
    })
}

/// A transaction as JSON: signer, nonce, kind and its fields.
pub fn transaction(tx: &v1::Transaction) -> Value {
    use v1::transaction::Kind;
    let kind = match &tx.kind {
        Some(Kind::Transfer(t)) => {
            json!({"transfer": {"to": hex::encode(&t.to), "amount": t.amount}})
        }
        Some(Kind::AddStake(s)) => json!({"add_stake": {
            "hotkey": hex::encode(&s.hotkey), "subnet": s.subnet, "amount": s.amount}}),
        Some(Kind::RemoveStake(s)) => json!({"remove_stake": {
            "hotkey": hex::encode(&s.hotkey), "subnet": s.subnet, "amount": s.amount}}),
        Some(Kind::Register(r)) => json!({"register": {
            "hotkey": hex::encode(&r.hotkey), "subnet": r.subnet, "max_burn": r.max_burn}}),
        Some(Kind::CreateSubnet(c)) => json!({"create_subnet": {
            "name": c.name, "tasks": c.tasks, "max_lock": c.max_lock}}),
        None => Value::Null,
    };
    json!({
        "coldkey": hex::encode(&tx.coldkey),
        "nonce": tx.nonce,
        "kind": kind,
        "hash": meshmind_protocols::hash(tx).to_hex(),
    })
}

/// A certificate as JSON.
pub fn certificate(cert: &v1::Certificate) -> Value {
    json!({
        "epoch": cert.epoch,
        "round": cert.round,
        "value_id": hex::encode(&cert.value_id),
        "valset_hash": hex::encode(&cert.valset_hash),
        "signers": cert.signatures.iter().map(|s| hex::encode(&s.validator)).collect::<Vec<_>>(),
    })
}

/// A piece of evidence as JSON: its kind, the accused hotkey and the slot.
pub fn evidence(evidence: &v1::Evidence) -> Value {
    use v1::evidence::Kind;
    match &evidence.kind {
        Some(Kind::DuplicateVote(d)) => {
            let first = d.first.clone().unwrap_or_default();
            let second = d.second.clone().unwrap_or_default();
            json!({
                "kind": "duplicate_vote",
                "validator": hex::encode(&first.validator),
                "epoch": first.epoch,
                "round": first.round,
                "vote_type": first.vote_type,
                "values": [hex::encode(&first.value_id), hex::encode(&second.value_id)],
            })
        }
        Some(Kind::DuplicateProposal(d)) => {
            let first = d.first.clone().unwrap_or_default();
            let second = d.second.clone().unwrap_or_default();
            json!({
                "kind": "duplicate_proposal",
                "validator": hex::encode(&first.proposer),
                "epoch": first.epoch,
                "round": first.round,
                "values": [hex::encode(&first.value_id), hex::encode(&second.value_id)],
            })
        }
        Some(Kind::DuplicateWeightCommit(d)) => {
            let first = d.first.clone().unwrap_or_default();
            json!({
                "kind": "duplicate_weight_commit",
                "validator": hex::encode(&first.validator),
                "epoch": first.epoch,
                "subnet": first.subnet,
            })
        }
        None => json!({"kind": "empty"}),
    }
}
