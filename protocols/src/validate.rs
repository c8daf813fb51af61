//! Structural and contextual validation of every message type, with errors that name the field.

use crate::codec::{MAX_PAYLOAD, MAX_SYNC_BATCH, MAX_UIDS, MAX_VALIDATORS};
use crate::hash::HASH_LEN;
use crate::identity::{IdentityError, PUBLIC_KEY_LEN, PublicKey, SIGNATURE_LEN};
use crate::network::NetworkId;
use crate::query::QUERY_ID_LEN;
use crate::signing::{SignatureError, Signed};
use crate::v1;

/// Length in bytes of a network id.
pub const NETWORK_ID_LEN: usize = 32;
/// Longest task, subnet or model name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest free-text field (error messages, versions, addresses).
pub const MAX_TEXT_LEN: usize = 1024;
/// Longest time a capability ad may be valid for.
pub const MAX_AD_LIFETIME_MS: u64 = 24 * 60 * 60 * 1000;
/// Longest deadline a query may ask for.
pub const MAX_DEADLINE_MS: u32 = 5 * 60 * 1000;
/// Most addresses in one capability ad.
pub const MAX_ADDRS: usize = 16;
/// Most subnets in a genesis or transaction.
pub const MAX_SUBNETS: usize = 4096;
/// Most tasks on one subnet.
pub const MAX_TASKS: usize = 256;
/// Most parameters one subnet-parameter change sets.
pub const MAX_PARAM_VALUES: usize = 32;
/// Most transactions in one snapshot.
pub const MAX_TXS: usize = 100_000;
/// Most pieces of evidence in one snapshot.
pub const MAX_EVIDENCE: usize = 1024;

/// Why a field is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// A fixed-size field has the wrong size.
    #[error("must be {expected} bytes, got {actual}")]
    BadLength {
        /// Required length.
        expected: usize,
        /// Length received.
        actual: usize,
    },
    /// A variable-size field is too long.
    #[error("longer than {max} (got {actual})")]
    TooLong {
        /// Largest accepted.
        max: usize,
        /// Length received.
        actual: usize,
    },
    /// A list has too many entries.
    #[error("more than {max} entries (got {actual})")]
    TooMany {
        /// Most accepted.
        max: usize,
        /// Entries received.
        actual: usize,
    },
    /// A required field is absent.
    #[error("missing")]
    Missing,
    /// A required field is empty.
    #[error("must not be empty")]
    Empty,
    /// A value is outside its allowed range.
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// A list must be strictly increasing and is not.
    #[error("not strictly increasing")]
    NotSorted,
    /// A list holds the same entry twice.
    #[error("duplicate entry")]
    Duplicate,
    /// A text field holds characters it may not.
    #[error("invalid characters (allowed: a-z A-Z 0-9 and - _ . : /)")]
    BadCharacters,
    /// Fields that must agree do not.
    #[error("inconsistent: {0}")]
    Inconsistent(String),
    /// The message's validity ended.
    #[error("expired at {expired_at_ms} ms (now {now_ms} ms)")]
    Expired {
        /// End of validity.
        expired_at_ms: u64,
        /// The validator's clock.
        now_ms: u64,
    },
    /// The message claims a time too far in the future.
    #[error("not valid before {valid_from_ms} ms (now {now_ms} ms)")]
    NotYetValid {
        /// Start of validity.
        valid_from_ms: u64,
        /// The validator's clock.
        now_ms: u64,
    },
    /// The key is not a usable ed25519 public key.
    #[error("invalid public key: {0}")]
    InvalidKey(IdentityError),
    /// The signature does not verify.
    #[error("bad signature: {0}")]
    BadSignature(SignatureError),
    /// The message is for another network.
    #[error("wrong network id")]
    WrongNetwork,
}

/// A validation failure: which field (a dotted path such as `snapshot.header.parent_hash`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// Path of the offending field.
    pub field: String,
    /// What is wrong with it.
    pub reason: Reason,
}

impl ValidationError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, reason: Reason) -> Self {
        Self {
            field: field.into(),
            reason,
        }
    }

    /// The same error, seen from the message that contains `parent`.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

type Result<T = ()> = std::result::Result<T, ValidationError>;

/// A message that can check its own structure (lengths, ranges, ordering) without outside context.
pub trait Validate {
    /// Checks the message, naming the first offending field.
    fn validate(&self) -> Result;
}

