//! Scenario files: the network to start, a timeline of faults and load, and the assertions that
//! decide the verdict.
//!
//! ```toml
//! name = "crash-restart"
//! validators = 4
//! miners = 4
//! epoch_ms = 1000
//! behaviours = { m3 = "slow", m4 = "wrong" }
//! asserts = ["finalized_epoch >= 10 within 60s", "all ledgers agree", "no evidence"]
//!
//! [[events]]
//! at = "6s"
//! action = "kill"          # kill, restart, pause, resume, stop, wipe, query_load, ...
//! node = "v3"
//!
//! [[events]]
//! at = "3s"
//! action = "join"          # a new node with new keys: `v<n>` a validator, `m<n>` a miner
//! node = "v4"
//!
//! [[events]]
//! at = "4s"
//! action = "stake"         # register, stake, declare, undeclare: the node's transactions
//! node = "v4"
//! coldkey = "v0"           # whose coldkey signs (and pays); by default the node's own
//! amount = 1000
//!
//! [[events]]
//! at = "8s"
//! action = "query_load"
//! node = "v0"              # the validator queried
//! rate = 10                # queries per second
//! duration = "5s"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// A parsed scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name, for the report.
    pub name: String,
    /// Validators.
    #[serde(default = "default_validators")]
    pub validators: usize,
    /// Miners.
    #[serde(default)]
    pub miners: usize,
    /// Subnets.
    #[serde(default = "default_subnets")]
    pub subnets: u32,
    /// Epoch length.
    #[serde(default = "default_epoch_ms")]
    pub epoch_ms: u64,
    /// Miner behaviours by name (`slow`, `wrong`, `embed`, `embed-degraded`, `embed-random`;
    /// `reference` is honest).
    #[serde(default)]
    pub behaviours: BTreeMap<String, String>,
    /// Validators started in the test-only equivocation mode.
    #[serde(default)]
    pub byzantine: Vec<String>,
    /// Run every node in its own network namespace (root only).
    #[serde(default)]
    pub netns: bool,
    /// The timeline.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Assertions checked after the timeline, in order.
    #[serde(default)]
    pub asserts: Vec<String>,
}

fn default_validators() -> usize {
    4
}
fn default_subnets() -> u32 {
    1
}
fn default_epoch_ms() -> u64 {
    1_000
}

