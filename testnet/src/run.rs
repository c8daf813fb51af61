//! Running a scenario: start its network, play the timeline while sampling every node, check the
//! assertions, stop the network, and return what happened for the report.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshmind_node::api::types::{QueryAnswer, QueryRequest};
use meshmind_protocols::{KeyFile, KeyKind};
use serde::Serialize;

use crate::api::read;
use crate::assertion::{Assertion, Judges};
use crate::launcher::{self, LaunchError, Layout};
use crate::manifest::{Manifest, NodeRole};
use crate::process::Sig;
use crate::scenario::{Action, Scenario};
use crate::status::{self, NodeStatus};

/// One status sample of one node.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Ms since the start of epoch 0 (negative before it).
    pub t_ms: i64,
    /// The node's answer (or its absence).
    pub status: NodeStatus,
}

/// One query sent by a load.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct QuerySample {
    /// Ms since the start of epoch 0.
    pub t_ms: i64,
    /// Round-trip time.
    pub latency_ms: f64,
    /// Whether the right answer came back.
    pub ok: bool,
}

/// A timeline entry as it was played.
#[derive(Debug, Clone, Serialize)]
pub struct Played {
    /// Ms since the start of epoch 0.
    pub t_ms: i64,
    /// What was done.
    pub what: String,
    /// Error, if it failed.
    pub error: Option<String>,
}

/// The verdict on one assertion.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The assertion as written.
    pub assertion: String,
    /// Whether it held.
    pub passed: bool,
    /// What was observed.
    pub observed: String,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Scenario name.
    pub scenario: String,
    /// From `up` to every node healthy, ms.
    pub up_ms: u64,
    /// Epoch length.
    pub epoch_ms: u64,
    /// Status samples.
    pub samples: Vec<Sample>,
    /// Queries.
    pub queries: Vec<QuerySample>,
    /// The timeline as played.
    pub played: Vec<Played>,
    /// Assertion verdicts.
    pub outcomes: Vec<Outcome>,
    /// The last status of every node.
    pub final_status: Vec<NodeStatus>,
}

impl RunRecord {
    /// Whether every assertion held.
    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(|o| o.passed)
    }
}

fn since(genesis_ms: u64) -> i64 {
    let now = i64::try_from(meshmind_node::clock::now_ms()).unwrap_or(i64::MAX);
    now - i64::try_from(genesis_ms).unwrap_or(i64::MAX)
}

