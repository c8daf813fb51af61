//! Consensus as one service a node (or a test, or a benchmark) starts beside its network: the
//! ledger, the engine replayed from it, and the driver task; it takes the network events that
//! belong to consensus.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshmind_p2p::{GossipMessage, NetworkHandle, PeerId, RequestResponder};
use meshmind_protocols::{Keypair, v1};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::app::{Chain, restore};
use super::driver::{ChainStatus, Commit, Driver, DriverConfig, DriverInput};
use super::sync::SyncServer;
use crate::config::ConsensusSection;
use crate::consensus::core::TimeoutConfig;
use crate::consensus::engine::{Engine, EngineConfig, EngineError};
use crate::consensus::members::{Members, MembersError};
use crate::genesis::Genesis;
use crate::ledger::{Ledger, LedgerError};
use crate::role::validator::gossip::WeightBoard;
use crate::service::{RequestKind, Service, ServiceFuture};
use crate::state::{PoolError, State, StateError};
use crate::topics::Topic;

/// Messages waiting for the driver, on each of its two queues (consensus gossip; the rest).
const INBOX: usize = 1024;

/// Why consensus could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The ledger could not be opened.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The WAL could not be replayed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The genesis validator set is unusable.
    #[error("genesis validators: {0}")]
    Members(#[from] MembersError),
    /// The genesis economy is unusable.
    #[error(transparent)]
    Economy(#[from] StateError),
}

/// Why a submitted transaction was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The pool refused it.
    #[error(transparent)]
    Refused(#[from] PoolError),
    /// Consensus is not running.
    #[error("consensus is not running")]
    Stopped,
}

/// A running consensus service.
pub struct ConsensusService {
    /// The ledger.
    pub ledger: Arc<Ledger>,
    /// Progress, for the API.
    pub chain: Arc<Mutex<ChainStatus>>,
    /// The economy after the head.
    pub economy: Arc<Mutex<State>>,
    inbox: mpsc::Sender<DriverInput>,
    votes: mpsc::Sender<DriverInput>,
    sync: SyncServer,
    stop: CancellationToken,
    driver: Mutex<Option<JoinHandle<()>>>,
}

impl ConsensusService {
    /// Opens the ledger at `path`, replays its WAL and starts the driver; `signer` votes if it is
    /// in the validator set. `commits` hears of every commit. Its gossip and requests reach it
    /// through a [`crate::node::Node`] it is registered with.
    pub async fn start(
        path: &Path,
        signer: Option<Keypair>,
        genesis: &Genesis,
        network: NetworkHandle,
        board: Arc<Mutex<WeightBoard>>,
        section: &ConsensusSection,
        commits: Option<mpsc::UnboundedSender<Commit>>,
    ) -> Result<Self, ServiceError> {
        let network_id = genesis.network_id;
        let ledger = Arc::new(Ledger::open(path)?);
        let config = EngineConfig {
            network_id,
            genesis: Members::from_genesis(genesis)?,
            timeouts: TimeoutConfig {
                propose_ms: section.propose_ms,
                prevote_ms: section.prevote_ms,
                precommit_ms: section.precommit_ms,
                delta_ms: section.delta_ms,
            },
            equivocate: section.test_equivocate,
        };
        if section.test_equivocate {
            tracing::warn!("consensus.test_equivocate is on: this node will equivocate on purpose");
        }
        let app = Chain::load(
            ledger.as_ref(),
            State::from_genesis(&genesis.message, network_id)?,
            genesis.message.emission_per_epoch,
        )?;
        let (engine, initial) = Engine::open(app, signer, config, restore(ledger.as_ref())?)?;
        // Weights are taken from the permit holders of the state at the head.
        board
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .follow(engine.app().state());
        tracing::info!(head = ?engine.head().map(|h| h.epoch), voting = engine.is_validator(), "ledger opened");
        let chain = Arc::new(Mutex::new(ChainStatus::default()));
        let mut driver = Driver::new(
            engine,
            ledger.clone(),
            network,
            board,
            genesis.clone(),
            DriverConfig {
                rebroadcast: Duration::from_millis(section.rebroadcast_ms.max(50)),
                start_delay_ms: section.start_delay_ms,
            },
            chain.clone(),
        );
        if let Some(commits) = commits {
            driver = driver.with_commit_listener(commits);
        }
        let economy = driver.economy();
        let (inbox, inbox_rx) = mpsc::channel(INBOX);
        let (votes, votes_rx) = mpsc::channel(INBOX);
        let stop = CancellationToken::new();
        let driver_stop = stop.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = driver.run(initial, votes_rx, inbox_rx, driver_stop).await {
                tracing::error!(error = %e, "consensus stopped: the ledger failed");
            }
        });
        // Votes resent straight to this node travel with the gossiped ones.
        let sync = SyncServer::new(ledger.clone(), network_id, votes.clone());
        Ok(Self {
            ledger,
            chain,
            economy,
            inbox,
            votes,
            sync,
            stop,
            driver: Mutex::new(Some(task)),
        })
    }

    /// Hands evidence this node found (outside consensus messages) to the engine, which stores,
    /// gossips and later includes it.
    pub fn submit_evidence(&self, evidence: meshmind_protocols::v1::Evidence) {
        let msg = meshmind_protocols::v1::ConsensusMessage {
            body: Some(meshmind_protocols::v1::consensus_message::Body::Evidence(
                evidence,
            )),
        };
        if self.inbox.try_send(DriverInput::Local(msg)).is_err() {
            tracing::warn!("consensus inbox full; evidence dropped");
        }
    }

    /// Takes a transaction for a later snapshot and gossips it; `Ok(false)` if it was already
    /// waiting.
    pub async fn submit_transaction(
        &self,
        tx: meshmind_protocols::v1::Transaction,
    ) -> Result<bool, SubmitError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.inbox
            .send(DriverInput::Submit(tx, reply))
            .await
            .map_err(|_| SubmitError::Stopped)?;
        Ok(answer.await.map_err(|_| SubmitError::Stopped)??)
    }

    /// Stops the driver and waits for it to return (a no-op once stopped).
    pub async fn stop(&self) {
        self.stop.cancel();
        let task = self.driver.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "consensus driver failed");
        }
    }

    /// Hands a gossip message to the driver (proposals and votes on their own queue), or ignores it
    /// if the driver is busy.
    fn forward(&self, input: DriverInput) {
        let queue = match &input {
            DriverInput::Gossip(Topic::Consensus, _) => &self.votes,
            _ => &self.inbox,
        };
        if let Err(
            mpsc::error::TrySendError::Full(input) | mpsc::error::TrySendError::Closed(input),
        ) = queue.try_send(input)
            && let DriverInput::Gossip(_, message) | DriverInput::Transaction(message) = input
        {
            message.validation.ignore();
        }
    }
}

impl Service for ConsensusService {
    fn name(&self) -> &'static str {
        "consensus"
    }

    fn topics(&self) -> Vec<Topic> {
        Topic::LEDGER.to_vec()
    }

    fn requests(&self) -> Vec<RequestKind> {
        vec![
            RequestKind::Range,
            RequestKind::Status,
            RequestKind::Consensus,
        ]
    }

    fn on_gossip(&self, topic: Topic, message: GossipMessage) {
        match topic {
            Topic::Consensus | Topic::Evidence => self.forward(DriverInput::Gossip(topic, message)),
            Topic::Tx => self.forward(DriverInput::Transaction(message)),
            _ => message.validation.ignore(),
        }
    }

    fn on_request(
        &self,
        peer: PeerId,
        request: v1::sync_request::Body,
        responder: RequestResponder,
    ) {
        self.sync.serve(peer, request, responder);
    }

    fn run(self: Arc<Self>, cancel: CancellationToken) -> ServiceFuture {
        Box::pin(async move {
            cancel.cancelled().await;
            self.stop().await;
        })
    }
}
