//! Views of ledger records and of the economy as the API's types, shared by the HTTP API and
//! `meshmind ledger`.

use meshmind_protocols::{Signed, v1};
use serde_json::{Value, json};

use super::types::{
    Account, Answer, ApiError, CertificateView, ChainMetagraph, DelegateView, DelegationView,
    Economy, Encoding, ErrorBody, EvidenceView, FinalizerView, NeuronView, NominationView,
    ParamView, QueryAnswer, ResultView, SnapshotView, StakeView, Standing, StreamLine,
    SubnetStanding, SubnetView, SupplyView, TransactionView, UnbondingView, ValidatorView,
    WeightsView,
};
use crate::chain::snapshot::value_id;
use crate::state::{Key, State};

/// A snapshot.
pub fn snapshot(snapshot: &v1::Snapshot) -> SnapshotView {
    let header = snapshot.header.clone().unwrap_or_default();
    SnapshotView {
        epoch: header.epoch,
        hash: hex::encode(value_id(snapshot)),
        parent_hash: hex::encode(&header.parent_hash),
        valset_hash: hex::encode(&header.valset_hash),
        next_valset_hash: hex::encode(&header.next_valset_hash),
        weights_root: hex::encode(&header.weights_root),
        evidence_root: hex::encode(&header.evidence_root),
        state_root: hex::encode(&header.state_root),
        proposer: hex::encode(&header.proposer),
        weights: snapshot
            .weights
            .iter()
            .map(|w| WeightsView {
                subnet: w.subnet,
                validator: hex::encode(&w.validator),
                uids: w.uids.clone(),
                weights: w.weights.clone(),
            })
            .collect(),
        txs_root: hex::encode(&header.txs_root),
        results_root: hex::encode(&header.results_root),
        transactions: snapshot.transactions.iter().map(transaction).collect(),
        results: snapshot
            .results
            .iter()
            .map(|r| ResultView {
                subnet: r.subnet,
                uids: r.uids.clone(),
                consensus: r.consensus.clone(),
                incentive: r.incentive.clone(),
                dividends: r.dividends.clone(),
                validator_trust: r.validator_trust.clone(),
                emission: r.emission.clone(),
            })
            .collect(),
        evidence: snapshot.evidence.iter().map(evidence).collect(),
        next_validators: snapshot
            .next_validators
            .iter()
            .flat_map(|s| &s.validators)
            .map(|v| ValidatorView {
                hotkey: hex::encode(&v.hotkey),
                stake: v.stake,
            })
            .collect(),
    }
}

/// A transaction: signer, nonce, kind and its fields.
pub fn transaction(tx: &v1::Transaction) -> TransactionView {
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
        Some(Kind::DeclareFinalizer(d)) => json!({"declare_finalizer": {
            "hotkey": hex::encode(&d.hotkey)}}),
        Some(Kind::UndeclareFinalizer(u)) => json!({"undeclare_finalizer": {
            "hotkey": hex::encode(&u.hotkey)}}),
        Some(Kind::SetSubnetParams(p)) => json!({"set_subnet_params": {
            "subnet": p.subnet,
            "values": p.values.iter().map(|v| json!({"name": v.name, "value": v.value})).collect::<Vec<_>>()}}),
        Some(Kind::SetTake(t)) => json!({"set_take": {
            "hotkey": hex::encode(&t.hotkey), "take_per_mille": t.take_per_mille}}),
        Some(Kind::MoveStake(m)) => json!({"move_stake": {
            "from_hotkey": hex::encode(&m.from_hotkey), "from_subnet": m.from_subnet,
            "to_hotkey": hex::encode(&m.to_hotkey), "to_subnet": m.to_subnet, "amount": m.amount}}),
        Some(Kind::SwapHotkey(s)) => json!({"swap_hotkey": {
            "old_hotkey": hex::encode(&s.old_hotkey), "hotkey": hex::encode(&s.hotkey)}}),
        None => Value::Null,
    };
    TransactionView {
        coldkey: hex::encode(&tx.coldkey),
        nonce: tx.nonce,
        kind,
        hash: meshmind_protocols::hash(tx).to_hex(),
    }
}