/// A signed message that belongs to one network and may be valid only for a window of time.
pub trait Scoped: Signed + Validate {
    /// The network id field.
    fn network_id(&self) -> &[u8];
    /// `(valid_from_ms, valid_until_ms)` if the message is time-bound.
    fn validity_window(&self) -> Option<(u64, u64)> {
        None
    }
}

/// What a receiver knows when it accepts a message: its network and its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The receiver's network id.
    pub network_id: NetworkId,
    /// The receiver's clock, in milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// How far in the future a message's start time may be, to allow for clock skew.
    pub max_clock_skew_ms: u64,
}

impl Context {
    /// Full acceptance check: structure, network, time window and signature.
    pub fn check<M: Scoped>(&self, message: &M) -> Result {
        message.validate()?;
        if !self.network_id.is(message.network_id()) {
            return Err(ValidationError::new("network_id", Reason::WrongNetwork));
        }
        if let Some((from, until)) = message.validity_window() {
            if self.now_ms >= until {
                return Err(ValidationError::new(
                    "expires_at_ms",
                    Reason::Expired {
                        expired_at_ms: until,
                        now_ms: self.now_ms,
                    },
                ));
            }
            if from > self.now_ms.saturating_add(self.max_clock_skew_ms) {
                return Err(ValidationError::new(
                    "issued_at_ms",
                    Reason::NotYetValid {
                        valid_from_ms: from,
                        now_ms: self.now_ms,
                    },
                ));
            }
        }
        message
            .verify_signature()
            .map_err(|e| ValidationError::new("signature", Reason::BadSignature(e)))
    }
}

fn fixed_len(field: &str, bytes: &[u8], expected: usize) -> Result {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            Reason::BadLength {
                expected,
                actual: bytes.len(),
            },
        ))
    }
}

fn network(bytes: &[u8]) -> Result {
    fixed_len("network_id", bytes, NETWORK_ID_LEN)
}

fn hash_field(field: &str, bytes: &[u8]) -> Result {
    fixed_len(field, bytes, HASH_LEN)
}

fn key(field: &str, bytes: &[u8]) -> Result {
    fixed_len(field, bytes, PUBLIC_KEY_LEN)?;
    PublicKey::from_bytes(bytes)
        .map(|_| ())
        .map_err(|e| ValidationError::new(field, Reason::InvalidKey(e)))
}

fn signature(bytes: &[u8]) -> Result {
    fixed_len("signature", bytes, SIGNATURE_LEN)
}

fn max_len(field: &str, actual: usize, max: usize) -> Result {
    if actual > max {
        return Err(ValidationError::new(field, Reason::TooLong { max, actual }));
    }
    Ok(())
}

fn max_count(field: &str, actual: usize, max: usize) -> Result {
    if actual > max {
        return Err(ValidationError::new(field, Reason::TooMany { max, actual }));
    }
    Ok(())
}

fn non_empty(field: &str, empty: bool) -> Result {
    if empty {
        return Err(ValidationError::new(field, Reason::Empty));
    }
    Ok(())
}

fn positive(field: &str, value: u64) -> Result {
    if value == 0 {
        return Err(ValidationError::new(
            field,
            Reason::OutOfRange("must be greater than zero".into()),
        ));
    }
    Ok(())
}

/// A task, subnet or model name: 1 to 64 characters from a safe set.
fn name(field: &str, text: &str) -> Result {
    non_empty(field, text.is_empty())?;
    max_len(field, text.len(), MAX_NAME_LEN)?;
    let ok = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'));
    if !ok {
        return Err(ValidationError::new(field, Reason::BadCharacters));
    }
    Ok(())
}

/// Longest media type accepted.
pub const MAX_CONTENT_TYPE_LEN: usize = 64;

/// A media type: empty, or a lowercase `type/subtype` of token characters with optional
/// `; key=value` parameters, in printable ASCII.
fn content_type(field: &str, text: &str) -> Result {
    if text.is_empty() {
        return Ok(());
    }
    max_len(field, text.len(), MAX_CONTENT_TYPE_LEN)?;
    let printable = text.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    let token = |part: &str| {
        !part.is_empty()
            && part.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(
                        b,
                        b'!' | b'#' | b'$' | b'&' | b'^' | b'_' | b'.' | b'+' | b'-'
                    )
            })
    };
    let essence = text.split(';').next().unwrap_or_default();
    let shaped = essence
        .split_once('/')
        .is_some_and(|(t, s)| token(t) && token(s));
    if !printable || !shaped {
        return Err(ValidationError::new(field, Reason::BadCharacters));
    }
    Ok(())
}

