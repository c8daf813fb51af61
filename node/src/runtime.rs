//! A running node: reads its keys, genesis and config, assembles the services of its role behind
//! the router, serves the HTTP API, and shuts everything down in order.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use meshmind_p2p::Network;
use meshmind_protocols::{KeyFile, KeyKind, PublicKey};
use prometheus_client::registry::Registry;

use crate::api::NodeState;
use crate::chain::service::ConsensusService;
use crate::config::{NodeConfig, Role};
use crate::consensus::members::Members;
use crate::genesis::Genesis;
use crate::node::Node;
use crate::role::miner::{
    AdSchedule, Delayed, EMBED_TASK, Echo, Embed, Exec, Http, Miner, MinerBackend, MinerConfig,
    MinerService, OpenAi, Reference,
};
use crate::role::quota::{Admit, QuotaPolicy};
use crate::role::validator::epoch::EpochLoop;
use crate::role::validator::gossip::{EvidenceSink, WeightBoard, WeightsService};
use crate::role::validator::node::{Follow, SubnetValidator};
use crate::role::validator::scorer::{
    Embedding, Program, Reference as ScoreReference, Scorer, Scorers,
};
use crate::role::validator::{Validator, ValidatorConfig, ValidatorService, Validators};
use crate::topics::Topic;
use meshmind_models::Embedder;

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
        "embed" => {
            let model = Embedder::load(&model_dir(config)).context("miner.backend = \"embed\"")?;
            let queue = config.miner.max_concurrency.saturating_mul(4);
            Arc::new(Embed::start(Arc::new(model), queue, config.miner.noise).context("embed")?)
        }
        "openai" => Arc::new(
            OpenAi::new(
                &config.miner.url,
                &config.miner.model,
                &config.miner.api_key,
            )
            .context("miner.url")?,
        ),
        other => anyhow::bail!(
            "miner.backend: unknown backend {other:?} (reference, echo, embed, exec, http, openai)"
        ),
    })
}

/// Where the embedding model is.
fn model_dir(config: &NodeConfig) -> std::path::PathBuf {
    if config.model_dir.as_os_str().is_empty() {
        meshmind_models::default_dir()
    } else {
        config.model_dir.clone()
    }
}

/// What a validator runs for each subnet it validates, from its config.
struct SubnetBuilder {
    network_id: meshmind_protocols::NetworkId,
    section: crate::config::ValidatorSection,
    scorers: Scorers,
    hotkey: meshmind_protocols::Keypair,
    network: meshmind_p2p::NetworkHandle,
    genesis: Genesis,
    economy: Option<Arc<Mutex<crate::state::State>>>,
    board: Arc<Mutex<WeightBoard>>,
}

impl SubnetValidator for SubnetBuilder {
    fn validator(&self, subnet: u32, tasks: Vec<String>) -> Validator {
        let section = &self.section;
        let mut config = ValidatorConfig::new(self.network_id, subnet);
        config.tasks = tasks;
        config.top_k = section.top_k;
        config.per_client = (
            section.client_rate.max(1),
            section.client_rate.max(1).saturating_mul(2),
        );
        config.routed_per_miner = (
            section.routed_rate_per_miner.max(1),
            section.routed_rate_per_miner.max(1).saturating_mul(2),
        );
        config.hedge_after = Duration::from_millis(section.hedge_after_ms);
        config.challenge_deadline = Duration::from_millis(section.challenge_deadline_ms);
        config.scorers = self.scorers.clone();
        Validator::new(config, &self.hotkey, self.network.clone())
    }

    fn epoch_loop(&self, validator: Arc<Validator>) -> EpochLoop {
        EpochLoop {
            subnet: validator.subnet(),
            validator,
            network: self.network.clone(),
            hotkey: self.hotkey.clone(),
            genesis: self.genesis.clone(),
            interval: Duration::from_millis(self.section.challenge_interval_ms),
            economy: self.economy.clone(),
            board: self.board.clone(),
        }
    }
}

/// The validator's scorer of each task: the defaults, then `[validator.scorers]`.
fn scorers(config: &NodeConfig) -> anyhow::Result<Scorers> {
    let mut scorers = Scorers::reference();
    // Loaded at the first challenge, so validators of other subnets never read the model.
    scorers.set(EMBED_TASK, Arc::new(Embedding::new(model_dir(config))));
    for (task, section) in &config.validator.scorers {
        let at = || format!("[validator.scorers.{task}]");
        let scorer: Arc<dyn Scorer> = match section.kind.as_str() {
            "reference" if crate::role::reference::TASKS.contains(&task.as_str()) => {
                Arc::new(ScoreReference)
            }
            "reference" => anyhow::bail!("{}: {task} is not a reference task", at()),
            "embedding" => Arc::new(Embedding::new(model_dir(config))),
            "exec" => {
                let (program, args) = section
                    .exec
                    .split_first()
                    .with_context(|| format!("{}: the exec scorer needs a program", at()))?;
                Arc::new(Program::new(
                    "exec",
                    Arc::new(Exec::new(program.clone(), args.to_vec())),
                ))
            }
            "http" => Arc::new(Program::new(
                "http",
                Arc::new(Http::new(&section.url).with_context(at)?),
            )),
            other => anyhow::bail!(
                "{}: unknown kind {other:?} (reference, embedding, exec, http)",
                at()
            ),
        };
        scorers.set(task, scorer);
    }
    Ok(scorers)
}

