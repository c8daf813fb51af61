//! `up`, `status`, `kill`, `restart`, `pause`, `resume`, `logs` and `down` on a small testnet.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

fn ok(dir: &Path, args: &[&str]) -> String {
    let output = common::testnet()
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("run meshmind-testnet");
    assert!(
        output.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `meshmind` with `args`, which must succeed; returns what it printed.
fn meshmind(args: &[&str]) -> String {
    let output = std::process::Command::new(common::meshmind())
        .args(args)
        .output()
        .expect("run meshmind");
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The public key (hex) in the key file at `path`.
fn public_key(path: &Path) -> String {
    let shown = meshmind(&["keys", "show", path.to_str().expect("utf-8"), "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
    shown["public_key"].as_str().expect("a key").to_string()
}

fn node(dir: &Path, name: &str) -> serde_json::Value {
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&ok(dir, &["status", "--json"])).expect("status JSON");
    rows.into_iter()
        .find(|r| r["name"] == name)
        .expect("the node")
}

/// Two validators and a miner with half-second epochs, on free ports.
const UP_SMALL: [&str; 9] = [
    "up",
    "--validators",
    "2",
    "--miners",
    "1",
    "--epoch-ms",
    "500",
    "--base-port",
    "0",
];

/// A healthy [`UP_SMALL`] testnet in a temporary folder, taken down (then removed) when dropped.
struct Small {
    _down: common::DownOnDrop,
    _tmp: tempfile::TempDir,
    /// The testnet's folder.
    dir: std::path::PathBuf,
    /// v0's API, e.g. `http://127.0.0.1:7410`.
    api: String,
}

fn up_small() -> Small {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("net");
    let down = common::DownOnDrop(dir.clone());
    let out = ok(&dir, &UP_SMALL);
    assert!(out.contains("3/3 healthy"), "{out}");
    let api = format!("http://{}", node(&dir, "v0")["api"].as_str().expect("api"));
    Small {
        _down: down,
        _tmp: tmp,
        dir,
        api,
    }
}

/// Reads with `read` until `check` holds for what it read, for at most `limit`.
fn poll<T: std::fmt::Debug>(
    limit: Duration,
    what: &str,
    read: impl Fn() -> T,
    check: impl Fn(&T) -> bool,
) {
    let start = Instant::now();
    loop {
        let seen = read();
        if check(&seen) {
            return;
        }
        assert!(start.elapsed() < limit, "never {what}: {seen:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait(dir: &Path, name: &str, what: &str, check: impl Fn(&serde_json::Value) -> bool) {
    let what = format!("{name} {what}");
    poll(Duration::from_secs(30), &what, || node(dir, name), check);
}

#[test]
fn up_break_and_down() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("net");
    let _down = common::DownOnDrop(dir.clone());
    let out = ok(&dir, &UP_SMALL);
    assert!(out.contains("3/3 healthy"), "{out}");
    assert!(out.contains("v1    validator  running"), "{out}");

    wait(&dir, "v1", "finalized an epoch", |r| {
        r["finalized_epoch"].as_u64().is_some()
    });

    ok(&dir, &["kill", "m1"]);
    wait(&dir, "m1", "exited", |r| {
        r["process"] == "exited" && r["healthy"] == false
    });
    ok(&dir, &["restart", "m1"]);
    wait(&dir, "m1", "came back", |r| r["healthy"] == true);

    ok(&dir, &["pause", "v1"]);
    wait(&dir, "v1", "paused", |r| {
        r["process"] == "paused" && r["healthy"] == false
    });
    ok(&dir, &["resume", "v1"]);
    wait(&dir, "v1", "resumed", |r| r["healthy"] == true);

    let logs = ok(&dir, &["logs", "v0"]);
    assert!(logs.contains("node started"), "{logs}");

    let down = ok(&dir, &["down", "--purge"]);
    assert!(down.contains("stopped 3 node(s)"), "{down}");
    assert!(!dir.exists());
}

/// The quotas a miner gives its callers, from `meshmind status`: (caller, stake, rate), and the
/// capacity they share.
fn quotas(api: &str) -> (Vec<(String, u64, u32)>, u32) {
    let output = meshmind(&["status", "--api", &format!("http://{api}")]);
    let status: serde_json::Value = serde_json::from_str(&output).expect("a status");
    let quotas = &status["quotas"];
    let callers = quotas["callers"]
        .as_array()
        .expect("a miner shows its quotas")
        .iter()
        .map(|q| {
            let caller = q["caller"].as_str().expect("caller").to_string();
            let stake = q["stake"].as_u64().expect("stake");
            (caller, stake, q["rate"].as_u64().expect("rate") as u32)
        })
        .collect();
    (
        callers,
        quotas["capacity"].as_u64().expect("capacity") as u32,
    )
}

/// Waits (at most 60 s) until the validators' quotas at the miner `api` satisfy `check`.
fn quotas_when(api: &str, what: &str, check: impl Fn(&[(String, u64, u32)]) -> bool) {
    let validators = || {
        let (callers, _) = quotas(api);
        callers.into_iter().filter(|c| c.1 > 0).collect::<Vec<_>>()
    };
    poll(Duration::from_secs(60), what, validators, |v| check(v));
}

/// A miner shares its capacity between the subnet's validators by stake, read from the finalized
/// chain: when one validator's owner stakes more on it, the miner's view takes the stake in at a
/// finalized epoch after the transaction and the shares follow.
#[test]
fn a_miners_quotas_follow_the_validators_stake() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("net");
    let _down = common::DownOnDrop(dir.clone());
    ok(&dir, &UP_SMALL);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("testnet.json")).expect("manifest"))
            .expect("manifest JSON");
    let entry = |name: &str| {
        manifest["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|n| n["name"] == name)
            .expect("the node")
            .clone()
    };
    let (v1, m1) = (entry("v1"), entry("m1"));
    let m1_api = m1["api"].as_str().expect("api").to_string();
    let v1_api = format!("http://{}", v1["api"].as_str().expect("api"));
    let v1_dir = Path::new(v1["data_dir"].as_str().expect("data dir")).to_path_buf();
    let run = meshmind;
    let (v1_hotkey, v1_coldkey) = (
        public_key(&v1_dir.join("hotkey.json")),
        public_key(&v1_dir.join("coldkey.json")),
    );

    // Both validators set weights and share the capacity by stake.
    let (_, capacity) = quotas(&m1_api);
    let by_stake = |validators: &[(String, u64, u32)]| {
        let total: u64 = validators.iter().map(|v| v.1).sum();
        validators.len() == 2
            && validators.iter().all(|(_, stake, rate)| {
                let share = u128::from(capacity) * u128::from(*stake) / u128::from(total);
                u128::from(*rate) == share.max(1)
            })
    };
    quotas_when(&m1_api, "two validators sharing by stake", by_stake);
    let before: u64 = quotas(&m1_api)
        .0
        .iter()
        .find(|c| c.0 == v1_hotkey)
        .map(|c| c.1)
        .expect("v1's quota");

    // v1's owner stakes half its free balance on it.
    let account = run(&["account", "show", &v1_coldkey, "--api", &v1_api]);
    let account: serde_json::Value = serde_json::from_str(&account).expect("an account");
    let amount = (account["balance"].as_u64().expect("a balance") / 2).to_string();
    let coldkey = v1_dir.join("coldkey.json");
    run(&[
        "tx",
        "stake",
        "--coldkey",
        coldkey.to_str().expect("utf-8"),
        "--api",
        &v1_api,
        "--hotkey",
        &v1_hotkey,
        "--subnet",
        "1",
        "--amount",
        &amount,
        "--wait",
    ]);
    // The miner's view takes the new stake in, and the quotas follow it. (How v1's share compares
    // with v0's then depends on the dividends each earned meanwhile, not on the miner.)
    let staked: u64 = amount.parse().expect("a number");
    quotas_when(&m1_api, "v1's quota grown by its stake", |validators| {
        by_stake(validators)
            && validators
                .iter()
                .any(|(key, stake, _)| *key == v1_hotkey && *stake >= before + staked)
    });

    ok(&dir, &["down", "--purge"]);
}

/// Two validators validate two subnets at once: each finalized snapshot carries both validators'
/// vectors for both subnets, the miners of both earn, and a query is routed by its subnet (one
/// not validated here is refused with its reason).
#[test]
fn validators_validate_every_subnet() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("net");
    let _down = common::DownOnDrop(dir.clone());
    let out = ok(
        &dir,
        &[
            "up",
            "--validators",
            "2",
            "--miners",
            "2",
            "--subnets",
            "2",
            "--epoch-ms",
            "500",
            "--base-port",
            "0",
        ],
    );
    assert!(out.contains("4/4 healthy"), "{out}");
    let v0 = node(&dir, "v0");
    assert_eq!(v0["subnets"], serde_json::json!([1, 2]), "{v0}");
    assert_eq!(node(&dir, "m2")["subnets"], serde_json::json!([2]));
    let api = v0["api"].as_str().expect("api").to_string();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let client = meshmind_node::api::client::ApiClient::new(&api).expect("a client");

    // Both miners earn on their own subnet, from both validators' revealed vectors.
    let earned = |subnet: u32| {
        let metagraph = runtime
            .block_on(client.metagraph(subnet))
            .expect("a metagraph");
        let chain = metagraph.chain.expect("the finalized metagraph");
        chain
            .neurons
            .iter()
            .map(|n| (n.stake, n.incentive))
            .collect::<Vec<_>>()
    };
    for subnet in [1, 2] {
        poll(
            Duration::from_secs(60),
            &format!("the miner of subnet {subnet} earning"),
            || earned(subnet),
            |miners| {
                miners
                    .iter()
                    .any(|&(stake, incentive)| stake > 0 && incentive > 0)
            },
        );
    }
    let finalized = node(&dir, "v0")["finalized_epoch"]
        .as_u64()
        .expect("a finalized epoch");
    let carried = |epoch: u64| {
        let snapshot = runtime
            .block_on(client.snapshot(epoch))
            .expect("a snapshot");
        let mut pairs: Vec<(u32, String)> = snapshot
            .weights
            .iter()
            .map(|w| (w.subnet, w.validator.clone()))
            .collect();
        pairs.sort();
        pairs
    };
    let full = (finalized.saturating_sub(5)..=finalized)
        .map(carried)
        .find(|pairs| pairs.len() == 4);
    let pairs = full.unwrap_or_else(|| panic!("no recent snapshot carries 2 x 2 vectors"));
    assert_eq!(
        pairs.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![1, 1, 2, 2],
        "{pairs:?}"
    );

    // Queries go to the validator of their subnet.
    let query = |subnet: &str| {
        std::process::Command::new(common::meshmind())
            .args([
                "query",
                "--api",
                &format!("http://{api}"),
                "--subnet",
                subnet,
            ])
            .args(["--task", "sort", "--input", "pear apple fig"])
            .output()
            .expect("run meshmind")
    };
    let answered = query("2");
    let text = String::from_utf8_lossy(&answered.stdout);
    assert!(
        answered.status.success() && text.contains("apple fig pear"),
        "{answered:?}"
    );
    let refused = query("3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        !refused.status.success() && text.contains("subnet 3 is not validated here"),
        "{text}"
    );
}

/// Anyone can validate and finalize (four genesis validators and an outsider): a node that joins a
/// running network with new keys scores but
/// publishes no weights until its operator registers and stakes its hotkey; then it holds a
/// validator permit, its vectors enter finalized snapshots, and it earns dividends. Declared a
/// finalizer, it enters the set and votes; a genesis validator that undeclares
/// leaves the set; finality goes on throughout; a late node syncs from genesis across both changes
/// and every ledger agrees.
#[test]
fn an_outsider_validates_then_finalizes() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("net");
    let _down = common::DownOnDrop(dir.clone());
    // Four genesis validators and a miner, half-second epochs.
    ok(
        &dir,
        &[
            "up",
            "--validators",
            "4",
            "--miners",
            "1",
            "--epoch-ms",
            "500",
            "--base-port",
            "0",
        ],
    );
    let joined = ok(&dir, &["join"]);
    let name = joined
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(name, "v4", "{joined}");
    let hotkey = joined
        .split_whitespace()
        .skip_while(|w| *w != "hotkey")
        .nth(1)
        .map(|h| h.trim_end_matches(',').to_string())
        .unwrap_or_else(|| panic!("no hotkey in {joined}"));
    let v0 = node(&dir, "v0");
    let v2 = node(&dir, &name);
    assert_eq!(v2["role"], "validator", "{v2}");
    let api = format!("http://{}", v0["api"].as_str().expect("api"));
    let data = |name: &str| dir.join(name);
    let log = || std::fs::read_to_string(data(&name).join("node.log")).unwrap_or_default();
    poll(
        Duration::from_secs(30),
        "the outsider saying it has no permit",
        log,
        |text| text.contains("no validator permit on the subnet"),
    );
    let run = |args: &[&str]| {
        meshmind(args);
    };
    // `meshmind status` tells the operator where the node's hotkey stands.
    let v2_api = format!("http://{}", v2["api"].as_str().expect("api"));
    let where_it_stands = || {
        let status = meshmind(&["status", "--api", &v2_api]);
        let status: serde_json::Value = serde_json::from_str(&status).expect("a status");
        status["standing"]["summary"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let now = where_it_stands();
    assert!(
        now.contains("registered on no subnet") && now.contains("not a declared finalizer"),
        "{now}"
    );
    let funder = data("v0").join("coldkey.json");
    let funder = funder.to_str().expect("utf-8");
    let v2_hotkey = data(&name).join("hotkey.json");
    run(&[
        "tx",
        "register",
        "--api",
        &api,
        "--coldkey",
        funder,
        "--hotkey",
        v2_hotkey.to_str().expect("utf-8"),
        "--subnet",
        "1",
        "--wait",
    ]);
    run(&[
        "tx",
        "stake",
        "--api",
        &api,
        "--coldkey",
        funder,
        "--hotkey",
        &hotkey,
        "--subnet",
        "1",
        "--amount",
        "100000000",
        "--wait",
    ]);

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let client = meshmind_node::api::client::ApiClient::new(v0["api"].as_str().expect("api"))
        .expect("a client");
    let standing = || {
        let metagraph = runtime.block_on(client.metagraph(1)).expect("a metagraph");
        let chain = metagraph.chain.expect("the finalized metagraph");
        chain
            .neurons
            .into_iter()
            .find(|n| n.hotkey == hotkey)
            .map(|n| (n.validator_permit, n.dividends, n.stake))
    };
    poll(
        Duration::from_secs(60),
        "the outsider holding a permit and earning dividends",
        standing,
        |s| matches!(s, Some((true, dividends, _)) if *dividends > 0),
    );
    let finalized = node(&dir, "v0")["finalized_epoch"]
        .as_u64()
        .expect("a finalized epoch");
    let carries = (finalized.saturating_sub(5)..=finalized).any(|epoch| {
        let snapshot = runtime
            .block_on(client.snapshot(epoch))
            .expect("a snapshot");
        snapshot.weights.iter().any(|w| w.validator == hotkey)
    });
    assert!(carries, "no recent snapshot carries the outsider's vector");
    assert!(log().contains("validator permit held"), "{}", log());

    // Declared a finalizer, the outsider joins the set at the next epoch and signs certificates.
    run(&[
        "tx",
        "declare-finalizer",
        "--api",
        &api,
        "--coldkey",
        funder,
        "--hotkey",
        v2_hotkey.to_str().expect("utf-8"),
        "--wait",
    ]);
    wait(&dir, &name, "voting", |r| r["voting"] == true);
    let finalized = || node(&dir, "v0")["finalized_epoch"].as_u64().unwrap_or(0);
    let from = finalized();
    poll(
        Duration::from_secs(30),
        "finality going on",
        finalized,
        |&e| e >= from + 3,
    );
    let in_set = |hotkey: &str| {
        let snapshot = runtime
            .block_on(client.snapshot(finalized()))
            .expect("a snapshot");
        snapshot.next_validators.iter().any(|v| v.hotkey == hotkey)
    };
    assert!(
        in_set(&hotkey),
        "the outsider is in the set the head hands over to"
    );
    // It says since when: the permit from an epoch after it staked, the seat from one after it
    // declared, and never before it joined.
    let now = where_it_stands();
    let since = |what: &str| {
        now.split(what)
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {what:?} in {now:?}"))
    };
    assert!(now.contains("registered on subnet 1 (uid"), "{now}");
    let (permit, seat) = (
        since("validator permit from epoch "),
        since("finalizer from epoch "),
    );
    assert!(
        permit > 0 && seat > permit && now.contains(", in the next set"),
        "{now}"
    );

    // A genesis validator undeclares and leaves the set; the others go on.
    let v1_keys = data("v1");
    let v1_hotkey = public_key(&v1_keys.join("hotkey.json"));
    run(&[
        "tx",
        "undeclare-finalizer",
        "--api",
        &api,
        "--coldkey",
        v1_keys.join("coldkey.json").to_str().expect("utf-8"),
        "--hotkey",
        &v1_hotkey,
        "--wait",
    ]);
    let economy = runtime.block_on(client.economy()).expect("the economy");
    let v1_entry = economy
        .finalizers
        .iter()
        .find(|f| f.hotkey == v1_hotkey)
        .expect("v1 is still listed while its stake unbonds");
    assert!(!v1_entry.declared && !v1_entry.in_next_set, "{v1_entry:?}");
    let from = finalized();
    poll(
        Duration::from_secs(30),
        "finality going on without v1",
        finalized,
        |&e| e >= from + 3,
    );
    wait(&dir, "v1", "out of the set", |r| r["voting"] == false);
    assert!(
        !in_set(&v1_hotkey) && in_set(&hotkey),
        "v1 out, the outsider in"
    );

    // A late node syncs from genesis across both changes, and every ledger agrees.
    let late = ok(&dir, &["join"]);
    let late = late
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let target = finalized();
    let late_api = node(&dir, &late)["api"].as_str().expect("api").to_string();
    let late_client = meshmind_node::api::client::ApiClient::new(&late_api).expect("a client");
    poll(
        Duration::from_secs(60),
        "the late node catching up",
        || node(&dir, &late)["finalized_epoch"].as_u64().unwrap_or(0),
        |&e| e >= target,
    );
    let validators: Vec<String> = ["v0", "v1", "v2", "v3", name.as_str(), late.as_str()]
        .iter()
        .map(|n| node(&dir, n)["api"].as_str().expect("api").to_string())
        .collect();
    for epoch in [1, target / 2, target] {
        let hashes: Vec<String> = validators
            .iter()
            .map(|api| {
                let client = meshmind_node::api::client::ApiClient::new(api).expect("a client");
                runtime
                    .block_on(client.snapshot(epoch))
                    .map(|s| s.hash)
                    .unwrap_or_else(|e| panic!("{api} epoch {epoch}: {e}"))
            })
            .collect();
        assert!(
            hashes.iter().all(|h| *h == hashes[0]),
            "epoch {epoch}: {hashes:?}"
        );
    }
    let synced = runtime
        .block_on(late_client.snapshot(target))
        .expect("the late node's snapshot");
    assert!(synced.next_validators.iter().any(|v| v.hotkey == hotkey));
}

/// A subnet created while the network runs is taken up without a restart: every validator
/// follows its topics and validates it once it holds a permit there, its miner is scored (its
/// incentive from Yuma over both vectors), and the snapshots carry both validators' vectors for
/// it. (Its emission share follows the stake on it, which this test keeps small.)
#[test]
fn a_subnet_created_later_is_validated_without_a_restart() {
    let small = up_small();
    let (dir, api) = (small.dir.clone(), small.api.clone());
    assert_eq!(node(&dir, "v0")["subnets"], serde_json::json!([1]));
    let data = |name: &str| dir.join(name);
    let key = |name: &str, file: &str| data(name).join(file).to_str().expect("utf-8").to_string();
    let tx = |args: &[&str], coldkey: &str| {
        let mut all = vec!["tx"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--api", &api, "--coldkey", coldkey, "--wait"]);
        meshmind(&all)
    };

    // An owner creates subnet 2; a new miner serves it.
    tx(
        &["create-subnet", "--name", "late", "--tasks", "sort"],
        &key("v0", "coldkey.json"),
    );
    let joined = ok(&dir, &["join", "--role", "miner"]);
    let miner = joined
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let config_path = data(&miner).join("config.toml");
    let mut config = meshmind_node::config::NodeConfig::load(&config_path).expect("config");
    config.miner.subnet = 2;
    config.miner.tasks = vec!["sort".into()];
    std::fs::write(&config_path, config.to_toml()).expect("write config");
    ok(&dir, &["restart", &miner]);
    // The miner and both validators register there; the validators stake for a permit.
    tx(
        &[
            "register",
            "--hotkey",
            &key(&miner, "hotkey.json"),
            "--subnet",
            "2",
        ],
        &key("v0", "coldkey.json"),
    );
    for v in ["v0", "v1"] {
        tx(
            &[
                "register",
                "--hotkey",
                &key(v, "hotkey.json"),
                "--subnet",
                "2",
            ],
            &key(v, "coldkey.json"),
        );
        let hotkey = public_key(&data(v).join("hotkey.json"));
        tx(
            &[
                "stake", "--hotkey", &hotkey, "--subnet", "2", "--amount", "1000000",
            ],
            &key(v, "coldkey.json"),
        );
    }

    // `meshmind subnet` shows it with its neurons, permits and stake.
    let listed: serde_json::Value =
        serde_json::from_str(&meshmind(&["subnet", "list", "--api", &api])).expect("JSON");
    let late = listed
        .as_array()
        .and_then(|all| all.iter().find(|s| s["id"] == 2))
        .unwrap_or_else(|| panic!("no subnet 2 in {listed}"));
    assert_eq!(late["name"], "late", "{late}");
    assert_eq!(late["tasks"], serde_json::json!(["sort"]), "{late}");
    let shown: serde_json::Value =
        serde_json::from_str(&meshmind(&["subnet", "show", "2", "--api", &api])).expect("JSON");
    assert!(
        shown["neurons"] == 3
            && shown["permits"].as_u64() >= Some(2)
            && shown["stake"].as_u64() >= Some(2_000_000),
        "{shown}"
    );

    // Both validators took the subnet up (no restart), and their vectors for it are finalized.
    for v in ["v0", "v1"] {
        wait(&dir, v, "validating subnet 2", |n| {
            n["subnets"] == serde_json::json!([1, 2])
        });
    }
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let client = meshmind_node::api::client::ApiClient::new(&api).expect("a client");
    let vectors_on_2 = || {
        let head = node(&dir, "v0")["finalized_epoch"].as_u64().unwrap_or(0);
        (head.saturating_sub(3)..=head)
            .filter_map(|e| runtime.block_on(client.snapshot(e)).ok())
            .map(|s| s.weights.iter().filter(|w| w.subnet == 2).count())
            .max()
            .unwrap_or(0)
    };
    poll(
        Duration::from_secs(60),
        "a snapshot carrying both validators' vectors for subnet 2",
        vectors_on_2,
        |n| *n == 2,
    );
    let miner_hotkey = public_key(&data(&miner).join("hotkey.json"));
    poll(
        Duration::from_secs(60),
        "the new subnet's miner ranked by both validators' weights",
        || {
            runtime
                .block_on(client.metagraph(2))
                .ok()
                .and_then(|m| m.chain)
                .and_then(|c| c.neurons.into_iter().find(|n| n.hotkey == miner_hotkey))
                .map(|n| n.incentive)
        },
        |seen| seen.is_some_and(|incentive| incentive > 0),
    );
}

/// Stake behind `hotkey` on subnet 1 by coldkey, and the epoch, from `/delegates/<hotkey>`.
fn stakes_behind(
    runtime: &tokio::runtime::Runtime,
    client: &meshmind_node::api::client::ApiClient,
    hotkey: &str,
) -> Option<(u64, std::collections::BTreeMap<String, u64>)> {
    let view = runtime.block_on(client.delegate(hotkey)).ok()?;
    let stakes = view
        .stakes
        .iter()
        .filter(|s| s.subnet == 1)
        .map(|s| (s.coldkey.clone(), s.amount))
        .collect();
    Some((view.epoch, stakes))
}

/// The nominator's part of one epoch's dividends of `hotkey` (what its stake grew by over what
/// both stakes grew by), against what a take of `take` per mille leaves it: (seen, expected).
fn nominator_part(
    runtime: &tokio::runtime::Runtime,
    client: &meshmind_node::api::client::ApiClient,
    hotkey: &str,
    (owner, nominator): (&str, &str),
    take: u64,
) -> (f64, f64) {
    let start = Instant::now();
    let mut last: Option<(u64, std::collections::BTreeMap<String, u64>)> = None;
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no epoch with dividends seen: {last:?}"
        );
        let now = stakes_behind(runtime, client, hotkey);
        if let (Some((e0, before)), Some((e1, after))) = (&last, &now)
            && *e1 == e0 + 1
        {
            let at = |m: &std::collections::BTreeMap<String, u64>, k: &str| {
                m.get(k).copied().unwrap_or(0) as f64
            };
            let grown_n = at(after, nominator) - at(before, nominator);
            let grown_o = at(after, owner) - at(before, owner);
            if grown_n + grown_o > 0.0 {
                let (s_n, s_o) = (at(before, nominator), at(before, owner));
                let seen = grown_n / (grown_n + grown_o);
                let expected = (1000 - take) as f64 / 1000.0 * s_n / (s_n + s_o);
                return (seen, expected);
            }
        }
        if now.as_ref().map(|n| n.0) != last.as_ref().map(|l| l.0) {
            last = now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A subnet's owner changes its kappa and tempo on a live testnet: the subnet shows them, and
/// from the next epoch Yuma runs on it every third epoch only; a stranger's change is refused.
/// A validator cuts its take to 0 and, once the rate limit lets it, raises it to 180 per mille:
/// its nominator's stake grows by its share of the dividends, then by 82 % of it.
#[test]
fn an_owner_tunes_its_subnet_and_a_validators_take_sets_what_its_nominators_earn() {
    let small = up_small();
    let (dir, api) = (small.dir.clone(), small.api.clone());
    let key = |name: &str, file: &str| {
        dir.join(name)
            .join(file)
            .to_str()
            .expect("utf-8")
            .to_string()
    };
    let with_common = |args: &[&str], coldkey: &str| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--api", &api, "--coldkey", coldkey, "--wait"]);
        all.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        meshmind(&refs)
    };
    let (owner, stranger) = (key("v0", "coldkey.json"), key("v1", "coldkey.json"));
    let v0_hotkey = public_key(&dir.join("v0").join("hotkey.json"));

    // v0's coldkey creates subnet 2 and registers its hotkey there, so Yuma runs on it.
    run(with_common(
        &["tx", "create-subnet", "--name", "tuned", "--tasks", "sort"],
        &owner,
    ));
    run(with_common(
        &[
            "tx",
            "register",
            "--hotkey",
            &key("v0", "hotkey.json"),
            "--subnet",
            "2",
        ],
        &owner,
    ));
    // A stranger may not tune it.
    let refused = std::process::Command::new(common::meshmind())
        .args(with_common(&["subnet", "set", "2", "tempo=2"], &stranger))
        .output()
        .expect("run meshmind");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("does not own"),
        "{refused:?}"
    );
    // The owner sets kappa and tempo.
    run(with_common(
        &["subnet", "set", "2", "kappa=40000", "tempo=3"],
        &owner,
    ));
    let shown: serde_json::Value =
        serde_json::from_str(&meshmind(&["subnet", "show", "2", "--api", &api])).expect("JSON");
    let param = |name: &str| {
        shown["params"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {shown}"))
    };
    let changed_at = shown["params_changed_at"].as_u64().expect("changed");
    for (name, value, max) in [("kappa", 40_000, 65_535), ("tempo", 3, 1_000)] {
        let p = param(name);
        assert_eq!(p["value"], value, "{p}");
        assert_eq!(p["max"], max, "{p}");
        assert_eq!(p["changed_at"], changed_at, "{p}");
    }
    assert!(
        shown["params_open_from"].as_u64() > Some(changed_at),
        "{shown}"
    );
    // From the epoch after the change, snapshots carry subnet 2's results every third epoch.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let client = meshmind_node::api::client::ApiClient::new(&api).expect("a client");
    let last = changed_at + 9;
    poll(
        Duration::from_secs(60),
        "nine finalized epochs after the change",
        || node(&dir, "v0")["finalized_epoch"].as_u64().unwrap_or(0),
        |head| *head >= last,
    );
    let ran: Vec<(u64, bool)> = (changed_at + 1..=last)
        .map(|e| {
            let snapshot = runtime.block_on(client.snapshot(e)).expect("a snapshot");
            (e, snapshot.results.iter().any(|r| r.subnet == 2))
        })
        .collect();
    for &(e, on_2) in &ran {
        assert_eq!(on_2, (e + 1) % 3 == 0, "epoch {e}: {ran:?}");
    }

    // v1's coldkey nominates v0's hotkey on subnet 1.
    run(with_common(
        &[
            "tx",
            "stake",
            "--hotkey",
            &v0_hotkey,
            "--subnet",
            "1",
            "--amount",
            "500000000",
        ],
        &stranger,
    ));
    let owner_hex = public_key(&dir.join("v0").join("coldkey.json"));
    let nominator_hex = public_key(&dir.join("v1").join("coldkey.json"));
    let coldkeys = (owner_hex.as_str(), nominator_hex.as_str());
    for take in [0u64, 180] {
        // A raise waits take_rate_limit epochs (10 on a testnet) after the last change.
        poll(
            Duration::from_secs(30),
            "the take free to rise",
            || runtime.block_on(client.delegate(&v0_hotkey)).ok(),
            |d| {
                d.as_ref()
                    .is_some_and(|d| take == 0 || d.epoch >= d.next_raise_from)
            },
        );
        run(with_common(
            &["delegate", "set-take", &v0_hotkey, &take.to_string()],
            &owner,
        ));
        let shown: serde_json::Value =
            serde_json::from_str(&meshmind(&["delegate", "show", &v0_hotkey, "--api", &api]))
                .expect("JSON");
        assert_eq!(shown["take_per_mille"], take, "{shown}");
        assert_eq!(shown["nominators"], 1, "{shown}");
        let (seen, expected) = nominator_part(&runtime, &client, &v0_hotkey, coldkeys, take);
        assert!(
            (seen / expected - 1.0).abs() < 0.02,
            "take {take}: the nominator got {seen:.4} of the dividends, {expected:.4} expected"
        );
        eprintln!(
            "take {take}: the nominator got {seen:.4} of the dividends ({expected:.4} expected)"
        );
    }
    let listed: serde_json::Value =
        serde_json::from_str(&meshmind(&["delegate", "list", "--api", &api])).expect("JSON");
    let v0_listed = listed
        .as_array()
        .and_then(|all| all.iter().find(|d| d["hotkey"] == v0_hotkey.as_str()))
        .unwrap_or_else(|| panic!("v0 not among {listed}"));
    assert!(
        v0_listed["return_per_1000"].as_f64() > Some(0.0),
        "{v0_listed}"
    );
    let account: serde_json::Value = serde_json::from_str(&meshmind(&[
        "account",
        "show",
        &nominator_hex,
        "--api",
        &api,
    ]))
    .expect("JSON");
    let delegation = &account["delegations"][0];
    assert_eq!(delegation["hotkey"], v0_hotkey.as_str(), "{account}");
    assert_eq!(delegation["take_per_mille"], 180, "{account}");
}
