//! Helpers for tests that run real `meshmind` processes.
#![allow(dead_code)]

use std::process::{Child, Command};
use std::time::{Duration, Instant};

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
pub fn status(api: &str, limit: Duration) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let output = meshmind()
            .args(["status", "--api", api])
            .output()
            .expect("run meshmind");
        if output.status.success() {
            return serde_json::from_slice(&output.stdout).expect("status is JSON");
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
