//! The `meshmind` command line.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use meshmind_protocols::{KeyFile, KeyKind, NetworkId, PublicKey, v1};

use crate::yuma::{InputError, YumaInput};

/// Operate a meshmind peer.
#[derive(Debug, Parser)]
#[command(name = "meshmind", version, about)]
pub struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and inspect key files.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Run one epoch of Yuma consensus on a JSON description of a subnet and print the result.
    Yuma {
        /// Input JSON file (`-` for standard input).
        #[arg(long)]
        input: PathBuf,
    },
    /// Create a data directory: config.toml, hotkey, coldkey, and a genesis (given, or a new
    /// single-validator development genesis naming this node).
    Init {
        /// The node's role.
        #[arg(long, value_enum)]
        role: crate::config::Role,
        /// Where to create it.
        #[arg(long)]
        data_dir: PathBuf,
        /// A genesis file to copy in (TOML or JSON).
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// HTTP API address to write into the config.
        #[arg(long)]
        api_listen: Option<std::net::SocketAddr>,
        /// Configure a node for a public network: listen on every interface (p2p on 7400, the
        /// query plane on 7401) and keep only public addresses learned from peers. Without it the
        /// node listens on loopback in local-testnet mode.
        #[arg(long)]
        public: bool,
    },
    /// Run the node in a data directory until SIGINT or SIGTERM.
    Run {
        /// The data directory made by `init`.
        #[arg(long)]
        data_dir: PathBuf,
        /// HTTP API address (overrides the config and MESHMIND_API_LISTEN).
        #[arg(long)]
        api_listen: Option<std::net::SocketAddr>,
        /// Peers to dial at start (multiaddrs with /p2p/), added to the config's.
        #[arg(long = "bootnode")]
        bootnodes: Vec<meshmind_p2p::Multiaddr>,
    },
    /// Send a query through a validator and print the answer: over the p2p query plane
    /// (`--validator` with `--network-id`), or through its HTTP API (`--api`).
    Query {
        /// The validator's query-plane address with its peer id (`query_multiaddr` in its status),
        /// e.g. /ip4/127.0.0.1/udp/7401/quic-v1/p2p/12D3KooW...
        #[arg(long, conflicts_with = "api", requires = "network_id")]
        validator: Option<meshmind_p2p::Multiaddr>,
        /// The network id (hex, `network_id` in any node's status), with --validator.
        #[arg(long)]
        network_id: Option<String>,
        /// The validator's HTTP API, e.g. http://127.0.0.1:7410.
        #[arg(long, required_unless_present = "validator")]
        api: Option<String>,
        /// Subnet.
        #[arg(long)]
        subnet: u32,
        /// Task.
        #[arg(long)]
        task: String,
        /// Input text.
        #[arg(long)]
        input: String,
        /// Deadline in milliseconds.
        #[arg(long, default_value_t = 5000)]
        deadline_ms: u32,
        /// Print the answer as the miner produces it (over the API: newline-delimited JSON).
        #[arg(long)]
        stream: bool,
    },
    /// Read a node's ledger (works beside a running node).
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Sign a transaction with a coldkey file and submit it through a node's API.
    #[command(subcommand)]
    Tx(crate::wallet::TxCommand),
    /// Read accounts through a node's API.
    #[command(subcommand)]
    Account(crate::wallet::AccountCommand),
    /// Read subnets through a node's API, and change one's parameters as its owner.
    #[command(subcommand)]
    Subnet(SubnetCommand),
    /// Read delegates (validator hotkeys and their takes) through a node's API, and set a take.
    #[command(subcommand)]
    Delegate(DelegateCommand),
    /// Print a running node's status from its HTTP API.
    Status {
        /// The node's API, e.g. http://127.0.0.1:7410.
        #[arg(long, default_value = "http://127.0.0.1:7410")]
        api: String,
    },
}

/// `meshmind subnet ...`.
#[derive(Debug, Subcommand)]
pub enum SubnetCommand {
    /// Print every subnet (name, tasks, owner, burn, neurons, permits, stake, rules) as JSON.
    List {
        /// A validator's or observer's API.
        #[arg(long, default_value = "http://127.0.0.1:7410")]
        api: String,
    },
    /// Print one subnet as JSON: every parameter with its value, bounds and last change.
    Show {
        /// The subnet's id.
        id: u32,
        /// A validator's or observer's API.
        #[arg(long, default_value = "http://127.0.0.1:7410")]
        api: String,
    },
    /// Change parameters of a subnet the coldkey owns, from the next epoch, e.g. `meshmind
    /// subnet set 1 kappa=40000 tempo=3 --coldkey owner.key`.
    Set {
        /// The subnet's id.
        id: u32,
        /// `name=value` pairs (`true`/`false` for switches).
        #[arg(required = true, value_parser = crate::wallet::parse_param)]
        values: Vec<(String, u64)>,
        /// Where and as whom it is sent.
        #[command(flatten)]
        common: crate::wallet::TxCommon,
    },
}

