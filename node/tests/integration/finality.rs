//! Real `meshmind` validator processes on 127.0.0.1 finalizing epochs into their RocksDB ledgers:
//! agreement, a SIGKILLed validator catching up, no finality with half the stake down, and a
//! wiped validator rebuilding its ledger from its peers.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use meshmind_node::api::types::Status;

use crate::common::{Running, free_port, meshmind, ok, quic_listen, status};

const EPOCH_MS: u64 = 1000;

struct Validator {
    dir: PathBuf,
    api: String,
}

impl Validator {
    fn start(&self, bootnode: Option<&str>) -> Running {
        let mut command = meshmind();
        command.args(["run", "--data-dir", self.dir.to_str().expect("utf-8")]);
        if let Some(bootnode) = bootnode {
            command.args(["--bootnode", bootnode]);
        }
        Running(
            command
                .stdout(Stdio::null())
                .spawn()
                .expect("start validator"),
        )
    }

    fn status(&self) -> Status {
        status(&self.api, Duration::from_secs(30))
    }

    fn finalized(&self) -> Option<u64> {
        self.status().consensus.finalized_epoch
    }

    fn wait_finalized(&self, epoch: u64, limit: Duration) -> u64 {
        let start = Instant::now();
        loop {
            if let Some(head) = self.finalized().filter(|&h| h >= epoch) {
                return head;
            }
            assert!(
                start.elapsed() < limit,
                "{} did not finalize epoch {epoch} within {limit:?}: {:?}",
                self.api,
                self.status()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn hotkey(dir: &Path, file: &str) -> String {
    let shown = ok(&[
        "keys",
        "show",
        dir.join(file).to_str().expect("utf-8"),
        "--json",
    ]);
    let value: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
    value["public_key"].as_str().expect("key").to_string()
}

/// Four validators with equal stake, one genesis starting two seconds from now.
fn network(root: &Path) -> Vec<Validator> {
    network_starting(root, meshmind_node::clock::now_ms() + 2000)
}

/// The same with a genesis that starts at `genesis_time_ms`.
fn network_starting(root: &Path, genesis_time_ms: u64) -> Vec<Validator> {
    let validators: Vec<Validator> = (0..4)
        .map(|i| {
            let dir = root.join(format!("v{i}"));
            let api = format!("127.0.0.1:{}", free_port());
            ok(&[
                "init",
                "--role",
                "validator",
                "--data-dir",
                dir.to_str().expect("utf-8"),
                "--api-listen",
                &api,
            ]);
            Validator {
                dir,
                api: format!("http://{api}"),
            }
        })
        .collect();
    let mut genesis = format!(
        "network_name = \"finality-test\"\ngenesis_time_ms = {}\nepoch_ms = {EPOCH_MS}\n\n\
         [[subnets]]\nid = 1\nname = \"reference\"\ntasks = [\"arith\", \"sort\"]\n",
        genesis_time_ms
    );
    for v in &validators {
        genesis.push_str(&format!(
            "\n[[validators]]\nhotkey = \"{}\"\ncoldkey = \"{}\"\nstake = 100\n",
            hotkey(&v.dir, "hotkey.json"),
            hotkey(&v.dir, "coldkey.json"),
        ));
    }
    for v in &validators {
        std::fs::write(v.dir.join("genesis.toml"), &genesis).expect("genesis");
        let config = v.dir.join("config.toml");
        let text = std::fs::read_to_string(&config).expect("config");
        // Challenge (and publish weights) often enough to reveal every epoch.
        let text = text.replace(
            "challenge_interval_ms = 2000",
            "challenge_interval_ms = 200",
        );
        std::fs::write(&config, text).expect("config");
    }
    validators
}

fn snapshot_hash(v: &Validator, epoch: u64) -> String {
    let shown = ok(&[
        "ledger",
        "show",
        "--data-dir",
        v.dir.to_str().expect("utf-8"),
        &epoch.to_string(),
    ]);
    let value: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
    value["snapshot"]["hash"]
        .as_str()
        .expect("snapshot hash")
        .to_string()
}

#[test]
fn four_validators_finalize_survive_kills_and_rebuild_a_wiped_ledger() {
    let dir = tempfile::tempdir().expect("temp dir");
    let vs = network(dir.path());
    let mut running: Vec<Option<Running>> = Vec::new();
    running.push(Some(vs[0].start(None)));
    let boot = quic_listen(&vs[0].status());
    for v in &vs[1..] {
        running.push(Some(v.start(Some(&boot))));
    }

    // All four finalize ten epochs.
    for v in &vs {
        v.wait_finalized(9, Duration::from_secs(60));
    }

    // SIGKILL v3: the other three (3/4 of the stake) keep finalizing.
    drop(running[3].take());
    let before = vs[0].finalized().expect("a head");
    vs[0].wait_finalized(before + 3, Duration::from_secs(30));
    // Restarted, v3 replays its WAL and catches up by sync.
    running[3] = Some(vs[3].start(Some(&boot)));
    let target = vs[0].finalized().expect("a head");
    vs[3].wait_finalized(target, Duration::from_secs(30));

    // Half the stake down: no epoch finalizes.
    drop(running[2].take());
    drop(running[3].take());
    std::thread::sleep(Duration::from_millis(EPOCH_MS));
    let stalled = vs[0].finalized().expect("a head");
    std::thread::sleep(Duration::from_millis(4 * EPOCH_MS));
    // Seen, not assumed: the survivors are up and deciding the next epoch, without a quorum.
    for v in &vs[..2] {
        let consensus = v.status().consensus;
        assert_eq!(consensus.deciding_epoch, stalled + 1, "{consensus:?}");
        assert!(consensus.voting, "{consensus:?}");
    }
    assert_eq!(
        vs[0].finalized(),
        Some(stalled),
        "no finality with 2 of 4 validators down"
    );
    assert_eq!(vs[1].finalized(), Some(stalled));
    // Back: finality resumes, and the missed epochs are decided too.
    running[2] = Some(vs[2].start(Some(&boot)));
    running[3] = Some(vs[3].start(Some(&boot)));
    for v in &vs {
        v.wait_finalized(stalled + 3, Duration::from_secs(60));
    }

    // A wiped v3 rebuilds its ledger from its peers, verifying each certificate.
    drop(running[3].take());
    std::fs::remove_dir_all(vs[3].dir.join("ledger")).expect("wipe");
    running[3] = Some(vs[3].start(Some(&boot)));
    let target = vs[0].finalized().expect("a head");
    vs[3].wait_finalized(target, Duration::from_secs(60));

    // Stop everyone; every ledger verifies from genesis and all agree epoch by epoch.
    for r in running.iter_mut() {
        if let Some(r) = r.take() {
            assert!(r.terminate().success(), "a validator exits 0 on SIGTERM");
        }
    }
    let heads: Vec<u64> = vs
        .iter()
        .map(|v| {
            let out = ok(&[
                "ledger",
                "verify",
                "--data-dir",
                v.dir.to_str().expect("utf-8"),
            ]);
            assert!(out.starts_with("ok: "), "{out}");
            let shown = ok(&[
                "ledger",
                "show",
                "--data-dir",
                v.dir.to_str().expect("utf-8"),
            ]);
            let value: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
            value["head"].as_u64().expect("head")
        })
        .collect();
    let common_head = heads.iter().copied().min().expect("four heads");
    assert!(common_head >= 15, "heads {heads:?}");
    for epoch in 0..=common_head {
        let first = snapshot_hash(&vs[0], epoch);
        for v in &vs[1..] {
            assert_eq!(snapshot_hash(v, epoch), first, "epoch {epoch}");
        }
    }
}

/// A genesis far in the future (the last millisecond a u64 holds) is waited for, not a panic.
#[test]
fn a_genesis_far_in_the_future_is_waited_for() {
    let dir = tempfile::tempdir().expect("temp dir");
    let vs = network_starting(dir.path(), u64::MAX - 1);
    let log = dir.path().join("v0.log");
    let mut running = Running(
        meshmind()
            .args(["run", "--data-dir", vs[0].dir.to_str().expect("utf-8")])
            .env("MESHMIND_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start validator"),
    );
    let first = vs[0].status();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        running.0.try_wait().expect("wait").is_none(),
        "the node exited"
    );
    let later = vs[0].status();
    assert_eq!(first.consensus.finalized_epoch, None);
    assert_eq!(later.consensus.finalized_epoch, None);
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(!logged.contains("panicked"), "{logged}");
    assert!(
        logged.contains("ledger opened"),
        "consensus started: {logged}"
    );
}

/// The admin routes answer only on a loopback API and only to the bearer of the node's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_the_token_and_a_loopback_api() {
    use meshmind_node::api::client::{ApiClient, ClientError};
    let dir = tempfile::tempdir().expect("temp dir");
    let vs = network(dir.path());
    let config = vs[0].dir.join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let admin = text.replace("api_admin = false", "api_admin = true");
    assert_ne!(admin, text);
    std::fs::write(&config, admin).expect("config");
    let running = vs[0].start(None);
    let api = vs[0].api.clone();
    tokio::task::spawn_blocking(move || status(&api, Duration::from_secs(30)))
        .await
        .expect("status");
    let token_path = vs[0].dir.join("admin.token");
    let token = std::fs::read_to_string(&token_path).expect("a token was made");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_path)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "readable by its owner only: {mode:o}");
    }
    let peers = vec!["12D3KooWGjjAjxrJW3k8ULrbx7m4ZuuELEvPQD9KBCxThTNs7jJx".to_string()];
    for client in [
        ApiClient::new(&vs[0].api).expect("client"),
        ApiClient::new(&vs[0].api)
            .expect("client")
            .with_admin_token("not-the-token"),
    ] {
        match client.block_peers(peers.clone()).await {
            Err(ClientError::Api { status, .. }) => assert_eq!(status, 401),
            other => panic!("expected 401, got {other:?}"),
        }
    }
    ApiClient::new(&vs[0].api)
        .expect("client")
        .with_admin_token(token.trim())
        .block_peers(peers)
        .await
        .expect("the token opens the route");

    // On an address others can reach, the node refuses to serve them at all.
    drop(running);
    let text = std::fs::read_to_string(&config).expect("config");
    let open = text.replace("127.0.0.1:", "0.0.0.0:");
    assert_ne!(open, text);
    std::fs::write(&config, open).expect("config");
    let refused = meshmind()
        .args(["run", "--data-dir", vs[0].dir.to_str().expect("utf-8")])
        .output()
        .expect("run");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("loopback"),
        "{refused:?}"
    );
}
