//! `meshmind tx` and `meshmind account`: build a transaction, sign it with a coldkey file, submit it
//! through a node's HTTP API, and read accounts back.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use meshmind_protocols::{KeyFile, KeyKind, Keypair, NetworkId, v1};

use crate::api::client::{ApiClient, ClientError};
use crate::api::types::ApiError;

/// Where and as whom a transaction is sent.
#[derive(Debug, Args)]
pub struct TxCommon {
    /// The signing coldkey file.
    #[arg(long)]
    pub coldkey: PathBuf,
    /// A validator's or observer's API, e.g. http://127.0.0.1:7410.
    #[arg(long, default_value = "http://127.0.0.1:7410")]
    pub api: String,
    /// Nonce to use; by default the account's next one, read from the node.
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Wait (up to 60 s) until a finalized snapshot has applied it.
    #[arg(long)]
    pub wait: bool,
}

/// `meshmind tx ...`.
#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Move balance to another coldkey.
    Transfer {
        /// Where and as whom it is sent.
        #[command(flatten)]
        common: TxCommon,
        /// Recipient coldkey (hex).
        #[arg(long)]
        to: String,
        /// Amount.
        #[arg(long)]
        amount: u64,
    },
    /// Stake balance on a registered hotkey.
    Stake {
        /// Where and as whom it is sent.
        #[command(flatten)]
        common: TxCommon,
        /// Hotkey (hex).
        #[arg(long)]
        hotkey: String,
        /// Subnet.
        #[arg(long)]
        subnet: u32,
        /// Amount.
        #[arg(long)]
        amount: u64,
    },
    /// Return stake to the balance.
    Unstake {
        /// Where and as whom it is sent.
        #[command(flatten)]
        common: TxCommon,
        /// Hotkey (hex).
        #[arg(long)]
        hotkey: String,
        /// Subnet.
        #[arg(long)]
        subnet: u32,
        /// Amount.
        #[arg(long)]
        amount: u64,
    },
    /// Register a hotkey on a subnet, burning the current price.
    Register {
        /// Where and as whom it is sent.
        #[command(flatten)]
        common: TxCommon,
        /// The hotkey's key file (it signs its consent to this registration), or its hex with
        /// `--hotkey-signature`.
        #[arg(long)]
        hotkey: String,
        /// The hotkey's consent signature (hex), when `--hotkey` is hex (see `meshmind keys
        /// consent`).
        #[arg(long)]
        hotkey_signature: Option<String>,
        /// Subnet.
        #[arg(long)]
        subnet: u32,
        /// Highest burn accepted; by default the price the node shows now.
        #[arg(long)]
        max_burn: Option<u64>,
    },
    /// Declare a hotkey a candidate finalizer under the coldkey: the declared hotkeys with the
    /// most stake from their own coldkey finalize epochs (from the epoch after the one that
    /// applies it).
    DeclareFinalizer {
        /// Where and as whom it is sent.
        #[command(flatten)]
        common: TxCommon,
        /// The hotkey's key file (it signs its consent to the declaration).
        #[arg(long)]
        hotkey: PathBuf,
    },
    /// Withdraw a hotkey's declaration; the stake behind it unbonds over `unbonding_epochs`.
    UndeclareFinalizer {
        /// Where and as whom it is sent.
        #[command(flatten)]
        common: TxCommon,
        /// Hotkey (hex).
        #[arg(long)]
        hotkey: String,
    },
    /// Create a subnet owned by the coldkey, locking the current cost.
    CreateSubnet {
        /// Where and as whom it is sent.
        #[command(flatten)]
        common: TxCommon,
        /// Name.
        #[arg(long)]
        name: String,
        /// Tasks served on it, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        tasks: Vec<String>,
        /// Highest lock accepted; by default the cost the node shows now.
        #[arg(long)]
        max_lock: Option<u64>,
    },
    /// Change parameters of a subnet the coldkey owns, from the next epoch (`meshmind subnet show`
    /// lists them with their bounds).
    SetSubnetParams {
        /// Where and as whom it is sent.
        #[command(flatten)]
        common: TxCommon,
        /// Subnet.
        #[arg(long)]
        subnet: u32,
        /// `name=value` pairs, e.g. `kappa=40000 tempo=3` (`true`/`false` for switches).
        #[arg(required = true, value_parser = parse_param)]
        values: Vec<(String, u64)>,
    },
    /// Set the share of a validator hotkey's dividends its owner keeps (per mille, 0-180): a cut
    /// applies at once, a raise waits `take_rate_limit` epochs after the take's last change.
    SetTake {
        /// Where and as whom it is sent.
        #[command(flatten)]
        common: TxCommon,
        /// Hotkey (hex).
        #[arg(long)]
        hotkey: String,
        /// Take, per mille.
        #[arg(long)]
        take_per_mille: u32,
    },
    /// Move stake from one hotkey and subnet to another.
    MoveStake {
        /// Where and as whom it is sent.
        #[command(flatten)]
        common: TxCommon,
        /// Hotkey the stake is behind now (hex).
        #[arg(long)]
        from_hotkey: String,
        /// Subnet it is on now.
        #[arg(long)]
        from_subnet: u32,
        /// Hotkey to put it behind (hex; registered on the destination subnet).
        #[arg(long)]
        to_hotkey: String,
        /// Subnet to put it on.
        #[arg(long)]
        to_subnet: u32,
        /// Amount.
        #[arg(long)]
        amount: u64,
    },
    /// Replace a hotkey the coldkey owns with a fresh one at the next epoch: registrations,
    /// stake, permits, take and finalizer standing move to it.
    SwapHotkey {
        /// Where and as whom it is sent.
        #[command(flatten)]
        common: TxCommon,
        /// The hotkey replaced (hex).
        #[arg(long)]
        old_hotkey: String,
        /// The new hotkey's key file (it signs its consent).
        #[arg(long)]
        new_hotkey: PathBuf,
    },
}