/// `meshmind delegate ...`.
#[derive(Debug, Subcommand)]
pub enum DelegateCommand {
    /// Print the validator hotkeys nominators may stake behind (take, stake, nominators, recent
    /// return per 1,000 staked) as JSON.
    List {
        /// A validator's or observer's API.
        #[arg(long, default_value = "http://127.0.0.1:7410")]
        api: String,
    },
    /// Print one delegate with every stake behind it as JSON.
    Show {
        /// The hotkey (hex).
        hotkey: String,
        /// A validator's or observer's API.
        #[arg(long, default_value = "http://127.0.0.1:7410")]
        api: String,
    },
    /// Set the take of a hotkey the coldkey owns (per mille, 0-180).
    SetTake {
        /// The hotkey (hex).
        hotkey: String,
        /// Take, per mille.
        take_per_mille: u32,
        /// Where and as whom it is sent.
        #[command(flatten)]
        common: crate::wallet::TxCommon,
    },
}

/// `meshmind ledger ...`.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Print the head, or one finalized epoch's snapshot and certificate, as JSON.
    Show {
        /// The data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// The epoch to show; the head if omitted.
        epoch: Option<u64>,
    },
    /// Check every snapshot and certificate from genesis to the head.
    Verify {
        /// The data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

/// `meshmind keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new key and write it, readable by its owner only.
    Generate {
        /// Which role the key plays.
        #[arg(long, value_enum, default_value_t = KindArg::Hotkey)]
        kind: KindArg,
        /// Where to write the key file; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a key file's public key and peer id (never its secret).
    Show {
        /// The key file.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sign a hotkey's consent to be registered on a subnet under a coldkey, for `tx register
    /// --hotkey <hex> --hotkey-signature <this>` when the hotkey file is kept elsewhere.
    Consent {
        /// The hotkey's key file.
        hotkey: PathBuf,
        /// The coldkey that will sign the registration (hex).
        #[arg(long)]
        coldkey: String,
        /// The subnet.
        #[arg(long)]
        subnet: u32,
        /// The network id (hex, as a node's `/status` shows it).
        #[arg(long)]
        network_id: String,
    },
}

/// Key role, as a command-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// A node identity.
    Hotkey,
    /// An account key.
    Coldkey,
}

impl From<KindArg> for KeyKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Hotkey => KeyKind::Hotkey,
            KindArg::Coldkey => KeyKind::Coldkey,
        }
    }
}

fn open_ledger(
    data_dir: &std::path::Path,
) -> anyhow::Result<(crate::ledger::Ledger, crate::genesis::Genesis)> {
    let config = crate::config::NodeConfig::load(&data_dir.join("config.toml"))?;
    let genesis = crate::genesis::Genesis::read(&data_dir.join(&config.genesis))?;
    let path = data_dir.join(&config.consensus.ledger);
    anyhow::ensure!(path.exists(), "no ledger at {}", path.display());
    Ok((crate::ledger::Ledger::open_read_only(&path)?, genesis))
}

