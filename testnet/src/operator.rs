//! What an operator does to a running testnet in a scenario: sign a node's transactions
//! (register, stake, declare or undeclare a finalizer) with the `meshmind` CLI, as a person would.

use std::time::Duration;

use meshmind_protocols::{KeyFile, KeyKind};

use crate::launcher::LaunchError;
use crate::manifest::Manifest;

/// Longest a transaction may take to be finalized: the CLI's own wait (60 s) and a margin.
const TX_TIMEOUT: Duration = Duration::from_secs(75);

/// A transaction about one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeTx {
    /// Register its hotkey on a subnet.
    Register {
        /// The subnet.
        subnet: u32,
    },
    /// Stake on its hotkey.
    Stake {
        /// The subnet.
        subnet: u32,
        /// How much.
        amount: u64,
    },
    /// Declare its hotkey a finalizer.
    Declare,
    /// Withdraw its declaration.
    Undeclare,
}

/// Sends `tx` about node `node`, signed by node `signer`'s coldkey, through v0's API, and waits
/// until a finalized snapshot applied it; returns what the CLI printed.
pub async fn send(
    manifest: &Manifest,
    node: &str,
    signer: &str,
    tx: NodeTx,
) -> Result<String, LaunchError> {
    let entry = manifest
        .node(node)
        .map_err(|e| LaunchError::Other(e.to_string()))?;
    let coldkey = manifest
        .node(signer)
        .map_err(|e| LaunchError::Other(e.to_string()))?
        .data_dir
        .join("coldkey.json");
    let api = manifest
        .node("v0")
        .map_err(|e| LaunchError::Other(e.to_string()))?
        .api
        .clone();
    let hotkey_file = entry.data_dir.join("hotkey.json");
    let hotkey = KeyFile::read_kind(&hotkey_file, KeyKind::Hotkey)
        .map_err(|e| LaunchError::Other(format!("{node}'s hotkey: {e}")))?
        .public()
        .to_hex();
    let hotkey_file = hotkey_file.display().to_string();
    let mut args: Vec<String> = vec!["tx".into()];
    match tx {
        NodeTx::Register { subnet } => args.extend([
            "register".into(),
            "--hotkey".into(),
            hotkey_file,
            "--subnet".into(),
            subnet.to_string(),
        ]),
        NodeTx::Stake { subnet, amount } => args.extend([
            "stake".into(),
            "--hotkey".into(),
            hotkey,
            "--subnet".into(),
            subnet.to_string(),
            "--amount".into(),
            amount.to_string(),
        ]),
        NodeTx::Declare => {
            args.extend(["declare-finalizer".into(), "--hotkey".into(), hotkey_file])
        }
        NodeTx::Undeclare => args.extend(["undeclare-finalizer".into(), "--hotkey".into(), hotkey]),
    }
    args.extend([
        "--api".into(),
        format!("http://{api}"),
        "--coldkey".into(),
        coldkey.display().to_string(),
        "--wait".into(),
    ]);
    let command = format!("meshmind {}", args.join(" "));
    let run = tokio::process::Command::new(&manifest.meshmind)
        .args(&args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(TX_TIMEOUT, run)
        .await
        .map_err(|_| LaunchError::Command {
            command: command.clone(),
            message: format!("no answer in {TX_TIMEOUT:?}"),
        })?
        .map_err(|e| LaunchError::Command {
            command: command.clone(),
            message: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(LaunchError::Command {
            command,
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}