/// A certificate.
pub fn certificate(cert: &v1::Certificate) -> CertificateView {
    CertificateView {
        epoch: cert.epoch,
        round: cert.round,
        value_id: hex::encode(&cert.value_id),
        valset_hash: hex::encode(&cert.valset_hash),
        signers: cert
            .signatures
            .iter()
            .map(|s| hex::encode(&s.validator))
            .collect(),
    }
}

/// A piece of evidence: its kind, the accused hotkey and the slot.
pub fn evidence(evidence: &v1::Evidence) -> EvidenceView {
    use v1::evidence::Kind;
    let empty = EvidenceView {
        kind: "empty".into(),
        validator: None,
        epoch: None,
        round: None,
        vote_type: None,
        values: None,
        subnet: None,
    };
    match &evidence.kind {
        Some(Kind::DuplicateVote(d)) => {
            let first = d.first.clone().unwrap_or_default();
            let second = d.second.clone().unwrap_or_default();
            EvidenceView {
                kind: "duplicate_vote".into(),
                validator: Some(hex::encode(&first.validator)),
                epoch: Some(first.epoch),
                round: Some(first.round),
                vote_type: Some(first.vote_type),
                values: Some([hex::encode(&first.value_id), hex::encode(&second.value_id)]),
                ..empty
            }
        }
        Some(Kind::DuplicateProposal(d)) => {
            let first = d.first.clone().unwrap_or_default();
            let second = d.second.clone().unwrap_or_default();
            EvidenceView {
                kind: "duplicate_proposal".into(),
                validator: Some(hex::encode(&first.proposer)),
                epoch: Some(first.epoch),
                round: Some(first.round),
                values: Some([hex::encode(&first.value_id), hex::encode(&second.value_id)]),
                ..empty
            }
        }
        Some(Kind::DuplicateWeightCommit(d)) => {
            let first = d.first.clone().unwrap_or_default();
            EvidenceView {
                kind: "duplicate_weight_commit".into(),
                validator: Some(hex::encode(&first.validator)),
                epoch: Some(first.epoch),
                subnet: Some(first.subnet),
                ..empty
            }
        }
        None => empty,
    }
}

/// A coldkey's balance, nonce and stakes.
pub fn account(state: &State, coldkey: &Key) -> Account {
    let account = state.account(coldkey);
    let stakes = state
        .stakes
        .iter()
        .flat_map(|(&subnet, hotkeys)| {
            hotkeys.iter().filter_map(move |(hotkey, coldkeys)| {
                coldkeys.get(coldkey).map(|&amount| StakeView {
                    subnet,
                    hotkey: hotkey.to_hex(),
                    amount,
                })
            })
        })
        .collect();
    let delegations = state
        .stakes
        .iter()
        .flat_map(|(&subnet, hotkeys)| {
            hotkeys.iter().filter_map(move |(hotkey, coldkeys)| {
                let amount = *coldkeys.get(coldkey)?;
                let owner = state.owner_of(hotkey);
                (owner != Some(*coldkey)).then(|| DelegationView {
                    subnet,
                    hotkey: hotkey.to_hex(),
                    owner: owner.map(|o| o.to_hex()),
                    amount,
                    take_per_mille: state.take_of(hotkey),
                })
            })
        })
        .collect();
    let unbonding = state
        .unbonding
        .iter()
        .filter(|((_, c, _), _)| c == coldkey)
        .map(unbonding_view)
        .collect();
    Account {
        coldkey: coldkey.to_hex(),
        balance: account.balance,
        nonce: account.nonce,
        stakes,
        epoch: state.epoch,
        delegations,
        unbonding,
    }
}

