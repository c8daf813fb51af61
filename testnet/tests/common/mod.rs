//! Finding the binaries the testnet tests run.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The `meshmind-testnet` binary under test.
pub fn testnet() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshmind-testnet"));
    command.env("MESHMIND_BIN", meshmind());
    command
}

/// Stops the testnet in its folder when dropped, so a failing test leaves no node running.
pub struct DownOnDrop(pub PathBuf);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        if self.0.join("testnet.json").exists() {
            let _ = testnet()
                .args(["down", "--purge", "--dir"])
                .arg(&self.0)
                .output();
        }
    }
}

/// The `meshmind` binary beside it, built first if this test run did not build it.
pub fn meshmind() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_meshmind-testnet"))
        .parent()
        .expect("a directory")
        .join("meshmind");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "meshmind-node", "--bin", "meshmind"])
            .status()
            .expect("cargo");
        assert!(status.success(), "building meshmind failed");
    }
    path
}