/// What happens at a point of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// SIGKILL.
    Kill,
    /// SIGTERM.
    Stop,
    /// Start again (after kill or stop).
    Restart,
    /// SIGSTOP.
    Pause,
    /// SIGCONT.
    Resume,
    /// Delete the node's ledger (it must be stopped).
    Wipe,
    /// Send queries through a validator.
    QueryLoad,
    /// Query a validator from `clients` concurrent clients for `duration`, over `plane` (`http`,
    /// the default, or `p2p`); see [`crate::load`].
    Load,
    /// Cut the named groups of nodes apart (`groups = "v0,v1 / v2,v3"`).
    Partition,
    /// Undo every partition.
    Heal,
    /// Check an assertion at this point of the timeline (`check = "..."`).
    Assert,
    /// Start a hostile peer that mounts `attack = "..."` on the node for `duration` (see
    /// [`crate::hostile::Attack`]); `rate` and `count` override the attack's own.
    Attack,
    /// Add a node with new keys, no stake and no registration, named `node` (`v<n>` a validator,
    /// `m<n>` a miner: the next free name of its kind).
    Join,
    /// Register the node's hotkey on `subnet` (default 1), signed by `coldkey`.
    Register,
    /// Stake `amount` on the node's hotkey on `subnet` (default 1), signed by `coldkey`.
    Stake,
    /// Declare the node's hotkey a finalizer, signed by `coldkey` (whose stake behind it counts).
    Declare,
    /// Withdraw the node's declaration, signed by `coldkey`.
    Undeclare,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Kill => "kill",
            Self::Stop => "stop",
            Self::Restart => "restart",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Wipe => "wipe",
            Self::QueryLoad => "query_load",
            Self::Load => "load",
            Self::Partition => "partition",
            Self::Heal => "heal",
            Self::Assert => "assert",
            Self::Attack => "attack",
            Self::Join => "join",
            Self::Register => "register",
            Self::Stake => "stake",
            Self::Declare => "declare",
            Self::Undeclare => "undeclare",
        })
    }
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// When, from the start of epoch 0: `"500ms"`, `"6s"`, `"2m"`.
    #[serde(deserialize_with = "duration")]
    pub at: Duration,
    /// What.
    pub action: Action,
    /// Which node (node actions and `query_load`).
    #[serde(default)]
    pub node: String,
    /// The groups of a `partition`: `"v0,v1 / v2,v3"`.
    #[serde(default)]
    pub groups: Option<String>,
    /// The assertion of an `assert`.
    #[serde(default)]
    pub check: Option<String>,
    /// Queries per second (`query_load`).
    #[serde(default)]
    pub rate: Option<u32>,
    /// How long (`query_load`, `attack`).
    #[serde(default, deserialize_with = "optional_duration")]
    pub duration: Option<Duration>,
    /// The attack of an `attack` event (`gossip-flood`, `fake-ads`, ...).
    #[serde(default)]
    pub attack: Option<crate::hostile::Attack>,
    /// Most messages or requests of an `attack`, or queries of a `load`.
    #[serde(default)]
    pub count: Option<u64>,
    /// Concurrent clients of a `load`.
    #[serde(default)]
    pub clients: Option<usize>,
    /// The plane of a `load`.
    #[serde(default)]
    pub plane: Option<crate::load::Plane>,
    /// The task of a `load`: a reference task (default `sort`) or `embed`.
    #[serde(default)]
    pub task: Option<String>,
    /// Whose coldkey signs a transaction (`register`, `stake`, `declare`, `undeclare`): a node's
    /// name; by default the node's own.
    #[serde(default)]
    pub coldkey: Option<String>,
    /// The amount of a `stake`.
    #[serde(default)]
    pub amount: Option<u64>,
    /// The subnet of a `register` or `stake` (default 1).
    #[serde(default)]
    pub subnet: Option<u32>,
}

impl Event {
    /// The transaction a `register`, `stake`, `declare` or `undeclare` event sends.
    pub fn node_tx(&self) -> Option<crate::operator::NodeTx> {
        use crate::operator::NodeTx;
        let subnet = self.subnet.unwrap_or(1);
        Some(match self.action {
            Action::Register => NodeTx::Register { subnet },
            Action::Stake => NodeTx::Stake {
                subnet,
                amount: self.amount.unwrap_or(0),
            },
            Action::Declare => NodeTx::Declare,
            Action::Undeclare => NodeTx::Undeclare,
            _ => return None,
        })
    }
}