/// The validator hotkeys nominators may stake behind: every permit holder and every hotkey whose
/// owner set a take, by total stake (largest first).
pub fn delegates(state: &State) -> Vec<DelegateView> {
    let owners = state.hotkey_owners();
    let mut permits: std::collections::BTreeMap<Key, Vec<u32>> = Default::default();
    for (subnet, holders) in state.permit_holders() {
        for hotkey in holders {
            permits.entry(hotkey).or_default().push(subnet);
        }
    }
    let mut keys: std::collections::BTreeSet<Key> = permits.keys().copied().collect();
    keys.extend(state.delegates.keys().copied());
    let mut views: Vec<DelegateView> = keys
        .into_iter()
        .map(|hotkey| {
            let owner = owners.get(&hotkey).copied().flatten();
            let held = permits.remove(&hotkey).unwrap_or_default();
            delegate_view(state, hotkey, owner, held, false)
        })
        .collect();
    views.sort_by(|a, b| {
        b.total_stake
            .cmp(&a.total_stake)
            .then(a.hotkey.cmp(&b.hotkey))
    });
    views
}

/// One delegate with every stake behind it, if it holds a permit, has a take set, or has stake.
pub fn delegate(state: &State, hotkey: &Key) -> Option<DelegateView> {
    let permits: Vec<u32> = state
        .permit_holders()
        .into_iter()
        .filter(|(_, holders)| holders.contains(hotkey))
        .map(|(subnet, _)| subnet)
        .collect();
    let staked = state.stakes.values().any(|h| h.contains_key(hotkey));
    if permits.is_empty() && !staked && !state.delegates.contains_key(hotkey) {
        return None;
    }
    Some(delegate_view(
        state,
        *hotkey,
        state.owner_of(hotkey),
        permits,
        true,
    ))
}

fn delegate_view(
    state: &State,
    hotkey: Key,
    owner: Option<Key>,
    permits: Vec<u32>,
    with_stakes: bool,
) -> DelegateView {
    let take = state.take_of(&hotkey);
    let set = state.delegates.get(&hotkey);
    let mut view = DelegateView {
        epoch: state.epoch,
        hotkey: hotkey.to_hex(),
        owner: owner.map(|o| o.to_hex()),
        take_per_mille: take,
        take_set: set.is_some(),
        take_changed_at: set.map(|d| d.changed_at),
        next_raise_from: state.next_raise_from(&hotkey),
        permits,
        finalizer: state.finalizers.get(&hotkey).is_some_and(|f| f.declared),
        total_stake: 0,
        owner_stake: 0,
        nominators: 0,
        nominator_stake: 0,
        last_dividends: 0,
        return_per_1000: 0.0,
        stakes: Vec::new(),
    };
    let mut nominators = std::collections::BTreeSet::new();
    let mut per_epoch = 0.0;
    for (&subnet, hotkeys) in &state.stakes {
        let Some(behind) = hotkeys.get(&hotkey) else {
            continue;
        };
        for (&coldkey, &amount) in behind {
            view.total_stake = view.total_stake.saturating_add(amount);
            if Some(coldkey) == owner {
                view.owner_stake = view.owner_stake.saturating_add(amount);
            } else {
                view.nominator_stake = view.nominator_stake.saturating_add(amount);
                nominators.insert(coldkey);
            }
            if with_stakes {
                view.stakes.push(NominationView {
                    coldkey: coldkey.to_hex(),
                    subnet,
                    amount,
                });
            }
        }
        if let Some(chain) = state.subnets.get(&subnet)
            && let Some(uid) = chain.uid_of(&hotkey)
        {
            let dividends = chain.neurons[uid as usize].last_dividends;
            view.last_dividends = view.last_dividends.saturating_add(dividends);
            per_epoch += dividends as f64 / chain.params.tempo.max(1) as f64;
        }
    }
    view.nominators = nominators.len();
    if view.total_stake > 0 {
        view.return_per_1000 =
            per_epoch * (1000 - take.min(1000)) as f64 / 1000.0 * 1000.0 / view.total_stake as f64;
    }
    view
}