fn u16_values(field: &str, values: &[u32]) -> Result {
    if let Some(i) = values.iter().position(|&v| v > u32::from(u16::MAX)) {
        return Err(ValidationError::new(
            format!("{field}[{i}]"),
            Reason::OutOfRange("must fit in u16".into()),
        ));
    }
    Ok(())
}

fn strictly_increasing<T: Ord>(field: &str, items: impl IntoIterator<Item = T>) -> Result {
    let mut last: Option<T> = None;
    for (i, item) in items.into_iter().enumerate() {
        if let Some(prev) = &last
            && *prev >= item
        {
            let reason = if *prev == item {
                Reason::Duplicate
            } else {
                Reason::NotSorted
            };
            return Err(ValidationError::new(format!("{field}[{i}]"), reason));
        }
        last = Some(item);
    }
    Ok(())
}

/// Refuses a list that holds an entry twice, naming the index of the second occurrence.
fn unique<T: Eq + std::hash::Hash>(field: &str, items: impl IntoIterator<Item = T>) -> Result {
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.into_iter().enumerate() {
        if !seen.insert(item) {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                Reason::Duplicate,
            ));
        }
    }
    Ok(())
}

fn required<T: Validate>(field: &str, value: Option<&T>) -> Result {
    match value {
        None => Err(ValidationError::new(field, Reason::Missing)),
        Some(inner) => inner.validate().map_err(|e| e.within(field)),
    }
}

fn each<T: Validate>(field: &str, items: &[T], max: usize) -> Result {
    max_count(field, items.len(), max)?;
    for (i, item) in items.iter().enumerate() {
        item.validate()
            .map_err(|e| e.within(&format!("{field}[{i}]")))?;
    }
    Ok(())
}

fn inconsistent(field: &str, what: &str) -> ValidationError {
    ValidationError::new(field, Reason::Inconsistent(what.into()))
}

impl Validate for v1::Error {
    fn validate(&self) -> Result {
        if v1::ErrorCode::try_from(self.code).is_err() {
            return Err(ValidationError::new(
                "code",
                Reason::OutOfRange(format!("unknown error code {}", self.code)),
            ));
        }
        max_len("message", self.message.len(), MAX_TEXT_LEN)
    }
}

impl Validate for v1::SignedEnvelope {
    fn validate(&self) -> Result {
        network(&self.network_id)?;
        match v1::PayloadKind::try_from(self.kind) {
            Ok(v1::PayloadKind::Unspecified) | Err(_) => {
                return Err(ValidationError::new(
                    "kind",
                    Reason::OutOfRange(format!("unknown payload kind {}", self.kind)),
                ));
            }
            Ok(_) => {}
        }
        key("signer", &self.signer)?;
        max_len("payload", self.payload.len(), MAX_PAYLOAD)?;
        signature(&self.signature)
    }
}

impl Validate for v1::CapabilityAd {
    fn validate(&self) -> Result {
        network(&self.network_id)?;
        name("task", &self.task)?;
        max_len("model_id", self.model_id.len(), MAX_TEXT_LEN)?;
        max_len("version", self.version.len(), MAX_NAME_LEN)?;
        positive("max_concurrency", u64::from(self.max_concurrency))?;
        max_count("addrs", self.addrs.len(), MAX_ADDRS)?;
        for (i, addr) in self.addrs.iter().enumerate() {
            let field = format!("addrs[{i}]");
            non_empty(&field, addr.is_empty())?;
            max_len(&field, addr.len(), MAX_TEXT_LEN)?;
        }
        max_len("query_addr", self.query_addr.len(), MAX_TEXT_LEN)?;
        if self.expires_at_ms <= self.issued_at_ms {
            return Err(inconsistent("expires_at_ms", "must be after issued_at_ms"));
        }
        if self.expires_at_ms - self.issued_at_ms > MAX_AD_LIFETIME_MS {
            return Err(ValidationError::new(
                "expires_at_ms",
                Reason::OutOfRange(format!("lifetime over {MAX_AD_LIFETIME_MS} ms")),
            ));
        }
        key("miner", &self.miner)?;
        signature(&self.signature)
    }
}