/// Runs the node in `data_dir` until `shutdown` completes; then stops accepting, finishes, and returns.
pub async fn run(
    data_dir: &Path,
    config: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let admin_token = match config.api_admin {
        true if !config.api_listen.ip().is_loopback() => anyhow::bail!(
            "api_admin is for test networks and needs a loopback api_listen, not {}",
            config.api_listen
        ),
        true => Some(admin_token(data_dir)?),
        false => None,
    };
    let hotkey = KeyFile::read_kind(&data_dir.join(&config.hotkey), KeyKind::Hotkey)?;
    let genesis = Genesis::read(&data_dir.join(&config.genesis))?;
    let network_id = genesis.network_id;
    let mut network_config = config.network.clone();
    network_config.network = genesis.network_tag();
    for topic in Topic::PRIORITY.map(|t| t.to_string()) {
        if !network_config.priority_topics.contains(&topic) {
            network_config.priority_topics.push(topic);
        }
    }
    let mut registry = Registry::default();
    let (network, events) = Network::builder(network_config, &hotkey)
        .registry(&mut registry)
        .spawn()?;
    tracing::info!(peer = %network.local_peer_id(), role = %config.role, network = %genesis.network_tag(), "node started");

    // Weights are taken from the genesis validators until the ledger names the permit holders.
    let board = Arc::new(Mutex::new(WeightBoard::new(
        Members::from_genesis(&genesis)?.keys().iter().copied(),
    )));
    // Every role follows the finalized chain (miners for their callers' stake); only
    // validators sign.
    let consensus = {
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
    };
    let mut node = Node::new(network.clone());
    // Registered first, stopped last: the ledger outlives the loops that feed it.
    if let Some(consensus) = &consensus {
        node.add(consensus.clone())?;
    }
    let evidence = consensus
        .clone()
        .map(|c| Box::new(move |evidence| c.submit_evidence(evidence)) as EvidenceSink);
    // Each subnet's tasks, as the finalized economy (else the genesis) names them.
    let mut tasks: BTreeMap<u32, Vec<String>> = genesis
        .message
        .subnets
        .iter()
        .map(|s| (s.id, s.tasks.clone()))
        .collect();
    if let Some(consensus) = &consensus {
        let economy = consensus.economy.lock().unwrap_or_else(|p| p.into_inner());
        tasks.extend(economy.subnets.iter().map(|(&id, s)| (id, s.tasks.clone())));
    }
    let validated = match config.validator.subnets.as_slice() {
        [] => tasks.keys().copied().collect(),
        listed => listed.to_vec(),
    };
    // Miners follow their subnet's weights; nodes that keep the ledger follow every subnet's,
    // so that a proposer's snapshot carries every subnet's reveals.
    let followed: Vec<u32> = match config.role {
        Role::Miner => vec![config.miner.subnet],
        _ => tasks.keys().chain(&validated).copied().collect(),
    };
    let mut weights = WeightsService::new(
        board.clone(),
        followed.iter().copied(),
        genesis.clone(),
        evidence,
    );
    if let (Some(consensus), false) = (&consensus, config.role == Role::Miner) {
        // Subnets created later are followed too.
        weights = weights.following(consensus.economy.clone(), network.clone());
    }
    node.add(Arc::new(weights))?;

    let (mut validator, mut miner) = (None, None);
    match config.role {
        Role::Miner => {
            let mut miner_config =
                MinerConfig::new(network_id, config.miner.subnet, config.miner.tasks.clone());
            miner_config.max_concurrency = config.miner.max_concurrency;
            miner_config.quotas = quota_policy(&config.miner)?;
            let serving = Arc::new(Miner::new(miner_config, hotkey.clone(), backend(&config)?));
            serving.register_metrics(&mut registry);
            let ads = AdSchedule {
                ttl_ms: config.miner.ad_ttl_ms,
                gossip: config.miner.gossip_ads,
            };
            let economy = consensus.as_ref().map(|c| c.economy.clone());
            let service = MinerService::new(serving.clone(), network.clone(), ads, economy);
            node.add(Arc::new(service))?;
            miner = Some(serving);
        }
        Role::Validator => {
            let builder = SubnetBuilder {
                network_id,
                section: config.validator.clone(),
                scorers: scorers(&config)?,
                hotkey: hotkey.clone(),
                network: network.clone(),
                genesis: genesis.clone(),
                economy: consensus.as_ref().map(|c| c.economy.clone()),
                board: board.clone(),
            };
            let validators = Arc::new(Validators::new(validated.iter().map(|&subnet| {
                builder.validator(subnet, tasks.get(&subnet).cloned().unwrap_or_default())
            })));
            let epochs = validators
                .all()
                .into_iter()
                .map(|(_, v)| builder.epoch_loop(v))
                .collect();
            let section = &config.validator;
            let discovery = (section.discovery_interval_ms > 0)
                .then(|| Duration::from_millis(section.discovery_interval_ms));
            // With no subnets listed, a subnet created later is validated too.
            let follow = match (&consensus, section.subnets.is_empty()) {
                (Some(consensus), true) => Some(Follow {
                    economy: consensus.economy.clone(),
                    network: network.clone(),
                    build: Box::new(builder),
                }),
                _ => None,
            };
            tracing::info!(subnets = ?validators.subnets(), following = follow.is_some(), "validating");
            node.add(Arc::new(ValidatorService::new(
                validators.clone(),
                epochs,
                discovery,
                follow,
            )))?;
            validator = Some(validators);
        }
        Role::Observer => {}
    }
    let running = node.start(events).await?;

    let state = Arc::new(NodeState {
        role: config.role,
        hotkey: hotkey.public(),
        genesis,
        network,
        validators: validator,
        miner,
        board,
        registry,
        subnets: match config.role {
            Role::Miner => vec![config.miner.subnet],
            _ => validated,
        },
        ledger: consensus.as_ref().map(|c| c.ledger.clone()),
        chain: consensus
            .as_ref()
            .map(|c| c.chain.clone())
            .unwrap_or_default(),
        admin_token,
        consensus,
    });
    let listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("api_listen {}", config.api_listen))?;
    tracing::info!(addr = %listener.local_addr()?, "api listening");
    axum::serve(
        listener,
        crate::api::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("http api")?;

    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// The miner's admission rules from its config section.
fn quota_policy(section: &crate::config::MinerSection) -> anyhow::Result<QuotaPolicy> {
    let mut overrides = std::collections::BTreeMap::new();
    for (hotkey, &rate) in &section.quotas {
        let key = PublicKey::from_hex(hotkey)
            .with_context(|| format!("[miner.quotas] {hotkey:?} is not a hotkey"))?;
        overrides.insert(crate::state::Key(key.to_bytes()), rate);
    }
    let admit = match section.admit.as_str() {
        "anyone" => Admit::Anyone,
        "staked" => Admit::Staked(section.min_caller_stake.max(1)),
        "validators" => Admit::ValidatorsOnly,
        other => anyhow::bail!("miner.admit: {other:?} is not anyone, staked or validators"),
    };
    Ok(QuotaPolicy {
        capacity: section.capacity,
        others: section.rate_per_peer,
        admit,
        overrides,
    })
}

/// The admin routes' token: `admin.token` in `data_dir`, made (random, owner-only) if missing.
fn admin_token(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("admin.token");
    match std::fs::read_to_string(&path) {
        Ok(token) if token.trim().len() >= 32 => return Ok(token.trim().to_string()),
        Ok(_) => anyhow::bail!("{}: too short to be a token", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| path.display().to_string()),
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness for a token: {e}"))?;
    let token = hex::encode(secret);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| path.display().to_string())?;
    std::io::Write::write_all(&mut file, token.as_bytes())
        .with_context(|| path.display().to_string())?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_quotas_are_read_by_hotkey_and_a_bad_key_is_named() {
        let key = meshmind_protocols::Keypair::generate().expect("random");
        let mut section = crate::config::MinerSection::default();
        section.quotas.insert(key.public().to_hex(), 1_234);
        let policy = quota_policy(&section).expect("a policy");
        assert_eq!(
            policy
                .overrides
                .get(&crate::state::Key(key.public().to_bytes())),
            Some(&1_234)
        );
        assert_eq!((policy.capacity, policy.others), (8_000, 50));
        assert_eq!(policy.admit, Admit::Anyone);
        section.admit = "staked".into();
        section.min_caller_stake = 70;
        assert_eq!(
            quota_policy(&section).map(|p| p.admit).ok(),
            Some(Admit::Staked(70))
        );
        section.admit = "friends".into();
        let error = quota_policy(&section).expect_err("refused");
        assert!(format!("{error:#}").contains("friends"), "{error:#}");
        section.admit = "validators".into();
        section.quotas.insert("not-a-key".into(), 5);
        let error = quota_policy(&section).expect_err("refused");
        assert!(format!("{error:#}").contains("not-a-key"), "{error:#}");
    }
}