/// A subnet's finalized metagraph: registration price, owner and every neuron with stake and
/// results.
pub fn chain_metagraph(state: &State, id: u32) -> Option<ChainMetagraph> {
    let subnet = state.subnets.get(&id)?;
    let permits: std::collections::HashSet<_> =
        state.permits(id).into_iter().map(|(key, _)| key).collect();
    let neurons = subnet
        .neurons
        .iter()
        .zip(0u32..)
        .map(|(n, uid)| NeuronView {
            uid,
            hotkey: n.hotkey.to_hex(),
            owner: n.owner.to_hex(),
            stake: state.hotkey_stake(id, &n.hotkey),
            registered_at: n.registered_at,
            last_update: n.last_update,
            validator_permit: permits.contains(&n.hotkey),
            permit_since: n.permit_since,
            active: state.active(n, subnet.params.activity_cutoff),
            consensus: n.results[0],
            incentive: n.results[1],
            dividends: n.results[2],
            validator_trust: n.results[3],
            emission: n.last_emission,
            bonds: n.bonds.clone(),
        })
        .collect();
    Some(ChainMetagraph {
        name: subnet.name.clone(),
        tasks: subnet.tasks.clone(),
        owner: subnet.owner.map(|o| o.to_hex()),
        burn: subnet.burn,
        locked: subnet.locked,
        neurons,
    })
}

/// Supply, parameters and subnets at a glance.
pub fn economy(state: &State) -> Economy {
    Economy {
        epoch: state.epoch,
        supply: SupplyView {
            genesis: state.supply.genesis,
            emitted: state.supply.emitted,
            burned: state.supply.burned,
            total: u128::from(state.supply.genesis) + u128::from(state.supply.emitted)
                - u128::from(state.supply.burned),
        },
        params: state.params,
        subnets: state.subnets.keys().copied().collect(),
        accounts: state.accounts.len(),
        root: hex::encode(state.root()),
        finalizers: {
            let next = state.voting_set(&v1::ValidatorSet::default());
            state
                .finalizers
                .iter()
                .map(|(hotkey, f)| finalizer_view(state, hotkey, f, &next))
                .collect()
        },
        unbonding: state.unbonding.iter().map(unbonding_view).collect(),
    }
}

/// One entry of stake on its way back to a balance.
fn unbonding_view(
    (&(release_epoch, coldkey, hotkey), &amount): (&(u64, Key, Key), &u64),
) -> UnbondingView {
    UnbondingView {
        release_epoch,
        coldkey: coldkey.to_hex(),
        hotkey: hotkey.to_hex(),
        amount,
    }
}

/// `hotkey`'s finalizer record `f` in `state`, with whether `next` holds it.
fn finalizer_view(
    state: &State,
    hotkey: &Key,
    f: &crate::state::Finalizer,
    next: &v1::ValidatorSet,
) -> FinalizerView {
    FinalizerView {
        hotkey: hotkey.to_hex(),
        coldkey: f.coldkey.to_hex(),
        declared: f.declared,
        left_at: (!f.declared).then_some(f.left_at),
        jailed_until: (f.jailed_until > state.epoch).then_some(f.jailed_until),
        own_stake: state.own_stake(hotkey, &f.coldkey),
        in_next_set: next.validators.iter().any(|v| v.hotkey == hotkey.0),
        in_set_since: f.in_set_since,
    }
}

