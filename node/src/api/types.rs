//! The HTTP API's request and response bodies: what the server writes and every client (the CLI,
//! the wallet, the testnet, the tests) reads, one type per body.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::chain::driver::ChainStatus;
pub use crate::state::Params;

pub use crate::http::{ApiError, ErrorBody};

/// `GET /status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// This node's peer id.
    pub peer_id: String,
    /// Its role (`miner`, `validator`, `observer`).
    pub role: String,
    /// The network tag (first 16 hex digits of the network id).
    pub network: String,
    /// The network id (hex).
    pub network_id: String,
    /// The current epoch by the clock.
    pub epoch: u64,
    /// The first subnet this node serves or validates.
    pub subnet: u32,
    /// Every subnet this node serves or validates.
    #[serde(default)]
    pub subnets: Vec<u32>,
    /// Connected peers.
    pub peers: usize,
    /// Listen addresses with this node's `/p2p/` suffix.
    pub listen: Vec<String>,
    /// The query plane's socket address.
    pub query_addr: Option<String>,
    /// The query plane as a multiaddr.
    pub query_multiaddr: Option<String>,
    /// Miners in this validator's metagraph.
    pub miners_seen: usize,
    /// Consensus progress.
    pub consensus: ChainStatus,
    /// On a miner: each caller's quota and its use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<crate::role::quota::QuotasView>,
    /// Where this node's hotkey stands in the finalized economy (on nodes that keep a ledger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standing: Option<Standing>,
}

/// Where a hotkey stands in the finalized economy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Standing {
    /// The hotkey (hex).
    pub hotkey: String,
    /// The finalized epoch it is read at (the next to apply).
    pub epoch: u64,
    /// The subnets it is registered on.
    pub subnets: Vec<SubnetStanding>,
    /// Its finalizer record, if it declared (or lately did, or is jailed).
    pub finalizer: Option<FinalizerView>,
    /// Stake unbonding from it.
    pub unbonding: u64,
    /// All of it in a sentence.
    pub summary: String,
}

/// A hotkey's registration on one subnet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubnetStanding {
    /// Subnet.
    pub subnet: u32,
    /// Its UID there.
    pub uid: u32,
    /// Stake behind it there.
    pub stake: u64,
    /// Whether it holds a validator permit there.
    pub validator_permit: bool,
    /// The first epoch of its current run holding the permit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit_since: Option<u64>,
}

/// Peers named in an admin request (`POST /admin/block`, `/admin/unblock`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerList {
    /// Peer ids.
    pub peers: Vec<String>,
}

/// `GET /subnets/<id>` (and each entry of `GET /subnets`): a subnet in the finalized economy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubnetView {
    /// Its id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// The tasks served on it.
    pub tasks: Vec<String>,
    /// The owner coldkey (hex), if it has one.
    pub owner: Option<String>,
    /// What its creation locked.
    pub locked: u64,
    /// The registration burn now.
    pub burn: u64,
    /// Registered neurons (UIDs in use).
    pub neurons: usize,
    /// Neurons holding a validator permit.
    pub permits: usize,
    /// Stake on it, in all.
    pub stake: u64,
    /// What its neurons received in the last epoch, in all.
    pub last_emission: u64,
    /// Its rules: every parameter with its value, bounds and last change.
    pub params: Vec<ParamView>,
    /// The epoch of the owner's last change, if any.
    pub params_changed_at: Option<u64>,
    /// The first epoch the owner may change parameters again.
    pub params_open_from: u64,
    /// The epoch it was created.
    pub created_at: u64,
    /// The first epoch it may be deregistered.
    pub immune_until: u64,
    /// Moving average of the stake on it (what emission follows by default).
    pub stake_ema: u64,
    /// Moving average of its net stake inflow per epoch.
    pub flow_ema: i64,
    /// Emission earned since Yuma last ran on it, paid at the next run.
    pub pending_emission: u64,
    /// Its share of each epoch's emission by the market as it stands, in millionths.
    pub emission_share_ppm: u64,
}

/// One subnet parameter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParamView {
    /// Its name (as `meshmind subnet set` takes it).
    pub name: String,
    /// What it sets.
    pub doc: String,
    /// Its value in force.
    pub value: u64,
    /// The value the owner set for the next epoch, if it differs.
    pub pending: Option<u64>,
    /// Lowest allowed.
    pub min: u64,
    /// Highest allowed.
    pub max: u64,
    /// The epoch the owner last set it, if ever.
    pub changed_at: Option<u64>,
}

