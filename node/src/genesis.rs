//! Genesis files (TOML or JSON): everything every node must agree on before epoch 0. The network id is
//! the blake3 hash of the genesis's protobuf encoding.

use std::collections::BTreeMap;
use std::path::Path;

use meshmind_protocols::{NetworkId, PublicKey, Validate, hash, v1};
use serde::{Deserialize, Serialize};

/// Why a genesis file was refused.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not parse; the message names the key and, for TOML, the line.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong and where.
        message: String,
    },
    /// The content is inconsistent; names the field.
    #[error("{path}: {field}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// The offending field.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// A subnet in a genesis file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetFile {
    /// Subnet id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Task names served on it.
    pub tasks: Vec<String>,
    /// Owner coldkey (hex), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// A validator in a genesis file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorFile {
    /// Hotkey (hex).
    pub hotkey: String,
    /// Coldkey (hex).
    pub coldkey: String,
    /// Stake, split evenly over the genesis subnets (the remainder on the first).
    pub stake: u64,
}

/// A hotkey registered on a subnet from genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeuronFile {
    /// Subnet id.
    pub subnet: u32,
    /// Hotkey (hex).
    pub hotkey: String,
    /// Owning coldkey (hex).
    pub coldkey: String,
}

/// The economy's rules in a genesis file; a missing or zero field takes its default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EconomyFile {
    /// Most UIDs per subnet (default 256, at most 65536).
    pub max_uids: u32,
    /// Epochs a new neuron cannot be pruned (default 4).
    pub immunity_epochs: u64,
    /// Lowest registration burn (default 1000).
    pub min_burn: u64,
    /// Highest registration burn (default 100000000000).
    pub max_burn: u64,
    /// Amount locked to create a subnet (default 1000000).
    pub subnet_lock: u64,
    /// Per-mille of dividends a validator's owner keeps (default 180).
    pub validator_take_per_mille: u32,
    /// Epochs a validator's stake counts after its last weight vector (default 16).
    pub activity_cutoff: u64,
    /// Yuma-3 bonds instead of classic ones (default false).
    pub yuma3: bool,
    /// Liquid alpha with Yuma-3 bonds (default false).
    pub liquid_alpha: bool,
    /// Burned by every applied transaction (default 100).
    pub tx_fee: u64,
    /// Most finalizers (default 64).
    pub max_finalizers: u32,
    /// Epochs unstaked stake behind a finalizer takes to return (default 64).
    pub unbonding_epochs: u64,
    /// Epochs an equivocating finalizer is kept out of the set (default and least 64).
    pub jail_epochs: u64,
    /// Per-mille of the stake behind an equivocating finalizer burned (default 100).
    pub slash_per_mille: u32,
    /// Defaults of subnet parameters by name, e.g. `{ tempo = 2 }` (see `meshmind subnet show`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub subnet_defaults: BTreeMap<String, u64>,
    /// Narrower bounds of subnet parameters by name, e.g. `{ tempo = [1, 10] }`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bounds: BTreeMap<String, [u64; 2]>,
    /// Epochs between two parameter changes by a subnet's owner (default 100).
    pub owner_rate_limit: u64,
    /// Epochs after a take's last change before it may rise (default 100).
    pub take_rate_limit: u64,
    /// Most subnets; at the limit creating one deregisters the one with the least stake (default 64).
    pub max_subnets: u32,
    /// Epochs after creation a subnet cannot be deregistered (default 64).
    pub subnet_immunity_epochs: u64,
    /// How emission is shared among subnets: "stake" (default) or "flows".
    #[serde(skip_serializing_if = "String::is_empty")]
    pub emission_mode: String,
    /// Epochs of the moving averages emission follows (default 64).
    pub emission_smoothing_epochs: u64,
}

/// A balance in a genesis file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceFile {
    /// Coldkey (hex).
    pub coldkey: String,
    /// Amount.
    pub amount: u64,
}