/// Where `hotkey` stands in `state`: its registrations, permits, finalizer record and unbonding
/// stake, and a sentence that says it all.
pub fn standing(state: &State, hotkey: &Key) -> Standing {
    let subnets: Vec<SubnetStanding> = state
        .subnets
        .iter()
        .filter_map(|(&subnet, chain)| {
            let uid = chain.uid_of(hotkey)?;
            Some(SubnetStanding {
                subnet,
                uid,
                stake: state.hotkey_stake(subnet, hotkey),
                validator_permit: state.permits(subnet).iter().any(|(k, _)| k == hotkey),
                permit_since: chain.neurons.get(uid as usize).and_then(|n| n.permit_since),
            })
        })
        .collect();
    let next = state.voting_set(&v1::ValidatorSet::default());
    let finalizer = state
        .finalizers
        .get(hotkey)
        .map(|f| finalizer_view(state, hotkey, f, &next));
    let unbonding = state
        .unbonding
        .iter()
        .filter(|((_, _, h), _)| h == hotkey)
        .fold(0u64, |sum, (_, &amount)| sum.saturating_add(amount));
    let mut parts: Vec<String> = subnets
        .iter()
        .map(|s| {
            let permit = match (s.validator_permit, s.permit_since) {
                (true, Some(since)) => format!(", validator permit from epoch {since}"),
                (true, None) => ", validator permit".to_string(),
                (false, _) => ", no validator permit".to_string(),
            };
            format!(
                "registered on subnet {} (uid {}, stake {}{permit})",
                s.subnet, s.uid, s.stake
            )
        })
        .collect();
    if parts.is_empty() {
        parts.push("registered on no subnet".into());
    }
    parts.push(match &finalizer {
        Some(f) if f.jailed_until.is_some() => format!(
            "finalizer jailed until epoch {}",
            f.jailed_until.unwrap_or_default()
        ),
        Some(f) if f.declared && f.in_next_set => match f.in_set_since {
            Some(since) => format!(
                "finalizer from epoch {since}, in the next set (own stake {})",
                f.own_stake
            ),
            None => format!("finalizer in the next set (own stake {})", f.own_stake),
        },
        Some(f) if f.declared => format!(
            "declared finalizer, not in the next set (own stake {})",
            f.own_stake
        ),
        _ => "not a declared finalizer".into(),
    });
    if unbonding > 0 {
        parts.push(format!("{unbonding} unbonding"));
    }
    Standing {
        hotkey: hotkey.to_hex(),
        epoch: state.epoch,
        subnets,
        finalizer,
        unbonding,
        summary: format!("at epoch {}: {}", state.epoch, parts.join("; ")),
    }
}

/// An error answer with `code`.
pub fn api_error(code: v1::ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError {
        error: ErrorBody {
            code: code.as_str_name().to_string(),
            message: message.into(),
        },
    }
}

