//! A running node: the network, its role's services and loops, and the HTTP API, until shutdown.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use meshmind_p2p::{Network, NetworkEvent, NetworkHandle};
use meshmind_protocols::{KeyFile, KeyKind, Keypair, v1};
use prometheus_client::registry::Registry;
use prost::Message;

use crate::config::{NodeConfig, Role};
use crate::consensus::driver::ChainStatus;
use crate::consensus::service::ConsensusService;
use crate::genesis::Genesis;
use crate::ledger::Ledger;
use crate::role::miner::{Delayed, Echo, Exec, Http, Miner, MinerBackend, MinerConfig, Reference};
use crate::role::validator::gossip::{
    WeightBoard, WeightsEvent, caps_key, caps_topic, commit_topic, reveal_topic,
};
use crate::role::validator::weights::commit;
use crate::role::validator::{Validator, ValidatorConfig};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What the HTTP API reads.
pub struct NodeState {
    /// The role.
    pub role: Role,
    /// The genesis.
    pub genesis: Genesis,
    /// The network.
    pub network: NetworkHandle,
    /// The validator service, on validators.
    pub validator: Option<Arc<Validator>>,
    /// Weight vectors seen on gossip.
    pub board: Arc<Mutex<WeightBoard>>,
    /// Metrics.
    pub registry: Registry,
    /// The subnet this node follows.
    pub subnet: u32,
    /// The ledger, on validators and observers.
    pub ledger: Option<Arc<Ledger>>,
    /// Consensus progress.
    pub chain: Arc<Mutex<ChainStatus>>,
    /// Whether the test-only admin routes are served.
    pub admin: bool,
    /// Consensus (and the economy), on validators and observers.
    pub consensus: Option<Arc<ConsensusService>>,
}

fn backend(config: &NodeConfig) -> anyhow::Result<Arc<dyn MinerBackend>> {
    let inner = base_backend(config)?;
    Ok(match config.miner.delay_ms {
        0 => inner,
        ms => Arc::new(Delayed::new(inner, Duration::from_millis(ms))),
    })
}

fn base_backend(config: &NodeConfig) -> anyhow::Result<Arc<dyn MinerBackend>> {
    Ok(match config.miner.backend.as_str() {
        "reference" => Arc::new(Reference),
        "echo" => Arc::new(Echo),
        "exec" => {
            let (program, args) = config
                .miner
                .exec
                .split_first()
                .context("miner.exec: the exec backend needs a program")?;
            Arc::new(Exec::new(program.clone(), args.to_vec()))
        }
        "http" => Arc::new(Http::new(&config.miner.url).context("miner.url")?),
        other => {
            anyhow::bail!("miner.backend: unknown backend {other:?} (reference, echo, exec, http)")
        }
    })
}

