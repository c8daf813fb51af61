//! `meshmind-testnet`: start, watch, break and check a local meshmind network.

use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use meshmind_protocols::{KeyFile, KeyKind};
use meshmind_testnet::launcher::{self, Layout, default_meshmind};
use meshmind_testnet::manifest::{Manifest, NodeRole};
use meshmind_testnet::process::Sig;
use meshmind_testnet::run::{self, start_all};
use meshmind_testnet::scenario::{Action, Scenario};
use meshmind_testnet::{report, status};

/// Start, watch, break and check a local meshmind network of real processes on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "meshmind-testnet", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and start a testnet, wait until every node is healthy, print the status table.
    Up {
        /// Validators (equal stake).
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Miners (reference tasks unless `--behaviour` says otherwise), spread over the subnets;
        /// with two or more, the `embed` ones serve subnet 2.
        #[arg(long, default_value_t = 8)]
        miners: usize,
        /// Subnets.
        #[arg(long, default_value_t = 1)]
        subnets: u32,
        /// Epoch length in ms.
        #[arg(long, default_value_t = 2000)]
        epoch_ms: u64,
        /// Testnet directory.
        #[arg(long, default_value = "./testnet-data")]
        dir: PathBuf,
        /// API port of v0; the other nodes count up (0: any free ports).
        #[arg(long, default_value_t = 7410)]
        base_port: u16,
        /// The meshmind binary (default: next to this one, or MESHMIND_BIN).
        #[arg(long)]
        meshmind: Option<PathBuf>,
        /// Each node in its own network namespace on 10.200.x.0/24, joined by a bridge (root only);
        /// partitions then cut links.
        #[arg(long)]
        netns: bool,
        /// A miner's behaviour, `NAME=BEHAVIOUR` (repeatable): `reference`, `slow`, `wrong`,
        /// `embed` (sentence embeddings with the model `scripts/fetch-model.sh` fetches),
        /// `embed-degraded`, `embed-random`.
        #[arg(long = "behaviour", value_name = "NAME=BEHAVIOUR", value_parser = parse_behaviour)]
        behaviours: Vec<(String, String)>,
    },
    /// Add a node to a running testnet as an outsider joins one: new keys, no stake, not
    /// registered; prints how its operator registers and stakes it.
    Join {
        /// `validator` or `miner`.
        #[arg(long, default_value = "validator", value_parser = ["validator", "miner"])]
        role: String,
        /// Testnet directory.
        #[arg(long, default_value = "./testnet-data")]
        dir: PathBuf,
    },
    /// Print every node's status.
    Status {
        /// Testnet directory.
        #[arg(long, default_value = "./testnet-data")]
        dir: PathBuf,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a node's log.
    Logs {
        /// Node name (v0, m1, ...).
        node: String,
        /// Keep printing as it grows.
        #[arg(short, long)]
        follow: bool,
        /// Testnet directory.
        #[arg(long, default_value = "./testnet-data")]
        dir: PathBuf,
    },
    /// SIGKILL a node.
    Kill(NodeArg),
    /// Start a node again (stopping it first if it runs).
    Restart(NodeArg),
    /// Freeze a node (SIGSTOP).
    Pause(NodeArg),
    /// Thaw a paused node (SIGCONT).
    Resume(NodeArg),
    /// Cut groups of nodes apart, e.g. `partition "v0,v1 / v2,v3"` (connections refused both ways).
    Partition {
        /// The groups: node names separated by commas, groups by `/`.
        groups: String,
        /// Testnet directory.
        #[arg(long, default_value = "./testnet-data")]
        dir: PathBuf,
    },
    /// Undo every partition.
    Heal {
        /// Testnet directory.
        #[arg(long, default_value = "./testnet-data")]
        dir: PathBuf,
    },
    /// Stop every node (SIGTERM, then SIGKILL); data is kept unless --purge.
    Down {
        /// Testnet directory.
        #[arg(long, default_value = "./testnet-data")]
        dir: PathBuf,
        /// Delete the testnet directory too.
        #[arg(long)]
        purge: bool,
    },
    /// Play a scenario file; exit 0 only if every assertion holds. Writes a report.
    Run {
        /// The scenario (TOML).
        scenario: PathBuf,
        /// Where the scenario's network lives (default ./testnet-runs/<name>, replaced).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The meshmind binary (default: next to this one, or MESHMIND_BIN).
        #[arg(long)]
        meshmind: Option<PathBuf>,
    },
    /// Join a testnet as a hostile peer and mount one attack on a node for a bounded time;
    /// prints what it sent as one JSON line.
    Hostile {
        /// The attack.
        #[arg(long, value_enum)]
        attack: meshmind_testnet::hostile::Attack,
        /// The target node's HTTP API (`127.0.0.1:7410`).
        #[arg(long)]
        api: String,
        /// The network's genesis file.
        #[arg(long)]
        genesis: PathBuf,
        /// Longest run, in seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Messages or requests per second (default: the attack's own).
        #[arg(long)]
        rate: Option<u32>,
        /// Most messages or requests (default: the attack's own).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Query a validator from many concurrent clients for a while (loopback only); report
    /// throughput, latency percentiles, errors by kind and answers per miner.
    Load {
        /// The node queried (its API is read from the testnet directory): a validator, or a
        /// miner on the p2p plane for a direct baseline.
        #[arg(long, default_value = "v0")]
        node: String,
        /// Testnet directory.
        #[arg(long, default_value = "./testnet-data")]
        dir: PathBuf,
        /// HTTP gateway or p2p query plane.
        #[arg(long, value_enum, default_value = "http")]
        plane: meshmind_testnet::load::Plane,
        /// Concurrent clients, each asking again as soon as it is answered.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Longest run, in seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Most queries in all.
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        /// A reference task, so every answer is checked, or `embed`: texts embedded through the
        /// gateway's `/v1/embeddings` (over `--plane p2p`, routed queries), any 384-d vector taken.
        #[arg(long, default_value = "sort")]
        task: String,
        /// The subnet.
        #[arg(long, default_value_t = 1)]
        subnet: u32,
        /// Queries a second each client sends at most (0: as fast as it is answered).
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Watch a running testnet for a while and write a report of it.
    Report {
        /// Testnet directory.
        #[arg(long, default_value = "./testnet-data")]
        dir: PathBuf,
        /// How long to watch.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

#[derive(Debug, clap::Args)]
struct NodeArg {
    /// Node name (v0, m1, ...).
    node: String,
    /// Testnet directory.
    #[arg(long, default_value = "./testnet-data")]
    dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(command(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Loads the testnet of `dir`; under `--netns`, API requests go through its bridge namespace.
fn load(dir: &std::path::Path) -> anyhow::Result<Manifest> {
    let manifest = Manifest::load(dir)?;
    if let Some(plan) = &manifest.netns {
        meshmind_testnet::netns::use_gateway(&plan.bridge_ns())?;
    }
    Ok(manifest)
}

fn act(args: NodeArg, action: Action) -> anyhow::Result<()> {
    let mut manifest = load(&args.dir)?;
    if action == Action::Restart {
        let running = manifest.node(&args.node)?.pid.is_some_and(|p| {
            meshmind_testnet::process::state(p) != meshmind_testnet::process::ProcState::Exited
        });
        if running {
            // Stopped gracefully if it can be within 10 s (it may be finishing queries or a
            // write), else killed.
            launcher::signal(&manifest, &args.node, Sig::Term)?;
            let exited = || {
                launcher::reap();
                manifest
                    .node(&args.node)
                    .ok()
                    .and_then(|n| n.pid)
                    .is_none_or(|p| {
                        meshmind_testnet::process::state(p)
                            == meshmind_testnet::process::ProcState::Exited
                    })
            };
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !exited() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if !exited() {
                launcher::signal(&manifest, &args.node, Sig::Kill)?;
                std::thread::sleep(Duration::from_millis(200));
                launcher::reap();
            }
        }
    }
    run::act(&mut manifest, &args.dir, action, &args.node)?;
    manifest.save(&args.dir)?;
    println!("{action} {}", args.node);
    Ok(())
}

/// `NAME=BEHAVIOUR` of `--behaviour`.
fn parse_behaviour(text: &str) -> Result<(String, String), String> {
    let (name, behaviour) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected NAME=BEHAVIOUR, e.g. m1=embed"))?;
    if !launcher::BEHAVIOURS.contains(&behaviour) {
        return Err(format!(
            "{behaviour:?}: one of {}",
            launcher::BEHAVIOURS.join(", ")
        ));
    }
    Ok((name.to_string(), behaviour.to_string()))
}

async fn command(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Up {
            validators,
            miners,
            subnets,
            epoch_ms,
            dir,
            base_port,
            meshmind,
            netns,
            behaviours,
        } => {
            let meshmind = meshmind.unwrap_or_else(default_meshmind);
            let embedding = behaviours.iter().any(|(_, b)| b.starts_with("embed"));
            let layout = Layout {
                validators,
                miners,
                subnets,
                epoch_ms,
                base_port,
                behaviours,
                byzantine: Vec::new(),
                netns,
            };
            let mut manifest = launcher::create(&dir, &layout, &meshmind)?;
            println!(
                "starting {validators} validators and {miners} miners in {}",
                dir.display()
            );
            // Validators validate every subnet, so each sees every miner.
            let nodes = validators + miners;
            let ready = move |r: &status::NodeStatus| status::settled(r, nodes, miners as u64);
            let started = start_all(&mut manifest, &dir, Duration::from_secs(90), ready, {
                let mut last = None;
                move |done: usize, total: usize| {
                    if last == Some(done) {
                        return;
                    }
                    last = Some(done);
                    let width = 30;
                    let filled = done * width / total.max(1);
                    print!(
                        "\r[{}{}] {done}/{total} healthy",
                        "#".repeat(filled),
                        " ".repeat(width - filled)
                    );
                    let _ = std::io::stdout().flush();
                }
            });
            let up_ms = tokio::select! {
                result = started => result,
                _ = tokio::signal::ctrl_c() => {
                    launcher::stop_all(&mut manifest, &dir, Duration::from_secs(5))?;
                    launcher::teardown(&manifest);
                    anyhow::bail!("interrupted; every node started was stopped");
                }
            };
            println!();
            let up_ms = match up_ms {
                Ok(ms) => ms,
                Err(e) => {
                    launcher::stop_all(&mut manifest, &dir, Duration::from_secs(5))?;
                    launcher::teardown(&manifest);
                    return Err(e.into());
                }
            };
            print!("{}", status::table(&status::all(&manifest).await));
            let v0 = manifest.node("v0")?.api.clone();
            println!(
                "\nall {} nodes healthy {:.1}s after start (connected, miners discovered, epoch 0 \
                 finalized); one epoch is finalized every {epoch_ms} ms. Try:",
                manifest.nodes.len(),
                up_ms as f64 / 1000.0
            );
            println!(
                "  {} query --api http://{v0} --subnet 1 --task arith --input '6 * 7'",
                manifest.meshmind.display()
            );
            let me = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "meshmind-testnet".into());
            println!("  {me} status --dir {}", dir.display());
            if embedding {
                let subnet = if subnets >= 2 { 2 } else { 1 };
                println!(
                    "  curl -s http://{v0}/v1/embeddings -d '{{\"model\": \"{subnet}/embed\", \"input\": \"a sentence\"}}'"
                );
            }
            println!("  curl -s http://{v0}/snapshots/1");
            println!("Stop: {me} down --dir {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Join { role, dir } => {
            let mut manifest = load(&dir)?;
            let role = match role.as_str() {
                "miner" => NodeRole::Miner,
                _ => NodeRole::Validator,
            };
            let name = launcher::join(&mut manifest, &dir, role)?;
            let node = manifest.node(&name)?.clone();
            let healthy = async {
                loop {
                    if status::node_status(&node).await.healthy {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            };
            if tokio::time::timeout(Duration::from_secs(30), healthy)
                .await
                .is_err()
            {
                anyhow::bail!("{name} did not answer in 30 s; see `logs {name}`");
            }
            let hotkey = KeyFile::read_kind(&node.data_dir.join("hotkey.json"), KeyKind::Hotkey)?
                .public()
                .to_hex();
            let v0 = manifest.node("v0")?;
            let (mm, api, funder) = (
                manifest.meshmind.display(),
                format!("http://{}", v0.api),
                v0.data_dir.join("coldkey.json"),
            );
            let (funder, keys) = (funder.display(), node.data_dir.display());
            println!(
                "{name} joined: hotkey {hotkey}, api {}, data {keys}",
                node.api
            );
            println!(
                "Where it stands: {mm} status --api http://{} (its \"standing\")",
                node.api
            );
            println!(
                "It holds no stake and is registered nowhere. As its operator (v0's coldkey pays here):"
            );
            println!(
                "  {mm} tx register --api {api} --coldkey {funder} --hotkey {keys}/hotkey.json --subnet 1 --wait"
            );
            println!(
                "  {mm} tx stake --api {api} --coldkey {funder} --hotkey {hotkey} --subnet 1 --amount 100000000 --wait"
            );
            println!("Then, to finalize too (from the next epoch, by its own stake):");
            println!(
                "  {mm} tx declare-finalizer --api {api} --coldkey {funder} --hotkey {keys}/hotkey.json --wait"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { dir, json } => {
            let manifest = load(&dir)?;
            let rows = status::all(&manifest).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", status::table(&rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Logs { node, follow, dir } => {
            let manifest = load(&dir)?;
            let path = manifest.node(&node)?.data_dir.join("node.log");
            let mut file =
                std::fs::File::open(&path).with_context(|| format!("{}", path.display()))?;
            let mut out = std::io::stdout();
            loop {
                let mut chunk = Vec::new();
                file.read_to_end(&mut chunk)?;
                out.write_all(&chunk)?;
                out.flush()?;
                if !follow {
                    return Ok(ExitCode::SUCCESS);
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                }
                let position = file.stream_position()?;
                if std::fs::metadata(&path)?.len() < position {
                    file.seek(std::io::SeekFrom::Start(0))?;
                }
            }
        }
        Command::Kill(args) => act(args, Action::Kill).map(|()| ExitCode::SUCCESS),
        Command::Restart(args) => act(args, Action::Restart).map(|()| ExitCode::SUCCESS),
        Command::Pause(args) => act(args, Action::Pause).map(|()| ExitCode::SUCCESS),
        Command::Resume(args) => act(args, Action::Resume).map(|()| ExitCode::SUCCESS),
        Command::Partition { groups, dir } => {
            let manifest = load(&dir)?;
            let parsed =
                meshmind_testnet::scenario::parse_groups(&groups).map_err(anyhow::Error::msg)?;
            meshmind_testnet::partition::partition(&manifest, &parsed).await?;
            println!("partitioned {groups}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Heal { dir } => {
            let manifest = load(&dir)?;
            meshmind_testnet::partition::heal(&manifest).await?;
            println!("healed");
            Ok(ExitCode::SUCCESS)
        }
        Command::Down { dir, purge } => {
            let mut manifest = load(&dir)?;
            let stopped = launcher::stop_all(&mut manifest, &dir, Duration::from_secs(10))?;
            launcher::teardown(&manifest);
            if purge {
                std::fs::remove_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
                println!("stopped {stopped} node(s); removed {}", dir.display());
            } else {
                println!("stopped {stopped} node(s); data kept in {}", dir.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            scenario,
            dir,
            meshmind,
        } => {
            let parsed = Scenario::read(&scenario)?;
            let dir = dir.unwrap_or_else(|| PathBuf::from("./testnet-runs").join(&parsed.name));
            // Only a directory this tool made (it holds a manifest) is cleared.
            Manifest::clear_own_dir(&dir, |mut old| -> anyhow::Result<()> {
                launcher::stop_all(&mut old, &dir, Duration::from_secs(5))?;
                launcher::teardown(&old);
                Ok(())
            })?;
            let meshmind = meshmind.unwrap_or_else(default_meshmind);
            println!("scenario {} in {}", parsed.name, dir.display());
            let record = tokio::select! {
                record = run::run(&parsed, &dir, &meshmind) => record?,
                _ = tokio::signal::ctrl_c() => {
                    if let Ok(mut m) = Manifest::load(&dir) {
                        launcher::stop_all(&mut m, &dir, Duration::from_secs(5))?;
                        launcher::teardown(&m);
                    }
                    anyhow::bail!("interrupted; the scenario's nodes were stopped");
                }
            };
            let path = report::write(&record, &dir.join("report"))?;
            print!("{}", status::table(&record.final_status));
            for outcome in &record.outcomes {
                println!(
                    "{} {}: {}",
                    if outcome.passed { "ok    " } else { "FAILED" },
                    outcome.assertion,
                    outcome.observed
                );
            }
            println!("report: {}", path.display());
            Ok(if record.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Hostile {
            attack,
            api,
            genesis,
            seconds,
            rate,
            count,
        } => {
            anyhow::ensure!(
                seconds.is_finite() && (0.0..=3_600.0).contains(&seconds),
                "--seconds: 0 to 3600"
            );
            let bounds = meshmind_testnet::hostile::Bounds {
                rate: rate.unwrap_or_else(|| attack.default_rate()),
                count: count.unwrap_or_else(|| attack.default_count()),
                duration: Duration::from_secs_f64(seconds),
            };
            let tally = meshmind_testnet::hostile::mount(attack, &api, &genesis, bounds).await?;
            println!("{}", serde_json::to_string(&tally)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Load {
            node,
            dir,
            plane,
            clients,
            seconds,
            count,
            task,
            subnet,
            rate,
            json,
        } => {
            anyhow::ensure!(
                seconds.is_finite() && seconds > 0.0 && seconds <= 600.0,
                "--seconds: above 0, at most 600"
            );
            let manifest = load(&dir)?;
            let entry = manifest.node(&node)?;
            let spec = meshmind_testnet::load::LoadSpec {
                api: entry.api.clone(),
                plane,
                clients,
                duration: Duration::from_secs_f64(seconds),
                count,
                subnet,
                task,
                rate_per_client: rate,
            };
            let genesis = entry.data_dir.join("genesis.toml");
            let report = meshmind_testnet::load::run(&spec, Some(&genesis)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.table());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { dir, seconds } => {
            let manifest = load(&dir)?;
            let record = run::watch(&manifest, Duration::from_secs(seconds)).await;
            let path = report::write(&record, &dir.join("report"))?;
            print!("{}", status::table(&record.final_status));
            println!("report: {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