/// Parses `"250ms"`, `"6s"`, `"1.5s"`, `"2m"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        return Err(format!("{text:?}: a duration needs a unit (ms, s or m)"));
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: not a number of {}", &text[number.len()..]))?;
    if !(0.0..=86_400.0).contains(&(value * scale)) {
        return Err(format!("{text:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    text.map(|t| parse_duration(&t).map_err(serde::de::Error::custom))
        .transpose()
}

/// Parses partition groups: `"v0,v1 / v2,v3"` (two or more groups, each one or more nodes, no node
/// twice).
pub fn parse_groups(text: &str) -> Result<Vec<Vec<String>>, String> {
    let groups: Vec<Vec<String>> = text
        .split('/')
        .map(|g| {
            g.split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect()
        })
        .collect();
    if groups.len() < 2 || groups.iter().any(Vec::is_empty) {
        return Err(format!(
            "{text:?}: two or more groups like \"v0,v1 / v2,v3\""
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for name in groups.iter().flatten() {
        if !seen.insert(name) {
            return Err(format!("{name:?} is in two groups"));
        }
    }
    Ok(groups)
}

/// Why a scenario file is unusable; the message carries the line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ScenarioError {
    /// The file.
    pub path: String,
    /// What and where.
    pub message: String,
}

impl Scenario {
    /// Parses scenario text; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let location = e
                .span()
                .map(|span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!("line {line}, column {column}: ")
                })
                .unwrap_or_default();
            ScenarioError {
                path: path.to_string(),
                message: format!("{location}{}", e.message()),
            }
        })?;
        scenario.check().map_err(|message| ScenarioError {
            path: path.to_string(),
            message,
        })?;
        Ok(scenario)
    }

    /// Reads and parses a scenario file.
    pub fn read(path: &std::path::Path) -> Result<Self, ScenarioError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            path: name.clone(),
            message: e.to_string(),
        })?;
        Self::parse(&name, &text)
    }

    fn names(&self) -> Vec<String> {
        (0..self.validators)
            .map(|i| format!("v{i}"))
            .chain((1..=self.miners).map(|i| format!("m{i}")))
            .collect()
    }

    fn check(&self) -> Result<(), String> {
        if self.validators == 0 {
            return Err("validators: at least 1".into());
        }
        if self.epoch_ms < 100 {
            return Err("epoch_ms: at least 100".into());
        }
        let mut names = self.names();
        // In the order they are played: a node exists from its `join` on.
        let mut order: Vec<(usize, &Event)> = self.events.iter().enumerate().collect();
        order.sort_by_key(|(_, e)| e.at);
        for (i, event) in order {
            match event.action {
                Action::Partition => {
                    let groups = parse_groups(event.groups.as_deref().unwrap_or(""))
                        .map_err(|e| format!("events[{i}].groups: {e}"))?;
                    if let Some(bad) = groups.iter().flatten().find(|n| !names.contains(n)) {
                        return Err(format!(
                            "events[{i}].groups: no node {bad:?} in this scenario"
                        ));
                    }
                    continue;
                }
                Action::Heal => continue,
                Action::Join => {
                    let (kind, first) = if event.node.starts_with('m') {
                        ('m', 1)
                    } else {
                        ('v', 0)
                    };
                    let next = (first..)
                        .map(|n| format!("{kind}{n}"))
                        .find(|n| !names.contains(n))
                        .unwrap_or_default();
                    if event.node != next {
                        return Err(format!(
                            "events[{i}].node: a join names the next free node, {next:?} here \
                             (`v<n>` a validator, `m<n>` a miner)"
                        ));
                    }
                    if self.netns {
                        return Err(format!(
                            "events[{i}]: joins run on loopback, not in network namespaces"
                        ));
                    }
                    names.push(next);
                    continue;
                }
                Action::Assert => {
                    let text = event
                        .check
                        .as_deref()
                        .ok_or_else(|| format!("events[{i}]: assert needs check = \"...\""))?;
                    crate::assertion::Assertion::parse(text)
                        .map_err(|e| format!("events[{i}].check: {e}"))?;
                    continue;
                }
                _ => {}
            }
            if !names.contains(&event.node) {
                return Err(format!(
                    "events[{i}].node: no node {:?} in this scenario",
                    event.node
                ));
            }
            if event.action == Action::QueryLoad
                && (event.rate.unwrap_or(0) == 0 || event.duration.is_none())
            {
                return Err(format!("events[{i}]: query_load needs rate and duration"));
            }
            if event.action == Action::Attack {
                if event.attack.is_none() || event.duration.is_none() {
                    return Err(format!(
                        "events[{i}]: attack needs attack = \"...\" and duration"
                    ));
                }
                if self.netns {
                    return Err(format!(
                        "events[{i}]: attacks run on loopback, not in network namespaces"
                    ));
                }
            } else if event.action == Action::Load {
                if event
                    .clients
                    .is_none_or(|c| c == 0 || c > crate::load::MAX_CLIENTS)
                    || event.duration.is_none()
                {
                    return Err(format!(
                        "events[{i}]: load needs clients (1 to {}) and duration",
                        crate::load::MAX_CLIENTS
                    ));
                }
                if self.netns {
                    return Err(format!(
                        "events[{i}]: loads run on loopback, not in network namespaces"
                    ));
                }
            } else if event.attack.is_some() || event.count.is_some() {
                return Err(format!(
                    "events[{i}]: attack and count belong to attack and load events"
                ));
            }
            if event.node_tx().is_some() {
                if let Some(signer) = &event.coldkey
                    && !names.contains(signer)
                {
                    return Err(format!(
                        "events[{i}].coldkey: no node {signer:?} in this scenario"
                    ));
                }
                if event.action == Action::Stake && event.amount.is_none_or(|a| a == 0) {
                    return Err(format!("events[{i}]: stake needs an amount above 0"));
                }
            } else if event.coldkey.is_some() || event.amount.is_some() || event.subnet.is_some() {
                return Err(format!(
                    "events[{i}]: coldkey, amount and subnet belong to transaction events"
                ));
            }
            if event.action != Action::Load
                && (event.clients.is_some() || event.plane.is_some() || event.task.is_some())
            {
                return Err(format!(
                    "events[{i}]: clients, plane and task belong to load events"
                ));
            }
        }
        // Byzantine modes and behaviours are set at launch, on the nodes it starts.
        let names = self.names();
        for name in &self.byzantine {
            if !name.starts_with('v') || !names.contains(name) {
                return Err(format!(
                    "byzantine: {name:?} is not a validator of this scenario"
                ));
            }
        }
        for name in self.behaviours.keys() {
            if !name.starts_with('m') || !names.contains(name) {
                return Err(format!("behaviours.{name}: not a miner of this scenario"));
            }
        }
        for (i, text) in self.asserts.iter().enumerate() {
            crate::assertion::Assertion::parse(text).map_err(|e| format!("asserts[{i}]: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_parses_with_its_timeline_and_assertions() {
        let text = r#"
name = "t"
validators = 2
miners = 1
epoch_ms = 500
behaviours = { m1 = "slow" }
asserts = ["finalized_epoch >= 3 within 30s", "no evidence"]

[[events]]
at = "1.5s"
action = "kill"
node = "v1"

[[events]]
at = "2s"
action = "query_load"
node = "v0"
rate = 5
duration = "3s"
"#;
        let s = Scenario::parse("t.toml", text).unwrap();
        assert_eq!(s.events[0].at, Duration::from_millis(1500));
        assert_eq!(s.events[1].action, Action::QueryLoad);
        assert_eq!(s.events[1].duration, Some(Duration::from_secs(3)));
        assert_eq!(s.asserts.len(), 2);
    }

    #[test]
    fn partition_groups_parse_and_refuse_overlaps() {
        assert_eq!(
            parse_groups("v0,v1 / v2, v3").unwrap(),
            vec![
                vec!["v0".to_string(), "v1".into()],
                vec!["v2".into(), "v3".into()]
            ]
        );
        assert!(
            parse_groups("v0,v1 / v1")
                .unwrap_err()
                .contains("two groups")
        );
        assert!(parse_groups("v0,v1").is_err());
        assert!(parse_groups("v0 / ").is_err());
        let text =
            "name = \"t\"\n[[events]]\nat = \"1s\"\naction = \"partition\"\ngroups = \"v0 / v7\"\n";
        let err = Scenario::parse("p.toml", text).unwrap_err();
        assert!(err.message.contains("no node \"v7\""), "{err}");
        let text = "name = \"t\"\n[[events]]\nat = \"1s\"\naction = \"assert\"\n";
        let err = Scenario::parse("p.toml", text).unwrap_err();
        assert!(err.message.contains("assert needs check"), "{err}");
    }

    #[test]
    fn malformed_files_get_line_and_column() {
        let text = "name = \"t\"\nvalidators = 4\n\n[[events]]\nat = \"5s\"\naction = \"explode\"\nnode = \"v1\"\n";
        let err = Scenario::parse("bad.toml", text).unwrap_err();
        assert!(err.message.starts_with("line 6, column 10"), "{err}");
        assert!(err.message.contains("explode"), "{err}");

        let err = Scenario::parse("bad.toml", "name = \"t\"\nvalidators = \"four\"\n").unwrap_err();
        assert!(err.message.starts_with("line 2"), "{err}");

        let err = Scenario::parse(
            "bad.toml",
            "name = \"t\"\n[[events]]\nat = \"5\"\naction = \"kill\"\nnode = \"v1\"\n",
        )
        .unwrap_err();
        assert!(err.message.contains("needs a unit"), "{err}");

        let err = Scenario::parse(
            "bad.toml",
            "name = \"t\"\n[[events]]\nat = \"5s\"\naction = \"kill\"\nnode = \"v9\"\n",
        )
        .unwrap_err();
        assert!(err.message.contains("no node \"v9\""), "{err}");

        let err = Scenario::parse(
            "bad.toml",
            "name = \"t\"\nasserts = [\"finalized_epoch >>= 3\"]\n",
        )
        .unwrap_err();
        assert!(err.message.starts_with("asserts[0]"), "{err}");
    }

    #[test]
    fn joins_name_the_next_node_and_transactions_need_their_fields() {
        let event = |at: &str, body: &str| format!("[[events]]\nat = \"{at}\"\n{body}\n");
        let head = "name = \"t\"\nvalidators = 2\nminers = 1\n";
        let ok = format!(
            "{head}{}{}{}{}",
            event("1s", "action = \"join\"\nnode = \"v2\""),
            event(
                "2s",
                "action = \"stake\"\nnode = \"v2\"\ncoldkey = \"v0\"\namount = 5"
            ),
            event("3s", "action = \"join\"\nnode = \"m2\""),
            event("4s", "action = \"undeclare\"\nnode = \"v1\""),
        );
        let s = Scenario::parse("t.toml", &ok).expect("joins and transactions");
        assert_eq!(
            s.events[1].node_tx(),
            Some(crate::operator::NodeTx::Stake {
                subnet: 1,
                amount: 5
            })
        );
        assert_eq!(s.events[0].node_tx(), None);
        for (body, says) in [
            (
                event("1s", "action = \"join\"\nnode = \"v3\""),
                "\"v2\" here",
            ),
            (
                event("1s", "action = \"join\"\nnode = \"m1\""),
                "\"m2\" here",
            ),
            // The node exists only from its join on.
            (
                format!(
                    "{}{}",
                    event("2s", "action = \"join\"\nnode = \"v2\""),
                    event("1s", "action = \"declare\"\nnode = \"v2\"")
                ),
                "no node \"v2\"",
            ),
            (
                event("1s", "action = \"stake\"\nnode = \"v1\""),
                "stake needs an amount",
            ),
            (
                event(
                    "1s",
                    "action = \"declare\"\nnode = \"v1\"\ncoldkey = \"v9\"",
                ),
                "no node \"v9\"",
            ),
            (
                event("1s", "action = \"kill\"\nnode = \"v1\"\namount = 3"),
                "belong to transaction events",
            ),
        ] {
            let err = Scenario::parse("t.toml", &format!("{head}{body}")).unwrap_err();
            assert!(err.message.contains(says), "{body}: {err}");
        }
    }

    #[test]
    fn attack_and_load_events_need_their_fields() {
        let head = "name = \"t\"\nvalidators = 1\n[[events]]\nat = \"1s\"\nnode = \"v0\"\n";
        let ok = Scenario::parse(
            "t.toml",
            &format!("{head}action = \"load\"\nclients = 8\nplane = \"p2p\"\nduration = \"2s\"\n"),
        )
        .expect("a load");
        assert_eq!(ok.events[0].clients, Some(8));
        assert_eq!(ok.events[0].plane, Some(crate::load::Plane::P2p));
        let ok = Scenario::parse(
            "t.toml",
            &format!("{head}action = \"attack\"\nattack = \"fake-ads\"\nduration = \"2s\"\n"),
        )
        .expect("an attack");
        assert_eq!(ok.events[0].attack, Some(crate::hostile::Attack::FakeAds));
        for (body, says) in [
            (
                "action = \"load\"\nduration = \"2s\"\n",
                "load needs clients",
            ),
            (
                "action = \"attack\"\nduration = \"2s\"\n",
                "attack needs attack",
            ),
            ("action = \"kill\"\nclients = 3\n", "belong to load events"),
            (
                "action = \"kill\"\ncount = 3\n",
                "belong to attack and load events",
            ),
        ] {
            let err = Scenario::parse("t.toml", &format!("{head}{body}")).unwrap_err();
            assert!(err.message.contains(says), "{body}: {err}");
        }
        let err = Scenario::parse(
            "t.toml",
            &format!("{head}action = \"attack\"\nattack = \"teleport\"\nduration = \"2s\"\n"),
        )
        .unwrap_err();
        assert!(err.message.contains("teleport"), "{err}");
    }
}