/// `GET /metagraph/<subnet>`: this validator's view and the finalized one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metagraph {
    /// The subnet.
    pub subnet: u32,
    /// Miners this validator found, with its scores (empty on other nodes).
    pub miners: Vec<MinerView>,
    /// The finalized registrations with stake and Yuma results, where a ledger is kept.
    pub chain: Option<ChainMetagraph>,
}

/// A miner in a validator's metagraph.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MinerView {
    /// Its UID (the chain's, once registered).
    pub uid: u32,
    /// Its peer id.
    pub peer_id: String,
    /// Its hotkey (hex).
    pub hotkey: String,
    /// Tasks it advertises now.
    pub tasks: Vec<String>,
    /// When its latest ad was seen.
    pub last_seen_ms: u64,
    /// This validator's score of it.
    pub score: f64,
}

/// A subnet's finalized metagraph.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainMetagraph {
    /// Name.
    pub name: String,
    /// Tasks served.
    pub tasks: Vec<String>,
    /// Owner coldkey (hex).
    pub owner: Option<String>,
    /// Current registration burn.
    pub burn: u64,
    /// Amount locked by its creator.
    pub locked: u64,
    /// Neurons by UID.
    pub neurons: Vec<NeuronView>,
}

/// A registered neuron.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NeuronView {
    /// UID.
    pub uid: u32,
    /// Hotkey (hex).
    pub hotkey: String,
    /// Owner coldkey (hex).
    pub owner: String,
    /// Stake behind the hotkey on this subnet.
    pub stake: u64,
    /// Epoch of registration.
    pub registered_at: u64,
    /// Epoch of its latest weights.
    pub last_update: u64,
    /// Whether it holds a validator permit (the top `max_validators` by stake, with stake).
    #[serde(default)]
    pub validator_permit: bool,
    /// The first epoch of its current run holding the permit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit_since: Option<u64>,
    /// Whether it set weights, or registered, within the activity cutoff.
    #[serde(default)]
    pub active: bool,
    /// Last epoch's consensus (u16 fraction).
    pub consensus: u16,
    /// Last epoch's incentive (u16 fraction).
    pub incentive: u16,
    /// Last epoch's dividends (u16 fraction).
    pub dividends: u16,
    /// Last epoch's validator trust (u16 fraction).
    pub validator_trust: u16,
    /// Emission received last epoch.
    pub emission: u64,
    /// Bonds as `(uid, u16)`.
    pub bonds: Vec<(u32, u16)>,
}

/// `GET /weights/<subnet>`: this validator's vector and the revealed ones of recent epochs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Weights {
    /// The subnet.
    pub subnet: u32,
    /// This validator's current vector as `(uid, u16)`.
    pub own: Option<Vec<(u32, u16)>>,
    /// Revealed vectors by epoch (decimal) and validator hotkey (hex).
    pub revealed: BTreeMap<String, BTreeMap<String, Vec<(u32, u16)>>>,
}

/// `GET /accounts/<coldkey>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    /// Coldkey (hex).
    pub coldkey: String,
    /// Free balance.
    pub balance: u64,
    /// The nonce the next transaction must carry.
    pub nonce: u64,
    /// Its stakes.
    pub stakes: Vec<StakeView>,
    /// The epoch the state is at.
    pub epoch: u64,
    /// Its stakes behind hotkeys another coldkey owns, with their takes.
    #[serde(default)]
    pub delegations: Vec<DelegationView>,
    /// Its stake on the way back to its balance.
    #[serde(default)]
    pub unbonding: Vec<UnbondingView>,
}

/// A coldkey's stake behind a hotkey another coldkey owns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DelegationView {
    /// Subnet.
    pub subnet: u32,
    /// Hotkey (hex).
    pub hotkey: String,
    /// The hotkey's owner (hex), if one coldkey owns it.
    pub owner: Option<String>,
    /// Amount.
    pub amount: u64,
    /// Per mille of the hotkey's dividends its owner keeps.
    pub take_per_mille: u64,
}

