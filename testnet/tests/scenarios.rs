//! The shipped scenarios, played with real `meshmind` processes on 127.0.0.1.

mod common;

use std::path::Path;

/// Scenarios run one at a time: each starts up to a dozen processes on a small machine, and their
/// assertions are about timing.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn play(name: &str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    let net = dir.path().join(name);
    let output = common::testnet()
        .arg("run")
        .arg(&scenario)
        .arg("--dir")
        .arg(&net)
        .output()
        .expect("run meshmind-testnet");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "scenario {name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("ok     all ledgers agree") || name == "bad-miners",
        "{stdout}"
    );
    let report = net.join("report");
    let md = std::fs::read_to_string(report.join("report.md")).expect("report.md");
    assert!(md.contains(": PASSED"), "{md}");
    let html = std::fs::read_to_string(report.join("report.html")).expect("report.html");
    assert!(
        html.contains("PASSED</span>")
            && html.contains("<svg")
            && html.contains("<h2>Assertions</h2>"),
        "{html}"
    );
    for plot in ["finality.svg", "queries.svg"] {
        let svg = std::fs::read_to_string(report.join(plot)).expect("plot");
        assert!(svg.starts_with("<svg"), "{plot}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("report.json")).expect("json"))
            .expect("JSON report");
    assert_eq!(json["passed"], true);
    // The run stopped every node it started.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(net.join("testnet.json")).expect("manifest"))
            .expect("manifest JSON");
    assert!(
        manifest["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .all(|n| n["pid"].is_null()),
        "{manifest}"
    );
}

#[test]
fn smoke() {
    play("smoke");
}

#[test]
fn crash_restart() {
    play("crash-restart");
}

#[test]
fn partition() {
    play("partition");
}

#[test]
fn partition_by_link_state_in_network_namespaces() {
    if let Err(reason) = meshmind_testnet::netns::available() {
        println!("skipped: {reason}");
        return;
    }
    let before = namespaces();
    play("partition-netns");
    assert_eq!(namespaces(), before, "every namespace the run made is gone");
}

fn namespaces() -> String {
    let output = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn byzantine() {
    play("byzantine");
}

#[test]
fn validator_churn() {
    play("validator-churn");
}

#[test]
fn hostile() {
    play("hostile");
}

#[test]
fn bad_miners() {
    play("bad-miners");
}

#[test]
fn load() {
    play("load");
}

/// Needs the embedding model (`scripts/fetch-model.sh`).
#[test]
fn embeddings() {
    play("embeddings");
}

/// Every scenario shipped in `scenarios/` is played by a test of this file.
#[test]
fn every_shipped_scenario_is_played() {
    // Read from this file's own tests, so a name counts only where a test plays it.
    let source = include_str!("scenarios.rs");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut unplayed = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("scenarios dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let name = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        if !source.contains(&format!("play(\"{name}\");")) {
            unplayed.push(name);
        }
    }
    assert!(
        unplayed.is_empty(),
        "shipped scenarios no test plays: {unplayed:?}"
    );
}

#[test]
fn a_failing_assertion_exits_1_and_says_what_it_saw() {
    // It starts a node too: not beside another scenario's (their ports could meet).
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("impossible.toml");
    std::fs::write(
        &scenario,
        "name = \"impossible\"\nvalidators = 1\nepoch_ms = 500\n\
         asserts = [\"finalized_epoch >= 1000 within 2s\"]\n",
    )
    .expect("write");
    let output = common::testnet()
        .arg("run")
        .arg(&scenario)
        .arg("--dir")
        .arg(dir.path().join("net"))
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("FAILED finalized_epoch >= 1000 within 2s: finalized epochs: v0="),
        "{stdout}"
    );
}

#[test]
fn a_malformed_scenario_names_line_and_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("bad.toml");
    std::fs::write(&scenario, "name = \"bad\"\nvalidators = -1\n").expect("write");
    let output = common::testnet()
        .arg("run")
        .arg(&scenario)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.toml: line 2, column 14"), "{stderr}");
}