/// Runs the node in `data_dir` until `shutdown` completes; then stops accepting, finishes, and returns.
pub async fn run(
    data_dir: &Path,
    config: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let hotkey = KeyFile::read_kind(&data_dir.join(&config.hotkey), KeyKind::Hotkey)?;
    let genesis = Genesis::read(&data_dir.join(&config.genesis))?;
    let network_id = *genesis.network_id.as_bytes();
    let mut network_config = config.network.clone();
    network_config.network = genesis.network_tag();
    let mut registry = Registry::default();
    let (network, mut events) = Network::builder(network_config, &hotkey)
        .registry(&mut registry)
        .spawn()?;
    let subnet = match config.role {
        Role::Miner => config.miner.subnet,
        _ => config.validator.subnet,
    };
    for topic in [
        caps_topic(subnet),
        commit_topic(subnet),
        reveal_topic(subnet),
    ] {
        network.subscribe(&topic).await?;
    }
    tracing::info!(peer = %network.local_peer_id(), role = %config.role, network = %genesis.network_tag(), "node started");

    let miner = match config.role {
        Role::Miner => {
            let mut miner_config = MinerConfig::new(network_id, subnet, config.miner.tasks.clone());
            miner_config.max_concurrency = config.miner.max_concurrency;
            miner_config.rate_per_peer = config.miner.rate_per_peer;
            miner_config.burst_per_peer = config.miner.rate_per_peer.saturating_mul(2);
            Some(Arc::new(Miner::new(
                miner_config,
                hotkey.clone(),
                backend(&config)?,
            )))
        }
        _ => None,
    };
    let validator = match config.role {
        Role::Validator => {
            let mut validator_config = ValidatorConfig::new(network_id, subnet);
            validator_config.top_k = config.validator.top_k;
            validator_config.hedge_after = Duration::from_millis(config.validator.hedge_after_ms);
            validator_config.challenge_deadline =
                Duration::from_millis(config.validator.challenge_deadline_ms);
            Some(Arc::new(Validator::new(
                validator_config,
                &hotkey,
                network.clone(),
            )))
        }
        _ => None,
    };
    let board = Arc::new(Mutex::new(WeightBoard::default()));
    let mut tasks = Vec::new();
    let consensus = match config.role {
        Role::Miner => None,
        _ => {
            let signer = (config.role == Role::Validator).then(|| hotkey.clone());
            let service = ConsensusService::start(
                &data_dir.join(&config.consensus.ledger),
                signer,
                &genesis,
                network.clone(),
                board.clone(),
                &config.consensus,
                None,
            )
            .await?;
            Some(Arc::new(service))
        }
    };
    let ledger = consensus.as_ref().map(|c| c.ledger.clone());
    let chain = consensus
        .as_ref()
        .map(|c| c.chain.clone())
        .unwrap_or_default();

    if let Some(miner) = &miner {
        tasks.push(tokio::spawn(advertise(
            miner.clone(),
            network.clone(),
            subnet,
            config.miner.ad_ttl_ms,
            config.miner.gossip_ads,
        )));
    }
    if let Some(validator) = &validator
        && config.validator.discovery_interval_ms > 0
    {
        let tasks_served = genesis
            .message
            .subnets
            .iter()
            .find(|s| s.id == subnet)
            .map(|s| s.tasks.clone())
            .unwrap_or_default();
        tasks.push(tokio::spawn(discover(
            validator.clone(),
            tasks_served,
            Duration::from_millis(config.validator.discovery_interval_ms),
        )));
    }
    if let Some(validator) = &validator {
        tasks.push(tokio::spawn(validate(
            validator.clone(),
            network.clone(),
            hotkey.clone(),
            genesis.clone(),
            subnet,
            Duration::from_millis(config.validator.challenge_interval_ms),
            consensus.as_ref().map(|c| c.economy.clone()),
            board.clone(),
        )));
    }

    let dispatch_miner = miner.clone();
    let dispatch_validator = validator.clone();
    let dispatch_board = board.clone();
    let dispatch_consensus = consensus.clone();
    tasks.push(tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let event = match &dispatch_consensus {
                Some(consensus) => match consensus.handle_event(event) {
                    Some(event) => event,
                    None => continue,
                },
                None => event,
            };
            match event {
                NetworkEvent::InboundRequest(request) => {
                    let answer = match &dispatch_miner {
                        Some(m) => m.answer_control(&request.data, now_ms()),
                        None => v1::SyncResponse {
                            body: Some(v1::sync_response::Body::Error(v1::Error {
                                code: v1::ErrorCode::Unavailable as i32,
                                message: "this node keeps no ledger".into(),
                            })),
                        }
                        .encode_to_vec(),
                    };
                    request.responder.respond(answer);
                }
                NetworkEvent::Gossip(message) if message.topic == caps_topic(subnet) => {
                    match &dispatch_validator {
                        Some(v) => {
                            v.handle_ad_gossip(message, now_ms());
                        }
                        None => message.validation.accept(),
                    }
                }
                NetworkEvent::Gossip(message) => {
                    let event = dispatch_board
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .handle_gossip(subnet, message);
                    if let (Some(WeightsEvent::Equivocated(evidence)), Some(consensus)) =
                        (event, &dispatch_consensus)
                    {
                        consensus.submit_evidence(*evidence);
                    }
                }
                NetworkEvent::InboundQuery(query) => {
                    if let Some(m) = &dispatch_miner {
                        let m = m.clone();
                        tokio::spawn(async move { m.serve(query).await });
                    } else if let Some(v) = &dispatch_validator {
                        let v = v.clone();
                        tokio::spawn(async move { v.serve(query, now_ms()).await });
                    } else {
                        let frame = crate::role::error_frame(
                            meshmind_protocols::v1::ErrorCode::Unavailable,
                            "an observer answers no queries",
                        );
                        let _ = query.responder.respond(frame.encode_to_vec()).await;
                    }
                }
                _ => {}
            }
        }
    }));

    let state = Arc::new(NodeState {
        role: config.role,
        genesis,
        network: network.clone(),
        validator,
        board,
        registry,
        subnet,
        ledger,
        chain,
        admin: config.api_admin,
        consensus: consensus.clone(),
    });
    let listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("api_listen {}", config.api_listen))?;
    tracing::info!(addr = %listener.local_addr()?, "api listening");
    axum::serve(listener, crate::api::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("http api")?;

    tracing::info!("shutting down");
    for task in &tasks {
        task.abort();
    }
    if let Some(consensus) = &consensus {
        consensus.task.abort();
    }
    network.shutdown().await;
    Ok(())
}