impl Validate for v1::Query {
    fn validate(&self) -> Result {
        fixed_len("id", &self.id, QUERY_ID_LEN)?;
        network(&self.network_id)?;
        name("task", &self.task)?;
        max_len("payload", self.payload.len(), MAX_PAYLOAD)?;
        content_type("content_type", &self.content_type)?;
        if self.deadline_ms == 0 || self.deadline_ms > MAX_DEADLINE_MS {
            return Err(ValidationError::new(
                "deadline_ms",
                Reason::OutOfRange(format!("must be 1..={MAX_DEADLINE_MS}")),
            ));
        }
        Ok(())
    }
}

impl Validate for v1::QueryResponse {
    fn validate(&self) -> Result {
        key("miner", &self.miner)?;
        self.validate_fields()
    }
}

impl v1::QueryResponse {
    /// Checks the response as [`Validate::validate`] does, for an answer that must come from
    /// `miner`: its key is compared with `miner` instead of being parsed again.
    pub fn validate_from(&self, miner: &PublicKey) -> Result {
        if self.miner.as_slice() != miner.as_bytes() {
            return Err(inconsistent("miner", "not the miner asked"));
        }
        self.validate_fields()
    }

    /// Every rule but the miner key's.
    fn validate_fields(&self) -> Result {
        fixed_len("id", &self.id, QUERY_ID_LEN)?;
        hash_field("query_hash", &self.query_hash)?;
        max_len("output", self.output.len(), MAX_PAYLOAD)?;
        content_type("content_type", &self.content_type)?;
        if let Some(error) = &self.error {
            error.validate().map_err(|e| e.within("error"))?;
            if !self.output.is_empty() {
                return Err(inconsistent("output", "must be empty when error is set"));
            }
        }
        signature(&self.signature)
    }
}

impl Validate for v1::QueryChunk {
    fn validate(&self) -> Result {
        fixed_len("id", &self.id, QUERY_ID_LEN)?;
        max_len("data", self.data.len(), MAX_PAYLOAD)?;
        match (&self.trailer, self.last) {
            (Some(trailer), true) => {
                trailer.validate().map_err(|e| e.within("trailer"))?;
                if trailer.error.is_none() && trailer.output.len() != 32 {
                    return Err(inconsistent(
                        "trailer.output",
                        "must be the 32-byte hash of the streamed data",
                    ));
                }
                Ok(())
            }
            (None, true) => Err(ValidationError::new("trailer", Reason::Missing)),
            (Some(_), false) => Err(inconsistent("trailer", "only the last chunk has one")),
            (None, false) => Ok(()),
        }
    }
}

impl Validate for v1::QueryResponses {
    fn validate(&self) -> Result {
        each("responses", &self.responses, 16)
    }
}

impl Validate for v1::QueryFrame {
    fn validate(&self) -> Result {
        use v1::query_frame::Body;
        match &self.body {
            None => Err(ValidationError::new("body", Reason::Missing)),
            Some(Body::Query(m)) => m.validate().map_err(|e| e.within("query")),
            Some(Body::Response(m)) => m.validate().map_err(|e| e.within("response")),
            Some(Body::Chunk(m)) => m.validate().map_err(|e| e.within("chunk")),
            Some(Body::Error(m)) => m.validate().map_err(|e| e.within("error")),
            Some(Body::Responses(m)) => m.validate().map_err(|e| e.within("responses")),
        }
    }
}

impl Validate for v1::WeightCommit {
    fn validate(&self) -> Result {
        network(&self.network_id)?;
        key("validator", &self.validator)?;
        hash_field("commit_hash", &self.commit_hash)?;
        signature(&self.signature)
    }
}

impl Validate for v1::WeightReveal {
    fn validate(&self) -> Result {
        network(&self.network_id)?;
        key("validator", &self.validator)?;
        max_count("uids", self.uids.len(), MAX_UIDS)?;
        if self.uids.len() != self.weights.len() {
            return Err(inconsistent("weights", "must have one entry per uid"));
        }
        strictly_increasing("uids", self.uids.iter())?;
        if let Some(i) = self.uids.iter().position(|&u| u as usize >= MAX_UIDS) {
            return Err(ValidationError::new(
                format!("uids[{i}]"),
                Reason::OutOfRange(format!("must be below {MAX_UIDS}")),
            ));
        }
        u16_values("weights", &self.weights)?;
        hash_field("salt", &self.salt)?;
        signature(&self.signature)
    }
}