/// `GET /delegates` (each entry) and `GET /delegates/<hotkey>`: a validator hotkey as nominators
/// see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DelegateView {
    /// The epoch the state is at.
    pub epoch: u64,
    /// Hotkey (hex).
    pub hotkey: String,
    /// Its owner (hex), if one coldkey owns it.
    pub owner: Option<String>,
    /// Per mille of its dividends the owner keeps.
    pub take_per_mille: u64,
    /// Whether the owner set it (otherwise the network's default).
    pub take_set: bool,
    /// The epoch of the last change of the take.
    pub take_changed_at: Option<u64>,
    /// The first epoch the take may rise again.
    pub next_raise_from: u64,
    /// The subnets it holds a validator permit on.
    pub permits: Vec<u32>,
    /// A declared finalizer.
    pub finalizer: bool,
    /// All the stake behind it, on every subnet.
    pub total_stake: u64,
    /// Its owner's stake behind it.
    pub owner_stake: u64,
    /// Other coldkeys with stake behind it.
    pub nominators: usize,
    /// Their stake.
    pub nominator_stake: u64,
    /// Its dividends at the last Yuma run of each subnet, in all.
    pub last_dividends: u64,
    /// What nominators earned per 1,000 staked per epoch lately (after the take).
    pub return_per_1000: f64,
    /// Every stake behind it (in `GET /delegates/<hotkey>` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stakes: Vec<NominationView>,
}

/// One coldkey's stake behind a delegate on a subnet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NominationView {
    /// Coldkey (hex).
    pub coldkey: String,
    /// Subnet.
    pub subnet: u32,
    /// Amount.
    pub amount: u64,
}

/// A stake of a coldkey behind a hotkey.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StakeView {
    /// Subnet.
    pub subnet: u32,
    /// Hotkey (hex).
    pub hotkey: String,
    /// Amount.
    pub amount: u64,
}

/// `GET /economy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Economy {
    /// The epoch the state is at.
    pub epoch: u64,
    /// Supply accounting.
    pub supply: SupplyView,
    /// The rules.
    pub params: Params,
    /// Subnet ids.
    pub subnets: Vec<u32>,
    /// Number of accounts.
    pub accounts: usize,
    /// The state root (hex).
    pub root: String,
    /// Declared finalizers (and lately declared, and jailed ones).
    #[serde(default)]
    pub finalizers: Vec<FinalizerView>,
    /// Stake on its way back to balances.
    #[serde(default)]
    pub unbonding: Vec<UnbondingView>,
}

/// A hotkey declared a finalizer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinalizerView {
    /// Hotkey (hex).
    pub hotkey: String,
    /// The coldkey that declared it (hex).
    pub coldkey: String,
    /// Declared now.
    pub declared: bool,
    /// The epoch it undeclared, if it did.
    pub left_at: Option<u64>,
    /// Out of the set before this epoch, if jailed.
    pub jailed_until: Option<u64>,
    /// The declaring coldkey's stake behind it: its voting power.
    pub own_stake: u64,
    /// In the set that finalizes the next epoch.
    pub in_next_set: bool,
    /// The first epoch of its current run in the finalizing set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_set_since: Option<u64>,
}

/// Stake unbonding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnbondingView {
    /// The epoch it returns to the balance.
    pub release_epoch: u64,
    /// Coldkey (hex).
    pub coldkey: String,
    /// The hotkey it was behind (hex).
    pub hotkey: String,
    /// Amount.
    pub amount: u64,
}

/// Supply accounting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SupplyView {
    /// At genesis.
    pub genesis: u64,
    /// Minted since.
    pub emitted: u64,
    /// Burned since.
    pub burned: u64,
    /// In existence now.
    pub total: u128,
}

/// `POST /tx`: a transaction's protobuf encoding in hex.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitTx {
    /// The encoding, hex.
    pub tx: String,
}

/// `POST /tx` accepted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TxAccepted {
    /// Always true.
    pub accepted: bool,
    /// False if it was already waiting.
    pub new: bool,
    /// Its hash (hex).
    pub hash: String,
}

/// How bytes travel in a JSON body: as text, or base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 text (outputs that are not UTF-8 have bad bytes replaced).
    #[default]
    Text,
    /// Base64 (standard alphabet, padded): any bytes, exactly.
    Base64,
}

/// `POST /query`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// Subnet.
    pub subnet: u32,
    /// Task.
    pub task: String,
    /// Input: text, or base64 under `encoding = "base64"`.
    pub input: String,
    /// How `input` and the answers' `output` are written (default `text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// What the input holds, as a media type (`text/plain`, `application/json`,
    /// `application/x-f32le`); passed to the miner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Budget in milliseconds (default 5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u32>,
    /// Every valid answer of the top miners instead of the first.
    #[serde(default)]
    pub want_all: bool,
    /// Answer as newline-delimited JSON pieces while the miner produces them.
    #[serde(default)]
    pub stream: bool,
}