/// Starts every node of a created testnet (v0 first) and waits until all answer; returns the ms
/// it took. `progress` is told (healthy, total) as nodes come up.
pub async fn start_all(
    manifest: &mut Manifest,
    dir: &Path,
    limit: Duration,
    ready: impl Fn(&NodeStatus) -> bool,
    mut progress: impl FnMut(usize, usize),
) -> Result<u64, LaunchError> {
    let started = Instant::now();
    let names: Vec<String> = manifest.nodes.iter().map(|n| n.name.clone()).collect();
    for name in &names {
        launcher::start(manifest, dir, name)?;
    }
    loop {
        let rows = status::all(manifest).await;
        let healthy = rows.iter().filter(|r| ready(r)).count();
        progress(healthy, rows.len());
        if healthy == rows.len() {
            return Ok(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        }
        if started.elapsed() > limit {
            let sick: Vec<String> = rows
                .iter()
                .filter(|r| !ready(r))
                .map(|r| format!("{} ({}, healthy {})", r.name, r.process, r.healthy))
                .collect();
            return Err(LaunchError::Other(format!(
                "not healthy after {limit:?}: {} (see <dir>/<node>/node.log)",
                sick.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn query_load(
    api: String,
    rate: u32,
    duration: Duration,
    genesis_ms: u64,
    out: Arc<Mutex<Vec<QuerySample>>>,
) {
    let every = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let end = Instant::now() + duration;
    let mut tasks = Vec::new();
    while Instant::now() < end {
        let api = api.clone();
        let out = out.clone();
        tasks.push(tokio::spawn(async move {
            let request = QueryRequest {
                content_type: None,
                encoding: None,
                subnet: 1,
                task: "arith".into(),
                input: "6 * 7".into(),
                deadline_ms: Some(3000),
                want_all: false,
                stream: false,
            };
            let start = Instant::now();
            let answer = crate::api::call(&api, Duration::from_secs(4), |c| async move {
                c.query(&request).await
            })
            .await;
            let ok = matches!(&answer, Ok(QueryAnswer::One(a)) if a.output == "42");
            let sample = QuerySample {
                t_ms: since(genesis_ms),
                latency_ms: start.elapsed().as_secs_f64() * 1000.0,
                ok,
            };
            out.lock().unwrap_or_else(|p| p.into_inner()).push(sample);
        }));
        tokio::time::sleep(every).await;
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Plays one timeline action.
pub fn act(
    manifest: &mut Manifest,
    dir: &Path,
    action: Action,
    node: &str,
) -> Result<(), LaunchError> {
    match action {
        Action::Kill => launcher::signal(manifest, node, Sig::Kill),
        Action::Stop => launcher::signal(manifest, node, Sig::Term),
        Action::Pause => launcher::signal(manifest, node, Sig::Stop),
        Action::Resume => launcher::signal(manifest, node, Sig::Cont),
        Action::Restart => {
            if let Some(pid) = manifest
                .node(node)
                .map_err(|e| LaunchError::Other(e.to_string()))?
                .pid
                && crate::process::state(pid) != crate::process::ProcState::Exited
            {
                return Err(LaunchError::Other(format!("{node} is still running")));
            }
            launcher::start(manifest, dir, node).map(|_| ())
        }
        Action::Wipe => {
            let entry = manifest
                .node(node)
                .map_err(|e| LaunchError::Other(e.to_string()))?;
            if launcher::node_state(entry) != crate::process::ProcState::Exited {
                return Err(LaunchError::Other(format!("stop {node} before wiping it")));
            }
            let ledger = entry.data_dir.join("ledger");
            std::fs::remove_dir_all(&ledger).map_err(|source| LaunchError::Io {
                path: ledger,
                source,
            })
        }
        Action::Join => {
            let role = if node.starts_with('m') {
                NodeRole::Miner
            } else {
                NodeRole::Validator
            };
            let joined = launcher::join(manifest, dir, role)?;
            if joined != node {
                return Err(LaunchError::Other(format!(
                    "the node joined as {joined}, not {node}"
                )));
            }
            Ok(())
        }
        Action::QueryLoad
        | Action::Load
        | Action::Partition
        | Action::Heal
        | Action::Assert
        | Action::Attack
        | Action::Register
        | Action::Stake
        | Action::Declare
        | Action::Undeclare => Ok(()),
    }
}

/// Runs `scenario` in `dir` with `meshmind`; the network is stopped at the end (data kept).
pub async fn run(
    scenario: &Scenario,
    dir: &Path,
    meshmind: &Path,
) -> Result<RunRecord, LaunchError> {
    let layout = Layout {
        validators: scenario.validators,
        miners: scenario.miners,
        subnets: scenario.subnets,
        epoch_ms: scenario.epoch_ms,
        base_port: 0,
        behaviours: scenario
            .behaviours
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        byzantine: scenario.byzantine.clone(),
        netns: scenario.netns,
    };
    let mut manifest = launcher::create(dir, &layout, meshmind)?;
    let result = play(scenario, dir, &mut manifest).await;
    let stopped = launcher::stop_all(&mut manifest, dir, Duration::from_secs(10));
    launcher::teardown(&manifest);
    stopped?;
    result
}

async fn play(
    scenario: &Scenario,
    dir: &Path,
    manifest: &mut Manifest,
) -> Result<RunRecord, LaunchError> {
    let up_ms = start_all(
        manifest,
        dir,
        Duration::from_secs(60),
        |r| r.healthy,
        |_, _| {},
    )
    .await?;
    let genesis_ms = manifest.genesis_time_ms;
    let samples = Arc::new(Mutex::new(Vec::new()));
    let watched = Arc::new(Mutex::new(manifest.clone()));
    let sampler = (
        tokio::spawn(sample_loop(watched.clone(), samples.clone())),
        watched,
    );
    let queries = Arc::new(Mutex::new(Vec::new()));
    let mut loads = Vec::new();
    let mut attacks = Vec::new();
    let mut played = Vec::new();
    let mut timed = Vec::new();
    let mut events = scenario.events.clone();
    events.sort_by_key(|e| e.at);
    for event in &events {
        let wait = i64::try_from(event.at.as_millis()).unwrap_or(i64::MAX) - since(genesis_ms);
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
        }
        let what = match event.action {
            Action::Partition => format!("partition {}", event.groups.as_deref().unwrap_or("")),
            Action::Assert => format!("assert {}", event.check.as_deref().unwrap_or("")),
            Action::Heal => "heal".into(),
            _ => format!("{} {}", event.action, event.node),
        };
        let error = if event.action == Action::Assert {
            let text = event.check.clone().unwrap_or_default();
            let (passed, observed) = match Assertion::parse(&text) {
                Ok(assertion) => {
                    let queries = queries.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    let samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    check(&assertion, manifest, &queries, &samples).await
                }
                Err(e) => (false, e),
            };
            timed.push(Outcome {
                assertion: format!("at {:?}: {text}", event.at),
                passed,
                observed,
            });
            None
        } else if event.action == Action::Partition {
            let groups = crate::scenario::parse_groups(event.groups.as_deref().unwrap_or(""))
                .map_err(LaunchError::Other)?;
            crate::partition::partition(manifest, &groups)
                .await
                .err()
                .map(|e| e.to_string())
        } else if event.action == Action::Heal {
            crate::partition::heal(manifest)
                .await
                .err()
                .map(|e| e.to_string())
        } else if event.action == Action::Attack {
            match hostile(manifest, event) {
                Ok(child) => {
                    attacks.push(child);
                    None
                }
                Err(e) => Some(e.to_string()),
            }
        } else if event.action == Action::Load {
            let node = manifest
                .node(&event.node)
                .map_err(|e| LaunchError::Other(e.to_string()))?;
            let spec = crate::load::LoadSpec {
                api: node.api.clone(),
                plane: event.plane.unwrap_or(crate::load::Plane::Http),
                clients: event.clients.unwrap_or(1),
                duration: event.duration.unwrap_or(Duration::from_secs(1)),
                count: event.count.unwrap_or(u64::MAX),
                subnet: 1,
                task: event.task.clone().unwrap_or_else(|| "sort".into()),
                rate_per_client: 0.0,
            };
            let genesis = node.data_dir.join("genesis.toml");
            let (queries, what) = (queries.clone(), format!("load on {}", event.node));
            // Like an attack, a load that could not run fails the run.
            attacks.push(tokio::spawn(async move {
                let started = since(genesis_ms);
                let result = crate::load::run(&spec, Some(&genesis)).await;
                let played = |what: String, error| Played {
                    t_ms: since(genesis_ms),
                    what,
                    error,
                };
                match result {
                    Ok(report) => {
                        let ran = report.sent > 0;
                        queries.lock().unwrap_or_else(|p| p.into_inner()).extend(
                            report.samples.iter().map(|s| QuerySample {
                                t_ms: started + s.t_ms as i64,
                                latency_ms: s.latency_ms,
                                ok: s.ok,
                            }),
                        );
                        let summary = report.table().replace('\n', "; ");
                        (played(format!("{what}: {summary}"), None), ran)
                    }
                    Err(e) => (played(what, Some(e.to_string())), false),
                }
            }));
            None
        } else if let Some(tx) = event.node_tx() {
            let signer = event.coldkey.as_deref().unwrap_or(&event.node);
            // An operator's transaction that does not land fails the run where it happened.
            let result = crate::operator::send(manifest, &event.node, signer, tx).await;
            timed.push(Outcome {
                assertion: format!("at {:?}: {what} applied", event.at),
                passed: result.is_ok(),
                observed: match &result {
                    Ok(printed) => printed.replace('\n', "; "),
                    Err(e) => e.to_string(),
                },
            });
            result.err().map(|e| e.to_string())
        } else if event.action == Action::QueryLoad {
            let api = manifest
                .node(&event.node)
                .map_err(|e| LaunchError::Other(e.to_string()))?
                .api
                .clone();
            loads.push(tokio::spawn(query_load(
                api,
                event.rate.unwrap_or(1),
                event.duration.unwrap_or(Duration::from_secs(1)),
                genesis_ms,
                queries.clone(),
            )));
            None
        } else {
            act(manifest, dir, event.action, &event.node)
                .err()
                .map(|e| e.to_string())
        };
        launcher::reap();
        *sampler.1.lock().unwrap_or_else(|p| p.into_inner()) = manifest.clone();
        played.push(Played {
            t_ms: since(genesis_ms),
            what,
            error,
        });
    }
    for load in loads {
        let _ = load.await;
    }
    let mut mounted = Vec::new();
    for attack in attacks {
        match attack.await {
            Ok(result) => mounted.push(result),
            // A task that panicked ran nothing: that fails the run too.
            Err(e) => mounted.push((
                Played {
                    t_ms: since(genesis_ms),
                    what: "an attack or load task".into(),
                    error: Some(e.to_string()),
                },
                false,
            )),
        }
    }
    let attacks = mounted;
    let mut played_attacks = Vec::new();
    let queries = queries.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut outcomes = timed;
    for (record, mounted) in attacks {
        outcomes.push(Outcome {
            assertion: format!("{} ran", record.what.split(':').next().unwrap_or("")),
            passed: mounted,
            observed: record.error.clone().unwrap_or_else(|| record.what.clone()),
        });
        played_attacks.push(record);
    }
    played.append(&mut played_attacks);
    for text in &scenario.asserts {
        let outcome = match Assertion::parse(text) {
            Ok(assertion) => {
                let samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
                check(&assertion, manifest, &queries, &samples).await
            }
            Err(e) => (false, e),
        };
        outcomes.push(Outcome {
            assertion: text.clone(),
            passed: outcome.0,
            observed: outcome.1,
        });
    }
    sampler.0.abort();
    let final_status = status::all(manifest).await;
    let samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(RunRecord {
        scenario: scenario.name.clone(),
        up_ms,
        epoch_ms: manifest.epoch_ms,
        samples,
        queries,
        played,
        outcomes,
        final_status,
    })
}

/// Starts the hostile peer of an `attack` event as a process of its own; the task ends with
/// what it reported.
fn hostile(
    manifest: &Manifest,
    event: &crate::scenario::Event,
) -> Result<tokio::task::JoinHandle<(Played, bool)>, LaunchError> {
    let node = manifest
        .node(&event.node)
        .map_err(|e| LaunchError::Other(e.to_string()))?;
    let attack = event
        .attack
        .ok_or_else(|| LaunchError::Other("attack event without an attack".into()))?;
    let exe = std::env::current_exe().map_err(|source| LaunchError::Io {
        path: "current executable".into(),
        source,
    })?;
    let seconds = event
        .duration
        .unwrap_or(Duration::from_secs(5))
        .as_secs_f64();
    let mut command = tokio::process::Command::new(exe);
    command
        .arg("hostile")
        .arg("--attack")
        .arg(attack.to_string())
        .arg("--api")
        .arg(&node.api)
        .arg("--genesis")
        .arg(node.data_dir.join("genesis.toml"))
        .arg("--seconds")
        .arg(seconds.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(rate) = event.rate {
        command.arg("--rate").arg(rate.to_string());
    }
    if let Some(count) = event.count {
        command.arg("--count").arg(count.to_string());
    }
    let genesis_ms = manifest.genesis_time_ms;
    let target = event.node.clone();
    Ok(tokio::spawn(async move {
        // Bounded by the attack's own duration; a hung process is killed after a grace period.
        let limit = Duration::from_secs_f64(seconds) + Duration::from_secs(60);
        let output = tokio::time::timeout(limit, command.output()).await;
        let what = format!("attack {attack} on {target}");
        let mut reached = false;
        let (what, error) = match output {
            Ok(Ok(out)) if out.status.success() => {
                let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
                // Reached: the target took something it sent.
                reached = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|tally| tally["sent"].as_u64())
                    .is_some_and(|sent| sent > 0);
                (format!("{what}: {line}"), None)
            }
            Ok(Ok(out)) => (
                what,
                Some(format!(
                    "hostile peer failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
            ),
            Ok(Err(e)) => (what, Some(format!("hostile peer did not start: {e}"))),
            Err(_) => (
                what,
                Some(format!("hostile peer still running after {limit:?}")),
            ),
        };
        // Mounted: the peer ran and reached the target.
        let mounted = error.is_none() && reached;
        (
            Played {
                t_ms: since(genesis_ms),
                what,
                error,
            },
            mounted,
        )
    }))
}

/// The longest time a validator went without its finalized epoch moving: from the first sample
/// showing an epoch to the first showing a later one (or the last sample), so samples in which it
/// did not answer count as part of the gap. Returns (node, gap in ms, when the gap ended).
fn longest_finality_gap(samples: &[Sample], node: Option<&str>) -> Option<(String, i64, i64)> {
    let mut first_seen: std::collections::BTreeMap<&str, (u64, i64)> = Default::default();
    let mut longest: Option<(String, i64, i64)> = None;
    let mut last_t = i64::MIN;
    for sample in samples {
        last_t = last_t.max(sample.t_ms);
        let status = &sample.status;
        let (true, Some(epoch)) = (status.role == "validator", status.finalized_epoch) else {
            continue;
        };
        if node.is_some_and(|n| n != status.name) {
            continue;
        }
        let entry = first_seen
            .entry(status.name.as_str())
            .or_insert((epoch, sample.t_ms));
        if epoch != entry.0 {
            let gap = sample.t_ms - entry.1;
            if longest.as_ref().is_none_or(|(_, g, _)| gap > *g) {
                longest = Some((status.name.clone(), gap, sample.t_ms));
            }
            *entry = (epoch, sample.t_ms);
        }
    }
    // Still waiting at the end counts too.
    for (name, (_, since)) in first_seen {
        let gap = last_t - since;
        if longest.as_ref().is_none_or(|(_, g, _)| gap > *g) {
            longest = Some((name.to_string(), gap, last_t));
        }
    }
    longest
}

/// Samples every node's status four times a second into `samples` until aborted.
async fn sample_loop(manifest: Arc<Mutex<Manifest>>, samples: Arc<Mutex<Vec<Sample>>>) {
    loop {
        let snapshot = manifest.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let t_ms = since(snapshot.genesis_time_ms);
        for status in status::all(&snapshot).await {
            samples
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Sample { t_ms, status });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Watches a running testnet for `duration` and returns what was seen (no timeline, no assertions).
pub async fn watch(manifest: &Manifest, duration: Duration) -> RunRecord {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let task = tokio::spawn(sample_loop(
        Arc::new(Mutex::new(manifest.clone())),
        samples.clone(),
    ));
    tokio::time::sleep(duration).await;
    task.abort();
    let final_status = status::all(manifest).await;
    let samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
    RunRecord {
        scenario: "watch".into(),
        up_ms: 0,
        epoch_ms: manifest.epoch_ms,
        samples,
        queries: Vec::new(),
        played: Vec::new(),
        outcomes: Vec::new(),
        final_status,
    }
}

fn running_validators(manifest: &Manifest) -> Vec<&crate::manifest::NodeEntry> {
    manifest
        .nodes
        .iter()
        .filter(|n| {
            n.role == NodeRole::Validator
                && launcher::node_state(n) == crate::process::ProcState::Running
        })
        .collect()
}

/// (name, finalized epoch) of each node.
async fn finalized_heads(nodes: &[&crate::manifest::NodeEntry]) -> Vec<(String, Option<u64>)> {
    let mut out = Vec::new();
    for n in nodes {
        let head = read(&n.api, |c| async move { c.status().await })
            .await
            .and_then(|s| s.consensus.finalized_epoch);
        out.push((n.name.clone(), head));
    }
    out
}

fn hotkey_hex(node: &crate::manifest::NodeEntry) -> Option<String> {
    KeyFile::read_kind(&node.data_dir.join("hotkey.json"), KeyKind::Hotkey)
        .ok()
        .map(|k| k.public().to_hex())
}

/// Checks one assertion against the running testnet; returns (held, what was observed).
pub async fn check(
    assertion: &Assertion,
    manifest: &Manifest,
    queries: &[QuerySample],
    samples: &[Sample],
) -> (bool, String) {
    match assertion {
        Assertion::FinalityGap { cmp, gap, node } => {
            match longest_finality_gap(samples, node.as_deref()) {
                Some((node, longest_ms, at_ms)) => (
                    cmp.holds(longest_ms as f64, gap.as_millis() as f64),
                    format!("longest gap {longest_ms} ms, on {node}, ending at t={at_ms} ms"),
                ),
                None => (false, "no validator status was sampled".into()),
            }
        }
        Assertion::RoundZero { cmp, share } => {
            let mut seen = Vec::new();
            for node in running_validators(manifest) {
                let counts = read(&node.api, |c| async move { c.status().await })
                    .await
                    .map(|s| (s.consensus.decided_round0, s.consensus.committed));
                seen.push((node.name.clone(), counts));
            }
            let holds = !seen.is_empty()
                && seen.iter().all(|(_, counts)| {
                    counts.is_some_and(|(zero, all)| {
                        all > 0 && cmp.holds(zero as f64 / all as f64, *share)
                    })
                });
            let observed = seen
                .iter()
                .map(|(n, c)| match c {
                    Some((zero, all)) => format!("{n}={zero}/{all}"),
                    None => format!("{n}=unreadable"),
                })
                .collect::<Vec<_>>()
                .join(" ");
            (holds, format!("epochs decided in round 0: {observed}"))
        }
        Assertion::PeakRss { cmp, mib } => {
            let mut seen = Vec::new();
            let mut unreadable = Vec::new();
            let running = manifest.nodes.iter().filter(|n| {
                n.pid
                    .is_some_and(|p| crate::process::state(p) != crate::process::ProcState::Exited)
            });
            for node in running {
                match node.pid.and_then(crate::process::peak_rss_kib) {
                    Some(kib) => seen.push((node.name.clone(), kib / 1024)),
                    None => unreadable.push(node.name.clone()),
                }
            }
            let holds = unreadable.is_empty()
                && !seen.is_empty()
                && seen.iter().all(|(_, m)| cmp.holds(*m as f64, *mib as f64));
            let mut observed = seen
                .iter()
                .map(|(n, m)| format!("{n}={m}"))
                .collect::<Vec<_>>()
                .join(" ");
            observed = format!("peak MiB: {observed}");
            if !unreadable.is_empty() {
                observed.push_str(&format!("; unreadable: {unreadable:?}"));
            }
            (holds, observed)
        }
        Assertion::Finalized {
            cmp,
            epoch,
            within,
            node,
        } => {
            let deadline = Instant::now() + *within;
            loop {
                let nodes: Vec<_> = match node {
                    Some(name) => manifest.node(name).into_iter().collect(),
                    None => running_validators(manifest),
                };
                let seen = finalized_heads(&nodes).await;
                let holds = !seen.is_empty()
                    && seen
                        .iter()
                        .all(|(_, h)| h.is_some_and(|h| cmp.holds(h as f64, *epoch as f64)));
                let observed = seen
                    .iter()
                    .map(|(n, h)| format!("{n}={}", h.map_or("-".into(), |h| h.to_string())))
                    .collect::<Vec<_>>()
                    .join(" ");
                if holds || Instant::now() > deadline {
                    return (holds, format!("finalized epochs: {observed}"));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Assertion::Stalls(duration) => {
            let before = finalized_heads(&running_validators(manifest)).await;
            tokio::time::sleep(*duration).await;
            let after = finalized_heads(&running_validators(manifest)).await;
            let moved: Vec<String> = after
                .iter()
                .filter(|(name, head)| {
                    before
                        .iter()
                        .find(|(n, _)| n == name)
                        .is_none_or(|(_, old)| old != head)
                })
                .map(|(name, head)| format!("{name} -> {head:?}"))
                .collect();
            let answered =
                !before.is_empty() && before.iter().chain(&after).all(|(_, head)| head.is_some());
            (
                answered && moved.is_empty(),
                format!("heads before {before:?}, after {after:?}"),
            )
        }
        Assertion::LedgersAgree => {
            let nodes = running_validators(manifest);
            let heads: Vec<Option<u64>> = finalized_heads(&nodes)
                .await
                .into_iter()
                .map(|(_, h)| h)
                .collect();
            let Some(low) = heads.iter().copied().min().flatten() else {
                return (
                    false,
                    format!("a validator has no finalized epoch: {heads:?}"),
                );
            };
            for epoch in 0..=low {
                let mut hashes = Vec::new();
                for n in &nodes {
                    let hash = read(&n.api, |c| async move { c.snapshot(epoch).await })
                        .await
                        .map(|s| s.hash);
                    hashes.push((n.name.clone(), hash));
                }
                if hashes.iter().any(|(_, h)| h.is_none() || *h != hashes[0].1) {
                    return (false, format!("epoch {epoch} differs: {hashes:?}"));
                }
            }
            (
                true,
                format!("{} validators agree on epochs 0..={low}", nodes.len()),
            )
        }
        Assertion::QuerySuccess { cmp, rate } => {
            if queries.is_empty() {
                return (false, "no queries were sent".into());
            }
            let ok = queries.iter().filter(|q| q.ok).count();
            let share = ok as f64 / queries.len() as f64;
            (
                cmp.holds(share, *rate),
                format!(
                    "{ok} of {} queries answered correctly ({share:.3})",
                    queries.len()
                ),
            )
        }
        Assertion::NoEvidence | Assertion::EvidenceAgainst(_) => {
            // A validator whose evidence cannot be read proves nothing either way.
            let mut accused = Vec::new();
            let (mut asked, mut unread) = (0, Vec::new());
            for n in running_validators(manifest) {
                asked += 1;
                match read(&n.api, |c| async move { c.evidence().await }).await {
                    Some(items) => {
                        accused.extend(items.into_iter().filter_map(|item| item.validator))
                    }
                    None => unread.push(n.name.clone()),
                }
            }
            if asked == 0 || unread.len() == asked {
                return (
                    false,
                    format!("no validator's evidence could be read (unread: {unread:?})"),
                );
            }
            match assertion {
                Assertion::NoEvidence => (
                    accused.is_empty() && unread.is_empty(),
                    format!("{} pieces of evidence; unread: {unread:?}", accused.len()),
                ),
                Assertion::EvidenceAgainst(name) => {
                    let key = manifest.node(name).ok().and_then(hotkey_hex);
                    let found = key.as_ref().is_some_and(|k| accused.contains(k));
                    let mut counts: std::collections::BTreeMap<String, usize> =
                        std::collections::BTreeMap::new();
                    for hotkey in &accused {
                        let who = manifest
                            .nodes
                            .iter()
                            .find(|n| hotkey_hex(n).as_ref() == Some(hotkey))
                            .map_or_else(
                                || hotkey.get(..16).unwrap_or(hotkey).to_string(),
                                |n| n.name.clone(),
                            );
                        *counts.entry(who).or_default() += 1;
                    }
                    (
                        found,
                        format!("evidence held by running validators, by accused: {counts:?}"),
                    )
                }
                _ => (false, String::new()),
            }
        }
        Assertion::WeightRank {
            miner,
            cmp,
            rank: bound,
            on,
        }
        | Assertion::Weight {
            miner,
            cmp,
            weight: bound,
            on,
        } => {
            let judges: Vec<&crate::manifest::NodeEntry> = match on {
                Judges::Every => running_validators(manifest),
                Judges::Node(name) => match manifest.node(name) {
                    Ok(node) => vec![node],
                    Err(_) => return (false, format!("no {name}")),
                },
            };
            if judges.is_empty() {
                return (false, "no running validator".into());
            }
            let by_rank = matches!(assertion, Assertion::WeightRank { .. });
            let mut held = true;
            let mut observed = Vec::new();
            for judge in judges {
                let seen = weight_of(judge, manifest, miner).await;
                let (ok, what) = match seen {
                    Ok((weight, rank, what)) => {
                        let value = if by_rank { rank } else { weight };
                        (cmp.holds(value as f64, *bound as f64), what)
                    }
                    // What cannot be observed fails: a missing API or miner is not a weight of 0.
                    Err(why) => (false, why),
                };
                held &= ok;
                observed.push(format!("{}: {what}", judge.name));
            }
            (held, observed.join("; "))
        }
        Assertion::Jailed(name) => match jailed(manifest, name).await {
            Ok(observed) => observed,
            Err(why) => (false, why),
        },
        Assertion::InSet {
            node,
            member,
            within,
        } => {
            let deadline = Instant::now() + *within;
            loop {
                let (held, observed) = match in_set(manifest, node).await {
                    Ok((is, observed)) => (is == *member, observed),
                    Err(why) => (false, why),
                };
                if held || Instant::now() >= deadline {
                    return (held, observed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Assertion::Stake { miner, cmp, amount } => match stake_of(manifest, miner).await {
            Ok((stake, observed)) => (cmp.holds(stake as f64, *amount as f64), observed),
            Err(why) => (false, why),
        },
        Assertion::StakeVs { miner, cmp, other } => {
            match (
                stake_of(manifest, miner).await,
                stake_of(manifest, other).await,
            ) {
                (Ok((a, left)), Ok((b, right))) => {
                    (cmp.holds(a as f64, b as f64), format!("{left}; {right}"))
                }
                (Err(why), _) | (_, Err(why)) => (false, why),
            }
        }
        Assertion::EmbeddingCosine { cmp, cosine } => match embedding_cosine(manifest).await {
            Ok((seen, observed)) => (cmp.holds(f64::from(seen), *cosine), observed),
            Err(why) => (false, why),
        },
    }
}

/// `miner`'s weight and rank (1 = highest) in `judge`'s latest vector on subnet 1, and what was seen.
async fn weight_of(
    judge: &crate::manifest::NodeEntry,
    manifest: &Manifest,
    miner: &str,
) -> Result<(u64, u64, String), String> {
    let Some(key) = manifest.node(miner).ok().and_then(hotkey_hex) else {
        return Err(format!("no miner {miner}"));
    };
    let Some(metagraph) = read(&judge.api, |c| async move { c.metagraph(1).await }).await else {
        return Err("metagraph could not be read".into());
    };
    let Some(weights) = read(&judge.api, |c| async move { c.weights(1).await }).await else {
        return Err("weights could not be read".into());
    };
    let Some(uid) = metagraph
        .miners
        .iter()
        .find(|m| m.hotkey == key)
        .map(|m| u64::from(m.uid))
    else {
        return Err(format!("{miner} is not in its metagraph"));
    };
    let Some(own) = weights.own else {
        return Err("no weight vector published".into());
    };
    let vector: Vec<(u64, u64)> = own
        .into_iter()
        .map(|(uid, w)| (u64::from(uid), u64::from(w)))
        .collect();
    let weight = vector
        .iter()
        .find(|(v, _)| *v == uid)
        .map_or(0, |(_, w)| *w);
    let rank = 1 + vector.iter().filter(|(_, w)| *w > weight).count() as u64;
    let observed = format!("{miner}: uid {uid}, weight {weight}, rank {rank} in {vector:?}");
    Ok((weight, rank, observed))
}

/// Whether `name` is jailed and out of the next set in v0's finalized economy, and what was seen.
async fn jailed(manifest: &Manifest, name: &str) -> Result<(bool, String), String> {
    let Ok(v0) = manifest.node("v0") else {
        return Err("no v0".into());
    };
    let Some(key) = manifest.node(name).ok().and_then(hotkey_hex) else {
        return Err(format!("no node {name}"));
    };
    let economy = read(&v0.api, |c| async move { c.economy().await })
        .await
        .ok_or("v0's economy could not be read")?;
    let Some(entry) = economy.finalizers.iter().find(|f| f.hotkey == key) else {
        return Ok((false, format!("{name} is not among v0's finalizers")));
    };
    Ok((
        entry.jailed_until.is_some() && !entry.in_next_set,
        format!(
            "{name}: jailed until {:?}, in the next set {}, own stake {}",
            entry.jailed_until, entry.in_next_set, entry.own_stake
        ),
    ))
}

/// Whether `name` is in the finalizing set: in the set v0's finalized head hands over to, and
/// voting by its own status (a node that is not running does not vote); and what was seen.
async fn in_set(manifest: &Manifest, name: &str) -> Result<(bool, String), String> {
    let Ok(v0) = manifest.node("v0") else {
        return Err("no v0".into());
    };
    let node = manifest.node(name).map_err(|_| format!("no node {name}"))?;
    let key = hotkey_hex(node).ok_or_else(|| format!("{name}'s hotkey is unreadable"))?;
    let economy = read(&v0.api, |c| async move { c.economy().await })
        .await
        .ok_or("v0's economy could not be read")?;
    let listed = economy
        .finalizers
        .iter()
        .find(|f| f.hotkey == key)
        .is_some_and(|f| f.in_next_set);
    let voting = if launcher::node_state(node) == crate::process::ProcState::Running {
        read(&node.api, |c| async move { c.status().await })
            .await
            .map(|s| s.consensus.voting)
    } else {
        Some(false)
    };
    let observed = format!(
        "{name}: in the set v0's head (epoch {}) hands over to: {listed}; voting by its status: {}",
        economy.epoch,
        voting.map_or("unreadable".into(), |v| v.to_string())
    );
    match (listed, voting) {
        (true, Some(true)) => Ok((true, observed)),
        (false, Some(false)) => Ok((false, observed)),
        // Between the two (the hand-over is under way) or unreadable: neither in nor out yet.
        _ => Err(observed),
    }
}

/// The stake behind `miner`'s hotkey in v0's finalized economy, and what was seen.
async fn stake_of(manifest: &Manifest, miner: &str) -> Result<(u64, String), String> {
    let Ok(v0) = manifest.node("v0") else {
        return Err("no v0".into());
    };
    let Some(key) = manifest.node(miner).ok().and_then(hotkey_hex) else {
        return Err(format!("no miner {miner}"));
    };
    let subnets = read(&v0.api, |c| async move { c.economy().await })
        .await
        .map(|e| e.subnets)
        .unwrap_or_default();
    for subnet in subnets {
        let chain = read(&v0.api, |c| async move { c.metagraph(subnet).await }).await;
        let neuron = chain
            .and_then(|m| m.chain)
            .and_then(|chain| chain.neurons.into_iter().find(|n| n.hotkey == key));
        if let Some(neuron) = neuron {
            let stake = neuron.stake;
            let observed = format!(
                "{miner}: subnet {subnet} uid {}, stake {stake}, incentive {}, last emission {}",
                neuron.uid, neuron.incentive, neuron.emission
            );
            return Ok((stake, observed));
        }
    }
    Err(format!("{miner} is not registered in v0's economy"))
}

/// The cosine between v0's `/v1/embeddings` answer for a sentence and this tool's own run of the
/// model, and what was seen.
async fn embedding_cosine(manifest: &Manifest) -> Result<(f32, String), String> {
    const TEXT: &str = "A lighthouse keeper counted the ships that passed in the fog.";
    let Ok(v0) = manifest.node("v0") else {
        return Err("no v0".into());
    };
    let texts = vec![TEXT.to_string()];
    let routed = crate::api::call(
        &v0.api,
        std::time::Duration::from_secs(10),
        |c| async move { c.embeddings("embed", &texts).await },
    )
    .await
    .map_err(|e| format!("v0's /v1/embeddings: {e}"))?;
    let local = tokio::task::spawn_blocking(|| {
        meshmind_models::Embedder::load_default().and_then(|m| m.embed(&[TEXT]))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("the local model: {e}"))?;
    let (Some(routed), Some(local)) = (routed.first(), local.first()) else {
        return Err("no vector".into());
    };
    let cosine = meshmind_models::cosine(routed, local);
    Ok((
        cosine,
        format!(
            "{} dimensions, cosine {cosine:.6} to the local model",
            routed.len()
        ),
    ))
}