fn vote_type(field: &str, value: i32) -> Result {
    match v1::VoteType::try_from(value) {
        Ok(v1::VoteType::Prevote | v1::VoteType::Precommit) => Ok(()),
        _ => Err(ValidationError::new(
            field,
            Reason::OutOfRange(format!("unknown vote type {value}")),
        )),
    }
}

impl Validate for v1::Proposal {
    fn validate(&self) -> Result {
        network(&self.network_id)?;
        if let Some(pol) = self.pol_round
            && pol >= self.round
        {
            return Err(inconsistent("pol_round", "must be below round"));
        }
        hash_field("value_id", &self.value_id)?;
        hash_field("valset_hash", &self.valset_hash)?;
        key("proposer", &self.proposer)?;
        signature(&self.signature)
    }
}

impl Validate for v1::Vote {
    fn validate(&self) -> Result {
        network(&self.network_id)?;
        vote_type("vote_type", self.vote_type)?;
        if !self.value_id.is_empty() {
            hash_field("value_id", &self.value_id)?;
        }
        hash_field("valset_hash", &self.valset_hash)?;
        key("validator", &self.validator)?;
        signature(&self.signature)
    }
}

impl Validate for v1::CommitSignature {
    fn validate(&self) -> Result {
        key("validator", &self.validator)?;
        signature(&self.signature)
    }
}

impl Validate for v1::Certificate {
    fn validate(&self) -> Result {
        network(&self.network_id)?;
        hash_field("value_id", &self.value_id)?;
        hash_field("valset_hash", &self.valset_hash)?;
        non_empty("signatures", self.signatures.is_empty())?;
        each("signatures", &self.signatures, MAX_VALIDATORS)?;
        strictly_increasing("signatures", self.signatures.iter().map(|s| &s.validator))
    }
}

/// Checks that two signed messages conflict: same signer and slot, different content.
fn conflicting<M: Validate + Signed + PartialEq>(
    first: Option<&M>,
    second: Option<&M>,
    same_slot: impl Fn(&M, &M) -> bool,
) -> Result {
    required("first", first)?;
    required("second", second)?;
    let (Some(a), Some(b)) = (first, second) else {
        return Err(ValidationError::new("first", Reason::Missing));
    };
    if a.signer_bytes() != b.signer_bytes() {
        return Err(inconsistent("second", "signed by another key"));
    }
    if !same_slot(a, b) {
        return Err(inconsistent("second", "not for the same slot"));
    }
    if a == b {
        return Err(inconsistent("second", "identical to first"));
    }
    Ok(())
}

impl Validate for v1::Evidence {
    fn validate(&self) -> Result {
        use v1::evidence::Kind;
        match &self.kind {
            None => Err(ValidationError::new("kind", Reason::Missing)),
            Some(Kind::DuplicateVote(d)) => {
                conflicting(d.first.as_ref(), d.second.as_ref(), |a, b| {
                    a.network_id == b.network_id
                        && a.epoch == b.epoch
                        && a.round == b.round
                        && a.vote_type == b.vote_type
                })
                .map_err(|e| e.within("duplicate_vote"))
            }
            Some(Kind::DuplicateProposal(d)) => {
                conflicting(d.first.as_ref(), d.second.as_ref(), |a, b| {
                    a.network_id == b.network_id && a.epoch == b.epoch && a.round == b.round
                })
                .map_err(|e| e.within("duplicate_proposal"))
            }
            Some(Kind::DuplicateWeightCommit(d)) => {
                conflicting(d.first.as_ref(), d.second.as_ref(), |a, b| {
                    a.network_id == b.network_id && a.subnet == b.subnet && a.epoch == b.epoch
                })
                .map_err(|e| e.within("duplicate_weight_commit"))
            }
        }
    }
}

