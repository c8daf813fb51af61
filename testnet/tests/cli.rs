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

fn node(dir: &Path, name: &str) -> serde_json::Value {
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&ok(dir, &["status", "--json"])).expect("status JSON");
    rows.into_iter()
        .find(|r| r["name"] == name)
        .expect("the node")
}

fn wait(dir: &Path, name: &str, what: &str, check: impl Fn(&serde_json::Value) -> bool) {
    let start = Instant::now();
    loop {
        let row = node(dir, name);
        if check(&row) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name} never {what}: {row}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn up_break_and_down() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("net");
    let out = ok(
        &dir,
        &[
            "up",
            "--validators",
            "2",
            "--miners",
            "1",
            "--epoch-ms",
            "500",
            "--base-port",
            "0",
        ],
    );
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