/// Provides the miner's capability ads in the DHT (and publishes them on gossip, if `gossip`) every
/// third of their lifetime.
async fn advertise(
    miner: Arc<Miner>,
    network: NetworkHandle,
    subnet: u32,
    ttl_ms: u64,
    gossip: bool,
) {
    let every = Duration::from_millis((ttl_ms / 3).max(500));
    loop {
        let addrs: Vec<String> = network
            .listen_addrs()
            .await
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        let query_addr = network
            .query_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        for ad in miner.capability_ads(now_ms(), ttl_ms, &addrs, &query_addr) {
            let key = caps_key(network.network(), subnet, &ad.task);
            if let Err(e) = network.provide(&key).await {
                tracing::debug!(error = %e, "ad not provided in the DHT yet");
            }
            if !gossip {
                continue;
            }
            if let Err(e) = network
                .publish(&caps_topic(subnet), ad.encode_to_vec())
                .await
            {
                tracing::debug!(error = %e, "ad not published yet");
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Looks the subnet's miners up in the DHT on a schedule.
async fn discover(validator: Arc<Validator>, tasks: Vec<String>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let found = validator.discover(&tasks, now_ms()).await;
        if found > 0 {
            tracing::info!(ads = found, "miners found through the DHT");
        }
    }
}

/// Challenges miners on a schedule and publishes weights once per epoch (commit, then reveal),
/// over the UIDs the finalized economy registered the miners at. Each epoch's commitment is made
/// once and also recorded on `board` (gossip does not deliver a node's own messages back), so this
/// node's snapshots carry its own vector too.
#[allow(clippy::too_many_arguments)]
async fn validate(
    validator: Arc<Validator>,
    network: NetworkHandle,
    hotkey: Keypair,
    genesis: Genesis,
    subnet: u32,
    interval: Duration,
    economy: Option<Arc<Mutex<crate::state::State>>>,
    board: Arc<Mutex<WeightBoard>>,
) {
    let network_id = *genesis.network_id.as_bytes();
    let mut own = WeightBoard::default();
    let mut last_epoch = None;
    let mut current: Option<(u64, v1::WeightCommit, v1::WeightReveal)> = None;
    loop {
        validator.challenge_all(now_ms()).await;
        let epoch = genesis.epoch_at(now_ms());
        if last_epoch != Some(epoch) && current.as_ref().map(|c| c.0) != Some(epoch) {
            let weights = match &economy {
                Some(economy) => {
                    let state = economy.lock().unwrap_or_else(|p| p.into_inner());
                    state
                        .subnets
                        .get(&subnet)
                        .map(|chain| validator.chain_weights(chain))
                        .unwrap_or_default()
                }
                None => validator.weights(),
            };
            let mut salt_input = hotkey.secret_bytes().to_vec();
            salt_input.extend_from_slice(&epoch.to_be_bytes());
            let salt = *blake3::hash(&salt_input).as_bytes();
            let (commitment, reveal) = commit(&hotkey, network_id, subnet, epoch, &weights, salt);
            let previous = current.take().map(|(_, _, reveal)| reveal);
            let mut shared = board.lock().unwrap_or_else(|p| p.into_inner());
            for (is_commit, bytes) in std::iter::once((true, commitment.encode_to_vec()))
                .chain(previous.map(|r| (false, r.encode_to_vec())))
            {
                if let Err(e) = shared.on_message(is_commit, &bytes) {
                    tracing::warn!(error = %e, epoch, "own weights not recorded");
                }
            }
            drop(shared);
            current = Some((epoch, commitment, reveal));
        }
        if last_epoch != Some(epoch)
            && let Some((_, commitment, reveal)) = current.clone()
        {
            match own
                .publish_epoch(&network, subnet, commitment, reveal)
                .await
            {
                Ok(()) => last_epoch = Some(epoch),
                Err(e) => tracing::debug!(error = %e, epoch, "weights not published yet"),
            }
        }
        tokio::time::sleep(interval).await;
    }
}