/// `bytes` written as `encoding` says.
fn encode(bytes: &[u8], encoding: Encoding) -> String {
    use base64::Engine as _;
    match encoding {
        Encoding::Text => String::from_utf8_lossy(bytes).into_owned(),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

fn answer(r: &v1::QueryResponse, encoding: Encoding) -> Answer {
    Answer {
        output: encode(&r.output, encoding),
        content_type: r.content_type.clone(),
        // The router checked it is the miner's key: shown as it is, not parsed again.
        miner: hex::encode(&r.miner),
        elapsed_us: r.elapsed_us,
    }
}

/// A validator's answer frame (one answer, or all of them), or its typed error.
pub fn query_answer(
    frame: Option<&v1::QueryFrame>,
) -> Result<QueryAnswer, (v1::ErrorCode, String)> {
    query_answer_as(frame, Encoding::Text)
}

/// [`query_answer`] with the outputs written as `encoding` says.
pub fn query_answer_as(
    frame: Option<&v1::QueryFrame>,
    encoding: Encoding,
) -> Result<QueryAnswer, (v1::ErrorCode, String)> {
    match frame.and_then(|f| f.body.as_ref()) {
        Some(v1::query_frame::Body::Response(r)) => Ok(QueryAnswer::One(answer(r, encoding))),
        Some(v1::query_frame::Body::Responses(all)) => Ok(QueryAnswer::All {
            answers: all.responses.iter().map(|r| answer(r, encoding)).collect(),
        }),
        Some(v1::query_frame::Body::Error(e)) => Err((
            v1::ErrorCode::try_from(e.code).unwrap_or(v1::ErrorCode::Internal),
            e.message.clone(),
        )),
        _ => Err((v1::ErrorCode::DeadlineExceeded, "no answer in time".into())),
    }
}

/// One line of a streamed answer: a piece of the answer, the miner's signed end, or an error.
pub fn stream_line(frame: &v1::QueryFrame) -> StreamLine {
    stream_line_as(frame, Encoding::Text)
}

/// [`stream_line`] with the pieces written as `encoding` says.
pub fn stream_line_as(frame: &v1::QueryFrame, encoding: Encoding) -> StreamLine {
    match &frame.body {
        Some(v1::query_frame::Body::Chunk(chunk)) => match &chunk.trailer {
            Some(trailer) if chunk.last => StreamLine::Done {
                done: true,
                miner: trailer.signer().map(|k| k.to_hex()).unwrap_or_default(),
                elapsed_us: trailer.elapsed_us,
                chunks: chunk.seq,
            },
            _ => StreamLine::Chunk {
                chunk: encode(&chunk.data, encoding),
            },
        },
        _ => match query_answer_as(Some(frame), encoding) {
            Err((code, message)) => StreamLine::Error(api_error(code, message)),
            Ok(answer) => StreamLine::Answer(answer),
        },
    }
}

/// Subnet `id` of `state`, at a glance.
pub fn subnet(state: &State, id: u32) -> Option<SubnetView> {
    subnet_with(state, id, &state.market_shares(1_000_000))
}

/// Subnet `id` with the market's `shares` of a million.
fn subnet_with(
    state: &State,
    id: u32,
    shares: &std::collections::BTreeMap<u32, u64>,
) -> Option<SubnetView> {
    let chain = state.subnets.get(&id)?;
    Some(SubnetView {
        id,
        name: chain.name.clone(),
        tasks: chain.tasks.clone(),
        owner: chain.owner.map(|k| k.to_hex()),
        locked: chain.locked,
        burn: chain.burn,
        neurons: chain.neurons.len(),
        permits: state.permits(id).len(),
        stake: state.subnet_stake(id),
        last_emission: chain
            .neurons
            .iter()
            .fold(0u64, |sum, n| sum.saturating_add(n.last_emission)),
        params: crate::state::PARAMS
            .iter()
            .zip(state.params.bounds.0)
            .map(|(spec, (min, max))| {
                let value = spec.get(&chain.params);
                ParamView {
                    name: spec.name.to_string(),
                    doc: spec.doc.to_string(),
                    value,
                    pending: chain
                        .pending
                        .map(|p| spec.get(&p))
                        .filter(|&next| next != value),
                    min,
                    max,
                    changed_at: chain.changes.get(spec.name).copied(),
                }
            })
            .collect(),
        params_changed_at: chain.params_changed_at,
        params_open_from: chain.params_changed_at.map_or(0, |at| {
            at.saturating_add(state.params.owner_rate_limit.max(1))
        }),
        created_at: chain.created_at,
        immune_until: chain
            .created_at
            .saturating_add(state.params.subnet_immunity_epochs),
        stake_ema: chain.stake_ema,
        flow_ema: chain.flow_ema,
        pending_emission: chain.pending_emission,
        emission_share_ppm: shares.get(&id).copied().unwrap_or(0),
    })
}

/// Every subnet of `state`, by id.
pub fn subnets(state: &State) -> Vec<SubnetView> {
    let shares = state.market_shares(1_000_000);
    state
        .subnets
        .keys()
        .filter_map(|&id| subnet_with(state, id, &shares))
        .collect()
}