/// One miner's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The miner's time in microseconds.
    pub elapsed_us: u64,
    /// The answering miner's hotkey (hex).
    pub miner: String,
    /// The output: text (bad UTF-8 replaced), or base64 when the query asked for it.
    pub output: String,
    /// What the output holds, as the miner says (a media type); absent when it does not say.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_type: String,
}

/// `POST /query` answered: one answer, or every answer when `want_all`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QueryAnswer {
    /// The first valid answer.
    One(Answer),
    /// Every valid answer.
    All {
        /// The answers.
        answers: Vec<Answer>,
    },
}

/// One line of a streamed answer (`POST /query` with `stream`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StreamLine {
    /// A piece of the answer.
    Chunk {
        /// The piece (UTF-8, lossy).
        chunk: String,
    },
    /// The miner's signed end.
    Done {
        /// Always true.
        done: bool,
        /// The miner's hotkey (hex).
        miner: String,
        /// The miner's time in microseconds.
        elapsed_us: u64,
        /// The last chunk's sequence number.
        chunks: u32,
    },
    /// The stream failed.
    Error(ApiError),
    /// A whole answer in one line.
    Answer(QueryAnswer),
}

/// `GET /snapshots/<epoch>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotView {
    /// Epoch.
    pub epoch: u64,
    /// Header hash (hex).
    pub hash: String,
    /// Parent header hash (hex).
    pub parent_hash: String,
    /// Hash of the validator set that finalized it (hex).
    pub valset_hash: String,
    /// Hash of the set that finalizes the next epoch (hex).
    pub next_valset_hash: String,
    /// Root of the weights (hex).
    pub weights_root: String,
    /// Root of the evidence (hex).
    pub evidence_root: String,
    /// The economy's state root after it (hex).
    pub state_root: String,
    /// The proposer's hotkey (hex).
    pub proposer: String,
    /// Revealed weight vectors.
    pub weights: Vec<WeightsView>,
    /// Root of the transactions (hex).
    pub txs_root: String,
    /// Root of the results (hex).
    pub results_root: String,
    /// Transactions, in order.
    pub transactions: Vec<TransactionView>,
    /// Yuma results per subnet.
    pub results: Vec<ResultView>,
    /// Evidence included.
    pub evidence: Vec<EvidenceView>,
    /// The next validator set.
    pub next_validators: Vec<ValidatorView>,
}

/// A revealed weight vector in a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WeightsView {
    /// Subnet.
    pub subnet: u32,
    /// Validator hotkey (hex).
    pub validator: String,
    /// UIDs.
    pub uids: Vec<u32>,
    /// Weights (u16), by the UIDs' positions.
    pub weights: Vec<u32>,
}

/// A transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransactionView {
    /// Signer (hex).
    pub coldkey: String,
    /// Nonce.
    pub nonce: u64,
    /// The kind and its fields, as `{"<kind>": {...}}`.
    pub kind: serde_json::Value,
    /// Its hash (hex).
    pub hash: String,
}

/// Yuma's results for one subnet in a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultView {
    /// Subnet.
    pub subnet: u32,
    /// UIDs.
    pub uids: Vec<u32>,
    /// Consensus (u16), by the UIDs' positions.
    pub consensus: Vec<u32>,
    /// Incentive (u16).
    pub incentive: Vec<u32>,
    /// Dividends (u16).
    pub dividends: Vec<u32>,
    /// Validator trust (u16).
    pub validator_trust: Vec<u32>,
    /// Emission.
    pub emission: Vec<u64>,
}

/// A validator and its stake.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidatorView {
    /// Hotkey (hex).
    pub hotkey: String,
    /// Stake.
    pub stake: u64,
}

/// `GET /certificates/<epoch>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateView {
    /// Epoch.
    pub epoch: u64,
    /// Round it was decided in.
    pub round: u32,
    /// The snapshot's header hash (hex).
    pub value_id: String,
    /// The signing set's hash (hex).
    pub valset_hash: String,
    /// Signers' hotkeys (hex).
    pub signers: Vec<String>,
}

/// A piece of evidence (`GET /evidence` lists them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvidenceView {
    /// `duplicate_vote`, `duplicate_proposal`, `duplicate_weight_commit` or `empty`.
    pub kind: String,
    /// The accused hotkey (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator: Option<String>,
    /// Epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Round (votes and proposals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    /// Vote type (votes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vote_type: Option<i32>,
    /// The two values signed (votes and proposals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<[String; 2]>,
    /// Subnet (weight commitments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<u32>,
}