impl Validate for v1::Transaction {
    fn validate(&self) -> Result {
        use v1::transaction::Kind;
        network(&self.network_id)?;
        key("coldkey", &self.coldkey)?;
        match &self.kind {
            None => return Err(ValidationError::new("kind", Reason::Missing)),
            Some(Kind::Transfer(t)) => {
                key("transfer.to", &t.to)?;
                positive("transfer.amount", t.amount)?;
            }
            Some(Kind::AddStake(s)) => {
                key("add_stake.hotkey", &s.hotkey)?;
                positive("add_stake.amount", s.amount)?;
            }
            Some(Kind::RemoveStake(s)) => {
                key("remove_stake.hotkey", &s.hotkey)?;
                positive("remove_stake.amount", s.amount)?;
            }
            Some(Kind::Register(r)) => {
                key("register.hotkey", &r.hotkey)?;
                fixed_len(
                    "register.hotkey_signature",
                    &r.hotkey_signature,
                    SIGNATURE_LEN,
                )?;
            }
            Some(Kind::CreateSubnet(c)) => {
                name("create_subnet.name", &c.name)?;
                non_empty("create_subnet.tasks", c.tasks.is_empty())?;
                max_count("create_subnet.tasks", c.tasks.len(), MAX_TASKS)?;
                for (i, task) in c.tasks.iter().enumerate() {
                    name(&format!("create_subnet.tasks[{i}]"), task)?;
                }
                unique("create_subnet.tasks", &c.tasks)?;
            }
            Some(Kind::DeclareFinalizer(d)) => {
                key("declare_finalizer.hotkey", &d.hotkey)?;
                fixed_len(
                    "declare_finalizer.hotkey_signature",
                    &d.hotkey_signature,
                    SIGNATURE_LEN,
                )?;
            }
            Some(Kind::UndeclareFinalizer(u)) => {
                key("undeclare_finalizer.hotkey", &u.hotkey)?;
            }
            Some(Kind::SetSubnetParams(p)) => {
                non_empty("set_subnet_params.values", p.values.is_empty())?;
                max_count("set_subnet_params.values", p.values.len(), MAX_PARAM_VALUES)?;
                for (i, v) in p.values.iter().enumerate() {
                    name(&format!("set_subnet_params.values[{i}].name"), &v.name)?;
                }
                unique("set_subnet_params.values", p.values.iter().map(|v| &v.name))?;
            }
            Some(Kind::SetTake(t)) => {
                key("set_take.hotkey", &t.hotkey)?;
            }
            Some(Kind::MoveStake(m)) => {
                key("move_stake.from_hotkey", &m.from_hotkey)?;
                key("move_stake.to_hotkey", &m.to_hotkey)?;
                positive("move_stake.amount", m.amount)?;
            }
            Some(Kind::SwapHotkey(s)) => {
                key("swap_hotkey.old_hotkey", &s.old_hotkey)?;
                key("swap_hotkey.hotkey", &s.hotkey)?;
                fixed_len(
                    "swap_hotkey.hotkey_signature",
                    &s.hotkey_signature,
                    SIGNATURE_LEN,
                )?;
            }
        }
        signature(&self.signature)
    }
}

impl Validate for v1::ValidatorEntry {
    fn validate(&self) -> Result {
        key("hotkey", &self.hotkey)?;
        key("coldkey", &self.coldkey)?;
        positive("stake", self.stake)
    }
}

impl Validate for v1::ValidatorSet {
    fn validate(&self) -> Result {
        non_empty("validators", self.validators.is_empty())?;
        each("validators", &self.validators, MAX_VALIDATORS)?;
        strictly_increasing("validators", self.validators.iter().map(|v| &v.hotkey))?;
        let total: u128 = self.validators.iter().map(|v| u128::from(v.stake)).sum();
        if total > u128::from(u64::MAX) {
            return Err(ValidationError::new(
                "validators",
                Reason::OutOfRange("total stake overflows u64".into()),
            ));
        }
        Ok(())
    }
}

impl Validate for v1::SubnetResult {
    fn validate(&self) -> Result {
        max_count("uids", self.uids.len(), MAX_UIDS)?;
        strictly_increasing("uids", self.uids.iter())?;
        let n = self.uids.len();
        for (field, values) in [
            ("consensus", &self.consensus),
            ("incentive", &self.incentive),
            ("dividends", &self.dividends),
            ("validator_trust", &self.validator_trust),
        ] {
            if values.len() != n {
                return Err(inconsistent(field, "must have one entry per uid"));
            }
            u16_values(field, values)?;
        }
        if self.emission.len() != n {
            return Err(inconsistent("emission", "must have one entry per uid"));
        }
        Ok(())
    }
}

impl Validate for v1::SnapshotHeader {
    fn validate(&self) -> Result {
        network(&self.network_id)?;
        hash_field("parent_hash", &self.parent_hash)?;
        hash_field("valset_hash", &self.valset_hash)?;
        hash_field("next_valset_hash", &self.next_valset_hash)?;
        hash_field("weights_root", &self.weights_root)?;
        hash_field("txs_root", &self.txs_root)?;
        hash_field("results_root", &self.results_root)?;
        hash_field("evidence_root", &self.evidence_root)?;
        hash_field("state_root", &self.state_root)?;
        key("proposer", &self.proposer)
    }
}