fn ledger(command: LedgerCommand, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    use crate::api::view;
    match command {
        LedgerCommand::Show { data_dir, epoch } => {
            let (ledger, _) = open_ledger(&data_dir)?;
            let head = ledger.head()?;
            let value = match epoch.or(head.map(|h| h.epoch)) {
                None => serde_json::json!({ "head": null }),
                Some(epoch) => {
                    let finalized = ledger.finalized(epoch)?.with_context(|| {
                        format!("epoch {epoch} is not finalized in this ledger")
                    })?;
                    serde_json::json!({
                        "head": head.map(|h| h.epoch),
                        "snapshot": finalized.snapshot.as_ref().map(view::snapshot),
                        "certificate": finalized.certificate.as_ref().map(view::certificate),
                    })
                }
            };
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        }
        LedgerCommand::Verify { data_dir } => {
            let (ledger, genesis) = open_ledger(&data_dir)?;
            let members = crate::consensus::members::Members::from_genesis(&genesis)?;
            let network_id = genesis.network_id;
            let economy = crate::state::State::from_genesis(&genesis.message, network_id)?;
            let epochs = crate::chain::verify::verify_ledger(
                &ledger,
                network_id,
                &members,
                economy,
                genesis.message.emission_per_epoch,
            )?;
            writeln!(
                out,
                "ok: {epochs} finalized epochs verified from genesis{}",
                ledger
                    .head()?
                    .map(|h| format!(", head {} {}", h.epoch, hex::encode(h.hash)))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(())
}

/// Runs a parsed command, writing its report to `out`.
pub async fn run(cli: Cli, out: &mut (impl std::io::Write + Send)) -> anyhow::Result<()> {
    match cli.command {
        Command::Init {
            role,
            data_dir,
            genesis,
            api_listen,
            public,
        } => init(role, &data_dir, genesis.as_deref(), api_listen, public, out)?,
        Command::Run {
            data_dir,
            api_listen,
            bootnodes,
        } => {
            let mut config = crate::config::NodeConfig::load(&data_dir.join("config.toml"))?;
            if let Some(addr) = api_listen {
                config.api_listen = addr;
            }
            config.network.bootnodes.extend(bootnodes);
            crate::runtime::run(&data_dir, config, shutdown_signal()).await?;
        }
        Command::Query {
            validator,
            network_id,
            api,
            subnet,
            task,
            input,
            deadline_ms,
            stream,
        } => match (validator, network_id, api) {
            (Some(validator), Some(network_id), _) => {
                let args = crate::client::QueryArgs {
                    subnet,
                    task: &task,
                    input: &input,
                    deadline_ms,
                    stream,
                };
                crate::client::query_plane(&validator, &network_id, &args, out).await?;
            }
            (_, _, Some(api)) => {
                let request = crate::api::types::QueryRequest {
                    content_type: None,
                    encoding: None,
                    subnet,
                    task,
                    input,
                    deadline_ms: Some(deadline_ms),
                    want_all: false,
                    stream,
                };
                crate::client::query_api(&api, &request, out).await?;
            }
            _ => anyhow::bail!("give --validator with --network-id, or --api"),
        },
        Command::Status { api } => {
            let status = crate::api::client::ApiClient::new(&api)?.status().await?;
            writeln!(out, "{}", serde_json::to_string(&status)?)?;
            // The operator's answer to "where do I stand?", beside the JSON.
            if let Some(standing) = &status.standing {
                eprintln!("{}", standing.summary);
            }
        }
        Command::Keys(KeysCommand::Generate { kind, out: path }) => {
            let key = KeyFile::generate(kind.into()).context("generating a key")?;
            key.write_new(&path)?;
            writeln!(
                out,
                "wrote {} {} to {}",
                key.kind,
                key.public(),
                path.display()
            )?;
        }
        Command::Yuma { input } => yuma(&input, out)?,
        Command::Tx(command) => crate::wallet::tx(command, out).await?,
        Command::Account(command) => crate::wallet::account(command, out).await?,
        Command::Subnet(SubnetCommand::List { api }) => {
            let subnets = crate::api::client::ApiClient::new(&api)?.subnets().await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&subnets)?)?;
        }
        Command::Subnet(SubnetCommand::Show { id, api }) => {
            let subnet = crate::api::client::ApiClient::new(&api)?.subnet(id).await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&subnet)?)?;
        }
        Command::Subnet(SubnetCommand::Set { id, values, common }) => {
            let command = crate::wallet::TxCommand::SetSubnetParams {
                common,
                subnet: id,
                values,
            };
            crate::wallet::tx(command, out).await?;
        }
        Command::Delegate(DelegateCommand::List { api }) => {
            let delegates = crate::api::client::ApiClient::new(&api)?
                .delegates()
                .await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&delegates)?)?;
        }
        Command::Delegate(DelegateCommand::Show { hotkey, api }) => {
            let delegate = crate::api::client::ApiClient::new(&api)?
                .delegate(hotkey.trim())
                .await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&delegate)?)?;
        }
        Command::Delegate(DelegateCommand::SetTake {
            hotkey,
            take_per_mille,
            common,
        }) => {
            let command = crate::wallet::TxCommand::SetTake {
                common,
                hotkey,
                take_per_mille,
            };
            crate::wallet::tx(command, out).await?;
        }
        Command::Ledger(command) => ledger(command, out)?,
        Command::Keys(KeysCommand::Show { path, json }) => {
            let key = KeyFile::read(&path)?;
            let public = key.public();
            if json {
                let value = serde_json::json!({
                    "kind": key.kind.to_string(),
                    "public_key": public.to_hex(),
                    "peer_id": public.peer_id().to_string(),
                });
                writeln!(out, "{value}")?;
            } else {
                writeln!(out, "kind:       {}", key.kind)?;
                writeln!(out, "public key: {public}")?;
                writeln!(out, "peer id:    {}", public.peer_id())?;
            }
        }
        Command::Keys(KeysCommand::Consent {
            hotkey,
            coldkey,
            subnet,
            network_id,
        }) => {
            let hotkey = KeyFile::read_kind(&hotkey, KeyKind::Hotkey)?;
            let coldkey = PublicKey::from_hex(&coldkey).context("--coldkey")?;
            let network_id: NetworkId = network_id.parse().context("--network-id")?;
            let register = v1::Register {
                subnet,
                ..Default::default()
            }
            .consented(&hotkey, &network_id.to_vec(), &coldkey);
            writeln!(out, "{}", hex::encode(register.hotkey_signature))?;
        }
    }
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Creates a data directory for `role`.
fn init(
    role: crate::config::Role,
    data_dir: &std::path::Path,
    genesis: Option<&std::path::Path>,
    api_listen: Option<std::net::SocketAddr>,
    public: bool,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let config_path = data_dir.join("config.toml");
    anyhow::ensure!(
        !config_path.exists(),
        "{} already exists",
        config_path.display()
    );
    let hotkey = KeyFile::generate(KeyKind::Hotkey)?;
    hotkey.write_new(&data_dir.join("hotkey.json"))?;
    let coldkey = KeyFile::generate(KeyKind::Coldkey)?;
    coldkey.write_new(&data_dir.join("coldkey.json"))?;
    let genesis_path = data_dir.join("genesis.toml");
    match genesis {
        Some(source) => {
            crate::genesis::Genesis::read(source)?;
            let text = std::fs::read_to_string(source)
                .with_context(|| format!("reading {}", source.display()))?;
            let file: crate::genesis::GenesisFile =
                if source.extension().is_some_and(|e| e == "toml") {
                    toml::from_str(&text)?
                } else {
                    serde_json::from_str(&text)?
                };
            std::fs::write(&genesis_path, toml::to_string_pretty(&file)?)?;
        }
        None => {
            let now = crate::clock::now_ms();
            let file = crate::genesis::GenesisFile {
                network_name: "devnet".into(),
                genesis_time_ms: now,
                epoch_ms: 10_000,
                emission_per_epoch: 1_000_000_000,
                subnets: vec![crate::genesis::SubnetFile {
                    id: 1,
                    name: "reference".into(),
                    tasks: vec!["arith".into(), "sort".into()],
                    owner: Some(coldkey.public().to_hex()),
                }],
                validators: vec![crate::genesis::ValidatorFile {
                    hotkey: hotkey.public().to_hex(),
                    coldkey: coldkey.public().to_hex(),
                    stake: 1_000_000,
                }],
                balances: vec![crate::genesis::BalanceFile {
                    coldkey: coldkey.public().to_hex(),
                    amount: 1_000_000_000,
                }],
                neurons: Vec::new(),
                economy: None,
            };
            std::fs::write(&genesis_path, toml::to_string_pretty(&file)?)?;
        }
    }
    let mut config = crate::config::NodeConfig {
        role,
        ..Default::default()
    };
    if public {
        config.network = meshmind_p2p::NetworkConfig::default();
    }
    if let Some(addr) = api_listen {
        config.api_listen = addr;
    }
    std::fs::write(&config_path, config.to_toml())?;
    writeln!(out, "initialised {role} in {}", data_dir.display())?;
    writeln!(
        out,
        "hotkey {} (peer id {})",
        hotkey.public(),
        hotkey.public().peer_id()
    )?;
    Ok(())
}

/// Runs Yuma consensus on the JSON at `path`; input errors are [`InputError`]s.
fn yuma(path: &std::path::Path, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let output = YumaInput::from_json(&text)?.run()?;
    writeln!(out, "{}", serde_json::to_string(&output)?)?;
    Ok(())
}

/// The process exit code for an error: 2 for malformed input, 1 otherwise.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<InputError>().is_some() {
        2
    } else {
        1
    }
}