/// The genesis file as written by people and tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    /// Network name (a-z A-Z 0-9 - _ . : /).
    pub network_name: String,
    /// Start of epoch 0, milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    /// Epoch length in milliseconds.
    pub epoch_ms: u64,
    /// Amount emitted per epoch.
    #[serde(default)]
    pub emission_per_epoch: u64,
    /// Subnets.
    #[serde(default)]
    pub subnets: Vec<SubnetFile>,
    /// Validators with stake.
    pub validators: Vec<ValidatorFile>,
    /// Initial balances.
    #[serde(default)]
    pub balances: Vec<BalanceFile>,
    /// Hotkeys registered from genesis (after the validators, in this order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neurons: Vec<NeuronFile>,
    /// The economy's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub economy: Option<EconomyFile>,
}

/// A checked genesis with its network id.
#[derive(Debug, Clone, PartialEq)]
pub struct Genesis {
    /// The wire form; its hash is the network id.
    pub message: v1::Genesis,
    /// blake3 of the encoded genesis.
    pub network_id: NetworkId,
}

impl Genesis {
    /// The short network tag used in protocol and topic names: the id's first 16 hex digits.
    pub fn network_tag(&self) -> String {
        self.network_id.tag()
    }

    /// The epoch at `now_ms` (0 before genesis).
    pub fn epoch_at(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.message.genesis_time_ms) / self.message.epoch_ms.max(1)
    }

    /// Reads a genesis file: `.toml` as TOML, anything else as JSON.
    pub fn read(path: &Path) -> Result<Self, GenesisError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Io {
            path: name.clone(),
            source,
        })?;
        let file: GenesisFile = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|e| GenesisError::Parse {
                path: name.clone(),
                message: e.to_string(),
            })?
        } else {
            let mut deserializer = serde_json::Deserializer::from_str(&text);
            serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
                GenesisError::Parse {
                    path: name.clone(),
                    message: format!("{}: {}", e.path(), e.inner()),
                }
            })?
        };
        file.into_genesis()
            .map_err(|(field, reason)| GenesisError::Invalid {
                path: name,
                field,
                reason,
            })
    }
}

fn key(field: String, text: &str) -> Result<Vec<u8>, (String, String)> {
    PublicKey::from_hex(text)
        .map(|k| k.to_bytes().to_vec())
        .map_err(|e| (field, format!("not a public key: {e}")))
}