impl Validate for v1::Snapshot {
    fn validate(&self) -> Result {
        required("header", self.header.as_ref())?;
        each("weights", &self.weights, MAX_SUBNETS * MAX_VALIDATORS)?;
        each("transactions", &self.transactions, MAX_TXS)?;
        each("results", &self.results, MAX_SUBNETS)?;
        each("evidence", &self.evidence, MAX_EVIDENCE)?;
        required("next_validators", self.next_validators.as_ref())
    }
}

impl Validate for v1::FinalizedSnapshot {
    fn validate(&self) -> Result {
        required("snapshot", self.snapshot.as_ref())?;
        required("certificate", self.certificate.as_ref())
    }
}

impl Validate for v1::ProposedValue {
    fn validate(&self) -> Result {
        required("proposal", self.proposal.as_ref())?;
        required("snapshot", self.snapshot.as_ref())
    }
}

impl Validate for v1::ConsensusMessage {
    fn validate(&self) -> Result {
        use v1::consensus_message::Body;
        match &self.body {
            None => Err(ValidationError::new("body", Reason::Missing)),
            Some(Body::Proposal(m)) => m.validate().map_err(|e| e.within("proposal")),
            Some(Body::Vote(m)) => m.validate().map_err(|e| e.within("vote")),
            Some(Body::Certificate(m)) => m.validate().map_err(|e| e.within("certificate")),
            Some(Body::Evidence(m)) => m.validate().map_err(|e| e.within("evidence")),
        }
    }
}

/// Most capability ads one miner hands out in one reply.
pub const MAX_ADS_PER_REPLY: usize = 64;

impl Validate for v1::SyncRequest {
    fn validate(&self) -> Result {
        use v1::sync_request::Body;
        match &self.body {
            None => Err(ValidationError::new("body", Reason::Missing)),
            Some(Body::Range(range)) => {
                if range.count == 0 || range.count > MAX_SYNC_BATCH {
                    return Err(ValidationError::new(
                        "range.count",
                        Reason::OutOfRange(format!("must be 1..={MAX_SYNC_BATCH}")),
                    ));
                }
                if range
                    .from_epoch
                    .checked_add(u64::from(range.count))
                    .is_none()
                {
                    return Err(ValidationError::new(
                        "range.from_epoch",
                        Reason::OutOfRange("range overflows u64".into()),
                    ));
                }
                Ok(())
            }
            Some(Body::Status(_)) => Ok(()),
            Some(Body::Consensus(batch)) => each("consensus.messages", &batch.messages, 1024),
            Some(Body::Caps(_)) => Ok(()),
        }
    }
}

impl Validate for v1::LedgerStatus {
    fn validate(&self) -> Result {
        network(&self.network_id)?;
        if self.has_head {
            hash_field("head_hash", &self.head_hash)
        } else if self.head_epoch != 0 || !self.head_hash.is_empty() {
            Err(inconsistent("has_head", "head fields set without a head"))
        } else {
            Ok(())
        }
    }
}

impl Validate for v1::SyncResponse {
    fn validate(&self) -> Result {
        use v1::sync_response::Body;
        match &self.body {
            None => Err(ValidationError::new("body", Reason::Missing)),
            Some(Body::Snapshots(s)) => each("snapshots.items", &s.items, MAX_SYNC_BATCH as usize),
            Some(Body::Status(s)) => s.validate().map_err(|e| e.within("status")),
            Some(Body::Error(e)) => e.validate().map_err(|err| err.within("error")),
            Some(Body::Ads(ads)) => each("ads.ads", &ads.ads, MAX_ADS_PER_REPLY),
        }
    }
}

