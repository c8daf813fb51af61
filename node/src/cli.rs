//! The `meshmind` command line.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use meshmind_protocols::{KeyFile, KeyKind};

use crate::yuma::{InputError, YumaInput};

/// Operate a meshmind peer.
#[derive(Debug, Parser)]
#[command(name = "meshmind", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and inspect key files.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Run one epoch of Yuma consensus on a JSON description of a subnet and print the result.
    Yuma {
        /// Input JSON file (`-` for standard input).
        #[arg(long)]
        input: PathBuf,
    },
}

/// `meshmind keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new key and write it, readable by its owner only.
    Generate {
        /// Which role the key plays.
        #[arg(long, value_enum, default_value_t = KindArg::Hotkey)]
        kind: KindArg,
        /// Where to write the key file; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a key file's public key and peer id (never its secret).
    Show {
        /// The key file.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Key role, as a command-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// A node identity.
    Hotkey,
    /// An account key.
    Coldkey,
}

impl From<KindArg> for KeyKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Hotkey => KeyKind::Hotkey,
            KindArg::Coldkey => KeyKind::Coldkey,
        }
    }
}

/// Runs a parsed command, writing its report to `out`.
pub fn run(cli: Cli, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Keys(KeysCommand::Generate { kind, out: path }) => {
            let key = KeyFile::generate(kind.into()).context("generating a key")?;
            key.write_new(&path)?;
            writeln!(
                out,
                "wrote {} {} to {}",
                key.kind,
                key.public(),
                path.display()
            )?;
        }
        Command::Yuma { input } => yuma(&input, out)?,
        Command::Keys(KeysCommand::Show { path, json }) => {
            let key = KeyFile::read(&path)?;
            let public = key.public();
            if json {
                let value = serde_json::json!({
                    "kind": key.kind.to_string(),
                    "public_key": public.to_hex(),
                    "peer_id": public.peer_id().to_string(),
                });
                writeln!(out, "{value}")?;
            } else {
                writeln!(out, "kind:       {}", key.kind)?;
                writeln!(out, "public key: {public}")?;
                writeln!(out, "peer id:    {}", public.peer_id())?;
            }
        }
    }
    Ok(())
}

/// Runs Yuma consensus on the JSON at `path`; input errors are [`InputError`]s.
fn yuma(path: &std::path::Path, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let output = YumaInput::from_json(&text)?.run()?;
    writeln!(out, "{}", serde_json::to_string(&output)?)?;
    Ok(())
}

/// The process exit code for an error: 2 for malformed input, 1 otherwise.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<InputError>().is_some() {
        2
    } else {
        1
    }
}