/// `name=value`, a number or `true`/`false`.
pub fn parse_param(text: &str) -> Result<(String, u64), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected name=value"))?;
    let value = match value.trim() {
        "true" => 1,
        "false" => 0,
        number => number
            .parse()
            .map_err(|_| format!("{text:?}: the value must be a whole number or true/false"))?,
    };
    Ok((name.trim().to_string(), value))
}

/// `meshmind account ...`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Print an account's balance, nonce and stakes as JSON.
    Show {
        /// The coldkey: hex, or a key file.
        coldkey: String,
        /// A validator's or observer's API.
        #[arg(long, default_value = "http://127.0.0.1:7410")]
        api: String,
    },
}

fn key_bytes(field: &str, hex_text: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = hex::decode(hex_text.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .with_context(|| format!("--{field} {hex_text:?}: must be 64 hex digits"))?;
    Ok(bytes)
}

async fn next_nonce(api: &ApiClient, coldkey: &str) -> anyhow::Result<u64> {
    Ok(api.account(coldkey).await?.nonce)
}

/// Builds, signs and submits a transaction; prints the node's answer.
pub async fn tx(command: TxCommand, out: &mut impl Write) -> anyhow::Result<()> {
    use v1::transaction::Kind;
    // A registration whose hotkey file is at hand: the hotkey signs its consent below.
    let mut consenting: Option<Keypair> = None;
    let (common, mut kind) = match command {
        TxCommand::Transfer { common, to, amount } => (
            common,
            Kind::Transfer(v1::Transfer {
                to: key_bytes("to", &to)?,
                amount,
            }),
        ),
        TxCommand::Stake {
            common,
            hotkey,
            subnet,
            amount,
        } => (
            common,
            Kind::AddStake(v1::AddStake {
                hotkey: key_bytes("hotkey", &hotkey)?,
                subnet,
                amount,
            }),
        ),
        TxCommand::Unstake {
            common,
            hotkey,
            subnet,
            amount,
        } => (
            common,
            Kind::RemoveStake(v1::RemoveStake {
                hotkey: key_bytes("hotkey", &hotkey)?,
                subnet,
                amount,
            }),
        ),
        TxCommand::Register {
            common,
            hotkey,
            hotkey_signature,
            subnet,
            max_burn,
        } => {
            let (hotkey, hotkey_signature) = match hotkey_signature {
                Some(signature) => (
                    key_bytes("hotkey", &hotkey)?,
                    hex::decode(signature.trim())
                        .ok()
                        .filter(|s| s.len() == 64)
                        .context("--hotkey-signature: must be 128 hex digits")?,
                ),
                None => {
                    let signer: Keypair = KeyFile::read_kind(&PathBuf::from(&hotkey), KeyKind::Hotkey)
                        .with_context(|| {
                            format!("--hotkey {hotkey:?}: the hotkey's key file (or give its hex with --hotkey-signature)")
                        })?;
                    let public = signer.public().to_bytes().to_vec();
                    consenting = Some(signer);
                    (public, Vec::new())
                }
            };
            let max_burn = match max_burn {
                Some(max) => max,
                None => ApiClient::new(&common.api)?
                    .metagraph(subnet)
                    .await?
                    .chain
                    .map(|chain| chain.burn)
                    .with_context(|| format!("subnet {subnet} has no burn price at the node"))?,
            };
            (
                common,
                Kind::Register(v1::Register {
                    hotkey,
                    subnet,
                    max_burn,
                    hotkey_signature,
                }),
            )
        }
        TxCommand::DeclareFinalizer { common, hotkey } => {
            let signer: Keypair = KeyFile::read_kind(&hotkey, KeyKind::Hotkey)
                .with_context(|| format!("--hotkey {}: the hotkey's key file", hotkey.display()))?;
            let public = signer.public().to_bytes().to_vec();
            consenting = Some(signer);
            (
                common,
                Kind::DeclareFinalizer(v1::DeclareFinalizer {
                    hotkey: public,
                    hotkey_signature: Vec::new(),
                }),
            )
        }
        TxCommand::UndeclareFinalizer { common, hotkey } => (
            common,
            Kind::UndeclareFinalizer(v1::UndeclareFinalizer {
                hotkey: key_bytes("hotkey", &hotkey)?,
            }),
        ),
        TxCommand::CreateSubnet {
            common,
            name,
            tasks,
            max_lock,
        } => {
            let max_lock = match max_lock {
                Some(max) => max,
                None => {
                    ApiClient::new(&common.api)?
                        .economy()
                        .await?
                        .params
                        .subnet_lock
                }
            };
            (
                common,
                Kind::CreateSubnet(v1::CreateSubnet {
                    name,
                    tasks,
                    max_lock,
                }),
            )
        }
        TxCommand::SetSubnetParams {
            common,
            subnet,
            values,
        } => (
            common,
            Kind::SetSubnetParams(v1::SetSubnetParams {
                subnet,
                values: values
                    .into_iter()
                    .map(|(name, value)| v1::ParamValue { name, value })
                    .collect(),
            }),
        ),
        TxCommand::SetTake {
            common,
            hotkey,
            take_per_mille,
        } => (
            common,
            Kind::SetTake(v1::SetTake {
                hotkey: key_bytes("hotkey", &hotkey)?,
                take_per_mille,
            }),
        ),
        TxCommand::MoveStake {
            common,
            from_hotkey,
            from_subnet,
            to_hotkey,
            to_subnet,
            amount,
        } => (
            common,
            Kind::MoveStake(v1::MoveStake {
                from_hotkey: key_bytes("from-hotkey", &from_hotkey)?,
                from_subnet,
                to_hotkey: key_bytes("to-hotkey", &to_hotkey)?,
                to_subnet,
                amount,
            }),
        ),
        TxCommand::SwapHotkey {
            common,
            old_hotkey,
            new_hotkey,
        } => {
            let signer: Keypair =
                KeyFile::read_kind(&new_hotkey, KeyKind::Hotkey).with_context(|| {
                    format!(
                        "--new-hotkey {}: the new hotkey's key file",
                        new_hotkey.display()
                    )
                })?;
            consenting = Some(signer);
            (
                common,
                Kind::SwapHotkey(v1::SwapHotkey {
                    old_hotkey: key_bytes("old-hotkey", &old_hotkey)?,
                    ..Default::default()
                }),
            )
        }
    };
    let keypair: Keypair = KeyFile::read_kind(&common.coldkey, KeyKind::Coldkey)?;
    let coldkey = keypair.public().to_hex();
    let api = ApiClient::new(&common.api)?;
    let status = api.status().await?;
    let network_id: NetworkId = status
        .network_id
        .parse()
        .context("the node's status has no network id")?;
    let nonce = match common.nonce {
        Some(nonce) => nonce,
        None => next_nonce(&api, &coldkey).await?,
    };
    match (&consenting, &mut kind) {
        (Some(hotkey), Kind::Register(register)) => {
            *register =
                std::mem::take(register).consented(hotkey, &network_id.to_vec(), &keypair.public());
        }
        (Some(hotkey), Kind::DeclareFinalizer(declare)) => {
            *declare =
                std::mem::take(declare).consented(hotkey, &network_id.to_vec(), &keypair.public());
        }
        (Some(hotkey), Kind::SwapHotkey(swap)) => {
            *swap = std::mem::take(swap).consented(hotkey, &network_id.to_vec(), &keypair.public());
        }
        _ => {}
    }
    let tx = v1::Transaction::new_signed(&network_id.to_vec(), nonce, kind, &keypair);
    match api.submit_tx(&tx).await {
        Ok(accepted) => writeln!(out, "{}", serde_json::to_string(&accepted)?)?,
        Err(ClientError::Api { status, error }) => {
            let refusal = ApiError { error };
            writeln!(out, "{}", serde_json::to_string(&refusal)?)?;
            anyhow::bail!("the node refused the transaction (HTTP {status})");
        }
        Err(e) => return Err(e.into()),
    }
    if common.wait {
        let start = Instant::now();
        let mut told = Instant::now();
        loop {
            if next_nonce(&api, &coldkey).await? > nonce {
                writeln!(out, "{{\"finalized\":true,\"nonce\":{nonce}}}")?;
                break;
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(60),
                "not finalized within 60 s (nonce {nonce})"
            );
            // Progress on stderr (stdout stays the JSON answers), every two seconds.
            if told.elapsed() >= Duration::from_secs(2) {
                told = Instant::now();
                let head = api
                    .status()
                    .await
                    .ok()
                    .and_then(|s| s.consensus.finalized_epoch)
                    .map_or("none".into(), |e| e.to_string());
                eprintln!(
                    "waiting for a finalized snapshot to apply nonce {nonce}: {:.0} s, finalized epoch {head}",
                    start.elapsed().as_secs_f64()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

/// Prints an account as the node sees it.
pub async fn account(command: AccountCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let AccountCommand::Show { coldkey, api } = command;
    let hex_key = if std::path::Path::new(&coldkey).exists() {
        KeyFile::read_kind(std::path::Path::new(&coldkey), KeyKind::Coldkey)?
            .public()
            .to_hex()
    } else {
        hex::encode(key_bytes("coldkey", &coldkey)?)
    };
    let account = ApiClient::new(&api)?.account(&hex_key).await?;
    writeln!(out, "{}", serde_json::to_string_pretty(&account)?)?;
    Ok(())
}