impl GenesisFile {
    /// Converts to the wire form and validates it; errors name the field.
    pub fn into_genesis(self) -> Result<Genesis, (String, String)> {
        let mut subnets = Vec::with_capacity(self.subnets.len());
        for (i, s) in self.subnets.into_iter().enumerate() {
            let owner = match &s.owner {
                Some(owner) => key(format!("subnets[{i}].owner"), owner)?,
                None => Vec::new(),
            };
            subnets.push(v1::SubnetSpec {
                id: s.id,
                name: s.name,
                tasks: s.tasks,
                owner,
            });
        }
        let mut validators = Vec::with_capacity(self.validators.len());
        for (i, v) in self.validators.iter().enumerate() {
            validators.push(v1::GenesisValidator {
                hotkey: key(format!("validators[{i}].hotkey"), &v.hotkey)?,
                coldkey: key(format!("validators[{i}].coldkey"), &v.coldkey)?,
                stake: v.stake,
            });
        }
        let mut balances = Vec::with_capacity(self.balances.len());
        for (i, b) in self.balances.iter().enumerate() {
            balances.push(v1::GenesisBalance {
                coldkey: key(format!("balances[{i}].coldkey"), &b.coldkey)?,
                amount: b.amount,
            });
        }
        let mut neurons = Vec::with_capacity(self.neurons.len());
        for (i, n) in self.neurons.iter().enumerate() {
            neurons.push(v1::GenesisNeuron {
                subnet: n.subnet,
                hotkey: key(format!("neurons[{i}].hotkey"), &n.hotkey)?,
                coldkey: key(format!("neurons[{i}].coldkey"), &n.coldkey)?,
            });
        }
        let message = v1::Genesis {
            neurons,
            economy: self.economy.map(|e| v1::EconomyParams {
                max_uids: e.max_uids,
                immunity_epochs: e.immunity_epochs,
                min_burn: e.min_burn,
                max_burn: e.max_burn,
                subnet_lock: e.subnet_lock,
                validator_take_per_mille: e.validator_take_per_mille,
                yuma3: e.yuma3,
                liquid_alpha: e.liquid_alpha,
                activity_cutoff: e.activity_cutoff,
                tx_fee: e.tx_fee,
                max_finalizers: e.max_finalizers,
                unbonding_epochs: e.unbonding_epochs,
                jail_epochs: e.jail_epochs,
                slash_per_mille: e.slash_per_mille,
                subnet_defaults: e
                    .subnet_defaults
                    .iter()
                    .map(|(name, &value)| v1::ParamValue {
                        name: name.clone(),
                        value,
                    })
                    .collect(),
                bounds: e
                    .bounds
                    .iter()
                    .map(|(name, &[min, max])| v1::ParamBound {
                        name: name.clone(),
                        min,
                        max,
                    })
                    .collect(),
                owner_rate_limit: e.owner_rate_limit,
                take_rate_limit: e.take_rate_limit,
                max_subnets: e.max_subnets,
                subnet_immunity_epochs: e.subnet_immunity_epochs,
                emission_mode: e.emission_mode,
                emission_smoothing_epochs: e.emission_smoothing_epochs,
            }),
            network_name: self.network_name,
            genesis_time_ms: self.genesis_time_ms,
            epoch_ms: self.epoch_ms,
            subnets,
            validators,
            balances,
            emission_per_epoch: self.emission_per_epoch,
        };
        message
            .validate()
            .map_err(|e| (e.field.clone(), e.reason.to_string()))?;
        let network_id = NetworkId::from(hash(&message));
        Ok(Genesis {
            message,
            network_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use meshmind_protocols::Keypair;

    use super::*;

    fn hex_key(seed: u8) -> String {
        Keypair::from_secret(&[seed; 32]).public().to_hex()
    }

    fn toml_text() -> String {
        format!(
            r#"
network_name = "localnet"
genesis_time_ms = 1700000000000
epoch_ms = 2000
emission_per_epoch = 1000000

[[subnets]]
id = 1
name = "reference"
tasks = ["arith", "sort"]

[[validators]]
hotkey = "{}"
coldkey = "{}"
stake = 1000
"#,
            hex_key(1),
            hex_key(2)
        )
    }

    #[test]
    fn toml_and_json_give_the_same_network_id() {
        let dir = tempfile::tempdir().expect("temp dir");
        let toml_path = dir.path().join("genesis.toml");
        std::fs::write(&toml_path, toml_text()).expect("write");
        let from_toml = Genesis::read(&toml_path).expect("valid TOML genesis");
        let file: GenesisFile = toml::from_str(&toml_text()).expect("parses");
        let json_path = dir.path().join("genesis.json");
        std::fs::write(&json_path, serde_json::to_string(&file).expect("json")).expect("write");
        let from_json = Genesis::read(&json_path).expect("valid JSON genesis");
        assert_eq!(from_toml.network_id, from_json.network_id);
        assert_eq!(from_toml.network_tag().len(), 16);
        assert_eq!(from_toml.epoch_at(1_700_000_000_000 + 4_100), 2);
        assert_eq!(from_toml.epoch_at(0), 0);
    }

    #[test]
    fn bad_files_name_the_problem() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("genesis.toml");
        let cases = [
            (
                toml_text().replace("epoch_ms = 2000", "epoch_ms = \"soon\""),
                "epoch_ms",
            ),
            (
                toml_text().replace("stake = 1000", "stake = 1000\nstak = 5"),
                "stak",
            ),
            (
                toml_text().replace(&hex_key(2), "beef"),
                "validators[0].coldkey",
            ),
            (
                toml_text().replace("stake = 1000", "stake = 0"),
                "validators[0].stake",
            ),
            (
                toml_text().replace("epoch_ms = 2000", "epoch_ms = 5"),
                "epoch_ms",
            ),
        ];
        for (text, needle) in cases {
            std::fs::write(&path, text).expect("write");
            let err = Genesis::read(&path).expect_err("refused");
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
    }
}