impl Validate for v1::Genesis {
    fn validate(&self) -> Result {
        name("network_name", &self.network_name)?;
        if self.epoch_ms < 100 {
            return Err(ValidationError::new(
                "epoch_ms",
                Reason::OutOfRange("must be at least 100".into()),
            ));
        }
        max_count("subnets", self.subnets.len(), MAX_SUBNETS)?;
        strictly_increasing("subnets", self.subnets.iter().map(|s| s.id))?;
        for (i, subnet) in self.subnets.iter().enumerate() {
            let at = format!("subnets[{i}]");
            name(&format!("{at}.name"), &subnet.name)?;
            non_empty(&format!("{at}.tasks"), subnet.tasks.is_empty())?;
            max_count(&format!("{at}.tasks"), subnet.tasks.len(), MAX_TASKS)?;
            for (j, task) in subnet.tasks.iter().enumerate() {
                name(&format!("{at}.tasks[{j}]"), task)?;
            }
            unique(&format!("{at}.tasks"), &subnet.tasks)?;
            if !subnet.owner.is_empty() {
                key(&format!("{at}.owner"), &subnet.owner)?;
            }
        }
        non_empty("validators", self.validators.is_empty())?;
        max_count("validators", self.validators.len(), MAX_VALIDATORS)?;
        for (i, v) in self.validators.iter().enumerate() {
            let at = format!("validators[{i}]");
            key(&format!("{at}.hotkey"), &v.hotkey)?;
            key(&format!("{at}.coldkey"), &v.coldkey)?;
            positive(&format!("{at}.stake"), v.stake)?;
        }
        unique("validators", self.validators.iter().map(|v| &v.hotkey))?;
        if let Some(economy) = &self.economy {
            max_count(
                "economy.subnet_defaults",
                economy.subnet_defaults.len(),
                MAX_PARAM_VALUES,
            )?;
            unique(
                "economy.subnet_defaults",
                economy.subnet_defaults.iter().map(|v| &v.name),
            )?;
            max_count("economy.bounds", economy.bounds.len(), MAX_PARAM_VALUES)?;
            unique("economy.bounds", economy.bounds.iter().map(|b| &b.name))?;
            if economy.max_uids as usize > MAX_UIDS {
                return Err(ValidationError::new(
                    "economy.max_uids",
                    Reason::OutOfRange(format!("at most {MAX_UIDS}")),
                ));
            }
            if economy.max_burn != 0 && economy.min_burn > economy.max_burn {
                return Err(inconsistent("economy.min_burn", "must not exceed max_burn"));
            }
            if economy.liquid_alpha && !economy.yuma3 {
                return Err(inconsistent("economy.liquid_alpha", "needs yuma3"));
            }
            if economy.validator_take_per_mille > 1000 {
                return Err(ValidationError::new(
                    "economy.validator_take_per_mille",
                    Reason::OutOfRange("at most 1000".into()),
                ));
            }
        }
        max_count("neurons", self.neurons.len(), MAX_UIDS)?;
        for (i, n) in self.neurons.iter().enumerate() {
            let at = format!("neurons[{i}]");
            if !self.subnets.iter().any(|s| s.id == n.subnet) {
                return Err(ValidationError::new(
                    format!("{at}.subnet"),
                    Reason::OutOfRange(format!("no subnet {}", n.subnet)),
                ));
            }
            key(&format!("{at}.hotkey"), &n.hotkey)?;
            key(&format!("{at}.coldkey"), &n.coldkey)?;
        }
        unique(
            "neurons",
            self.neurons.iter().map(|n| (n.subnet, n.hotkey.as_slice())),
        )?;
        unique("balances", self.balances.iter().map(|b| &b.coldkey))?;
        for (i, b) in self.balances.iter().enumerate() {
            key(&format!("balances[{i}].coldkey"), &b.coldkey)?;
        }
        let supply: u128 = self
            .validators
            .iter()
            .map(|v| u128::from(v.stake))
            .chain(self.balances.iter().map(|b| u128::from(b.amount)))
            .sum();
        if supply > u128::from(u64::MAX) {
            return Err(ValidationError::new(
                "balances",
                Reason::OutOfRange("total supply overflows u64".into()),
            ));
        }
        Ok(())
    }
}

impl Scoped for v1::SignedEnvelope {
    fn network_id(&self) -> &[u8] {
        &self.network_id
    }
}

impl Scoped for v1::CapabilityAd {
    fn network_id(&self) -> &[u8] {
        &self.network_id
    }
    fn validity_window(&self) -> Option<(u64, u64)> {
        Some((self.issued_at_ms, self.expires_at_ms))
    }
}

macro_rules! scoped {
    ($($ty:ty),+) => {
        $(impl Scoped for $ty {
            fn network_id(&self) -> &[u8] {
                &self.network_id
            }
        })+
    };
}

scoped!(
    v1::WeightCommit,
    v1::WeightReveal,
    v1::Proposal,
    v1::Vote,
    v1::Transaction
);
