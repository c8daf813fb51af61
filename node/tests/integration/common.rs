//! Helpers for tests that run real `meshmind` processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use meshmind_node::api::client::ApiClient;
use meshmind_node::api::types::Status;
use serde::de::DeserializeOwned;

pub fn meshmind() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshmind"));
    command.env("MESHMIND_LOG", "warn");
    command
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs `meshmind` with `args` until it exits, returning stdout; panics on failure.
pub fn ok(args: &[&str]) -> String {
    let output = meshmind().args(args).output().expect("run meshmind");
    assert!(output.status.success(), "meshmind {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Polls `meshmind status` until it answers.
pub fn status(api: &str, limit: Duration) -> Status {
    let start = Instant::now();
    loop {
        let output = meshmind()
            .args(["status", "--api", api])
            .output()
            .expect("run meshmind");
        if output.status.success() {
            return serde_json::from_slice(&output.stdout).expect("a status");
        }
        assert!(start.elapsed() < limit, "no status from {api}: {output:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Kills the child on drop, so a failing test leaves no process behind.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `GET path` from the API at `api`, decoded as the route's type; panics on failure.
pub fn get<T: DeserializeOwned>(api: &str, path: &str) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let client = ApiClient::new(api).expect("an API address");
    runtime
        .block_on(client.get(path))
        .unwrap_or_else(|e| panic!("GET {api}{path}: {e}"))
}

/// The QUIC listen address in a node's status, to use as a bootnode.
pub fn quic_listen(status: &Status) -> String {
    status
        .listen
        .iter()
        .find(|a| a.contains("quic-v1"))
        .expect("a QUIC listen address")
        .clone()
}

/// The public key (hex) in the key file at `path`.
pub fn public_hex(path: &std::path::Path) -> String {
    let shown = ok(&["keys", "show", path.to_str().expect("utf-8"), "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
    shown["public_key"].as_str().expect("a key").to_string()
}

/// Generates a key of `kind` into `dir/name` with `meshmind keys generate`; its public key in hex.
pub fn new_key(dir: &std::path::Path, kind: &str, name: &str) -> String {
    let path = dir.join(name);
    ok(&[
        "keys",
        "generate",
        "--kind",
        kind,
        "--out",
        path.to_str().expect("utf-8"),
    ]);
    public_hex(&path)
}

/// A validator's and a miner's data directories under `dir`, initialised on one genesis, with their
/// API addresses: (validator dir, miner dir, validator API, miner API).
pub fn init_pair(dir: &Path) -> (PathBuf, PathBuf, String, String) {
    let v_dir = dir.join("validator");
    let m_dir = dir.join("miner");
    let v_api = format!("127.0.0.1:{}", free_port());
    let m_api = format!("127.0.0.1:{}", free_port());
    ok(&[
        "init",
        "--role",
        "validator",
        "--data-dir",
        v_dir.to_str().expect("utf-8"),
        "--api-listen",
        &v_api,
    ]);
    let genesis = v_dir.join("genesis.toml");
    ok(&[
        "init",
        "--role",
        "miner",
        "--data-dir",
        m_dir.to_str().expect("utf-8"),
        "--genesis",
        genesis.to_str().expect("utf-8"),
        "--api-listen",
        &m_api,
    ]);
    (v_dir, m_dir, v_api, m_api)
}
