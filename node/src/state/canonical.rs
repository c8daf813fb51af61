//! The economy's canonical encoding (`v1::EconomyState`): what the state root hashes and what the
//! ledger stores. Lists come out sorted by key because the state keeps ordered maps; reading refuses
//! lists out of order or with repeated keys, and the root is always taken over the re-encoding.

use meshmind_protocols::v1;
use prost::Message;

use super::{Account, Finalizer, Key, Neuron, Params, State, StateError, Subnet, Supply};

/// Domain of the state root's key derivation.
const ROOT_DOMAIN: &str = "meshmind/v1/state";

impl State {
    /// The root committed to in snapshot headers: blake3 (derive-key mode) of the canonical
    /// encoding.
    pub fn root(&self) -> [u8; 32] {
        blake3::derive_key(ROOT_DOMAIN, &self.to_bytes())
    }

    /// The canonical encoding (also the stored form).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_wire().encode_to_vec()
    }

    /// Reads the stored form, checking its order and the economy's invariants.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        let wire = v1::EconomyState::decode(bytes).map_err(|e| corrupt(e.to_string()))?;
        let state = State::from_wire(wire)?;
        state.check_invariants()?;
        Ok(state)
    }

    /// The state as its canonical message.
    pub fn to_wire(&self) -> v1::EconomyState {
        v1::EconomyState {
            network_id: self.network_id.0.to_vec(),
            params: Some(params_to_wire(&self.params)),
            epoch: self.epoch,
            accounts: self
                .accounts
                .iter()
                .map(|(coldkey, a)| v1::AccountState {
                    coldkey: coldkey.0.to_vec(),
                    balance: a.balance,
                    nonce: a.nonce,
                })
                .collect(),
            stakes: self
                .stakes
                .iter()
                .map(|(&subnet, hotkeys)| v1::SubnetStakes {
                    subnet,
                    hotkeys: hotkeys
                        .iter()
                        .map(|(hotkey, coldkeys)| v1::HotkeyStakes {
                            hotkey: hotkey.0.to_vec(),
                            coldkeys: coldkeys
                                .iter()
                                .map(|(coldkey, &amount)| v1::ColdkeyStake {
                                    coldkey: coldkey.0.to_vec(),
                                    amount,
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
            subnets: self
                .subnets
                .iter()
                .map(|(&id, s)| subnet_to_wire(id, s))
                .collect(),
            supply: Some(v1::SupplyState {
                genesis: self.supply.genesis,
                emitted: self.supply.emitted,
                burned: self.supply.burned,
            }),
            finalizers: self
                .finalizers
                .iter()
                .map(|(hotkey, f)| v1::FinalizerState {
                    hotkey: hotkey.0.to_vec(),
                    coldkey: f.coldkey.0.to_vec(),
                    declared: f.declared,
                    left_at: f.left_at,
                    jailed_until: f.jailed_until,
                    in_set_since: f.in_set_since,
                })
                .collect(),
            unbonding: self
                .unbonding
                .iter()
                .map(
                    |(&(release_epoch, coldkey, hotkey), &amount)| v1::UnbondingState {
                        release_epoch,
                        coldkey: coldkey.0.to_vec(),
                        hotkey: hotkey.0.to_vec(),
                        amount,
                    },
                )
                .collect(),
        }
    }

    /// The state a canonical message describes; refuses one that is not canonical.
    pub fn from_wire(wire: v1::EconomyState) -> Result<Self, StateError> {
        let mut state = State {
            network_id: key(&wire.network_id, "network_id")?,
            params: params_from_wire(&wire.params.unwrap_or_default())?,
            epoch: wire.epoch,
            accounts: Default::default(),
            stakes: Default::default(),
            subnets: Default::default(),
            supply: wire
                .supply
                .map(|s| Supply {
                    genesis: s.genesis,
                    emitted: s.emitted,
                    burned: s.burned,
                })
                .unwrap_or_default(),
            finalizers: Default::default(),
            unbonding: Default::default(),
        };
        for f in wire.finalizers {
            let finalizer = Finalizer {
                coldkey: key(&f.coldkey, "finalizer")?,
                declared: f.declared,
                left_at: f.left_at,
                jailed_until: f.jailed_until,
                in_set_since: f.in_set_since,
            };
            let hotkey = key(&f.hotkey, "finalizer")?;
            insert_last(&mut state.finalizers, hotkey, finalizer, "finalizers")?;
        }
        for u in wire.unbonding {
            let entry = (
                u.release_epoch,
                key(&u.coldkey, "unbonding")?,
                key(&u.hotkey, "unbonding")?,
            );
            insert_last(&mut state.unbonding, entry, u.amount, "unbonding")?;
        }
        for a in wire.accounts {
            let coldkey = key(&a.coldkey, "account")?;
            let account = Account {
                balance: a.balance,
                nonce: a.nonce,
            };
            insert_last(&mut state.accounts, coldkey, account, "accounts")?;
        }
        for s in wire.stakes {
            let mut hotkeys = std::collections::BTreeMap::new();
            for h in s.hotkeys {
                let mut coldkeys = std::collections::BTreeMap::new();
                for c in h.coldkeys {
                    insert_last(&mut coldkeys, key(&c.coldkey, "stake")?, c.amount, "stakes")?;
                }
                insert_last(&mut hotkeys, key(&h.hotkey, "stake")?, coldkeys, "stakes")?;
            }
            insert_last(&mut state.stakes, s.subnet, hotkeys, "stakes")?;
        }
        for s in wire.subnets {
            let id = s.id;
            let subnet = subnet_from_wire(s)?;
            insert_last(&mut state.subnets, id, subnet, "subnets")?;
        }
        Ok(state)
    }
}

fn corrupt(reason: impl Into<String>) -> StateError {
    StateError::Corrupt(reason.into())
}

fn key(bytes: &[u8], what: &str) -> Result<Key, StateError> {
    Key::from_slice(bytes).ok_or_else(|| corrupt(format!("{what}: a key of {} bytes", bytes.len())))
}

fn u16_of(value: u32, what: &str) -> Result<u16, StateError> {
    u16::try_from(value).map_err(|_| corrupt(format!("{what}: {value} is over 65535")))
}

/// Inserts `(k, v)` after every key already in `map`, refusing keys out of order or repeated.
fn insert_last<K: Ord, V>(
    map: &mut std::collections::BTreeMap<K, V>,
    k: K,
    v: V,
    what: &str,
) -> Result<(), StateError> {
    if map.last_key_value().is_some_and(|(last, _)| *last >= k) {
        return Err(corrupt(format!(
            "{what}: not sorted by key, or a key repeated"
        )));
    }
    map.insert(k, v);
    Ok(())
}

fn params_to_wire(p: &Params) -> v1::StateParams {
    v1::StateParams {
        max_uids: p.max_uids,
        immunity_epochs: p.immunity_epochs,
        min_burn: p.min_burn,
        max_burn: p.max_burn,
        burn_decay_per_mille: p.burn_decay_per_mille,
        subnet_lock: p.subnet_lock,
        max_subnets: p.max_subnets,
        owner_cut_per_mille: p.owner_cut_per_mille,
        validator_take_per_mille: p.validator_take_per_mille,
        max_validators: p.max_validators,
        activity_cutoff: p.activity_cutoff,
        yuma3: p.yuma3,
        liquid_alpha: p.liquid_alpha,
        tx_fee: p.tx_fee,
        max_finalizers: p.max_finalizers,
        unbonding_epochs: p.unbonding_epochs,
        jail_epochs: p.jail_epochs,
        slash_per_mille: u32::try_from(p.slash_per_mille).unwrap_or(u32::MAX),
    }
}

fn params_from_wire(p: &v1::StateParams) -> Result<Params, StateError> {
    Ok(Params {
        max_uids: p.max_uids,
        immunity_epochs: p.immunity_epochs,
        min_burn: p.min_burn,
        max_burn: p.max_burn,
        burn_decay_per_mille: p.burn_decay_per_mille,
        subnet_lock: p.subnet_lock,
        max_subnets: p.max_subnets,
        owner_cut_per_mille: p.owner_cut_per_mille,
        validator_take_per_mille: p.validator_take_per_mille,
        max_validators: p.max_validators,
        activity_cutoff: p.activity_cutoff,
        yuma3: p.yuma3,
        liquid_alpha: p.liquid_alpha,
        tx_fee: p.tx_fee,
        max_finalizers: p.max_finalizers,
        unbonding_epochs: p.unbonding_epochs,
        jail_epochs: p.jail_epochs,
        slash_per_mille: u64::from(p.slash_per_mille),
    })
}

fn pairs_to_wire(pairs: &[(u32, u16)]) -> (Vec<u32>, Vec<u32>) {
    pairs.iter().map(|&(uid, v)| (uid, u32::from(v))).unzip()
}

fn pairs_from_wire(
    uids: Vec<u32>,
    values: Vec<u32>,
    what: &str,
) -> Result<Vec<(u32, u16)>, StateError> {
    if uids.len() != values.len() {
        return Err(corrupt(format!(
            "{what}: {} uids, {} values",
            uids.len(),
            values.len()
        )));
    }
    uids.into_iter()
        .zip(values)
        .map(|(uid, v)| Ok((uid, u16_of(v, what)?)))
        .collect()
}

fn subnet_to_wire(id: u32, s: &Subnet) -> v1::SubnetState {
    v1::SubnetState {
        id,
        name: s.name.clone(),
        tasks: s.tasks.clone(),
        owner: s.owner.map(|k| k.0.to_vec()).unwrap_or_default(),
        locked: s.locked,
        burn: s.burn,
        neurons: s
            .neurons
            .iter()
            .map(|n| {
                let (weight_uids, weight_values) = pairs_to_wire(&n.weights);
                let (bond_uids, bond_values) = pairs_to_wire(&n.bonds);
                let [consensus, incentive, dividends, trust] = n.results.map(u32::from);
                v1::NeuronState {
                    hotkey: n.hotkey.0.to_vec(),
                    owner: n.owner.0.to_vec(),
                    registered_at: n.registered_at,
                    last_update: n.last_update,
                    weight_uids,
                    weight_values,
                    bond_uids,
                    bond_values,
                    last_emission: n.last_emission,
                    consensus,
                    incentive,
                    dividends,
                    trust,
                    permit_since: n.permit_since,
                }
            })
            .collect(),
    }
}

fn subnet_from_wire(s: v1::SubnetState) -> Result<Subnet, StateError> {
    let owner = match s.owner.is_empty() {
        true => None,
        false => Some(key(&s.owner, "subnet owner")?),
    };
    let neurons = s
        .neurons
        .into_iter()
        .map(|n| {
            Ok(Neuron {
                hotkey: key(&n.hotkey, "neuron")?,
                owner: key(&n.owner, "neuron owner")?,
                registered_at: n.registered_at,
                last_update: n.last_update,
                weights: pairs_from_wire(n.weight_uids, n.weight_values, "weights")?,
                bonds: pairs_from_wire(n.bond_uids, n.bond_values, "bonds")?,
                last_emission: n.last_emission,
                results: [
                    u16_of(n.consensus, "consensus")?,
                    u16_of(n.incentive, "incentive")?,
                    u16_of(n.dividends, "dividends")?,
                    u16_of(n.trust, "trust")?,
                ],
                permit_since: n.permit_since,
            })
        })
        .collect::<Result<Vec<_>, StateError>>()?;
    Ok(Subnet {
        name: s.name,
        tasks: s.tasks,
        owner,
        locked: s.locked,
        burn: s.burn,
        neurons,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small state with every kind of entry, from fixed keys.
    fn sample() -> State {
        let k = |b: u8| Key([b; 32]);
        let mut state = State {
            network_id: k(9),
            params: Params::default(),
            epoch: 7,
            accounts: Default::default(),
            stakes: Default::default(),
            subnets: Default::default(),
            supply: Supply {
                genesis: 1_000_000,
                emitted: 5_000,
                burned: 1_000,
            },
            finalizers: Default::default(),
            unbonding: Default::default(),
        };
        state.finalizers.insert(
            k(5),
            Finalizer {
                coldkey: k(2),
                declared: true,
                left_at: 0,
                jailed_until: 3,
                in_set_since: Some(2),
            },
        );
        state.unbonding.insert((9, k(2), k(5)), 25);
        state.accounts.insert(
            k(2),
            Account {
                balance: 900,
                nonce: 3,
            },
        );
        state.accounts.insert(
            k(1),
            Account {
                balance: 100,
                nonce: 0,
            },
        );
        let mut behind = std::collections::BTreeMap::new();
        behind.insert(k(1), 40);
        behind.insert(k(2), 60);
        state.stakes.entry(1).or_default().insert(k(5), behind);
        state.subnets.insert(
            1,
            Subnet {
                name: "reference".into(),
                tasks: vec!["sort".into(), "arith".into()],
                owner: Some(k(1)),
                locked: 10,
                burn: 1_000,
                neurons: vec![Neuron {
                    hotkey: k(5),
                    owner: k(2),
                    registered_at: 1,
                    last_update: 6,
                    weights: vec![(0, 65_535), (3, 7)],
                    bonds: vec![(0, 12)],
                    last_emission: 44,
                    results: [1, 2, 3, 4],
                    permit_since: Some(5),
                }],
            },
        );
        state
    }

    #[test]
    fn the_root_is_the_hash_of_the_canonical_encoding() {
        let state = sample();
        let encoded = state.to_wire().encode_to_vec();
        assert_eq!(state.to_bytes(), encoded);
        assert_eq!(
            state.root(),
            blake3::derive_key("meshmind/v1/state", &encoded)
        );
        assert_eq!(hex::encode(state.root()), GOLDEN_STATE_ROOT);
        let back = State::from_wire(state.to_wire()).expect("reads back");
        assert_eq!(back, state);
    }

    #[test]
    fn a_non_canonical_encoding_is_refused() {
        let mut wire = sample().to_wire();
        wire.accounts.reverse();
        assert!(matches!(
            State::from_wire(wire),
            Err(StateError::Corrupt(_))
        ));
        let mut wire = sample().to_wire();
        let first = wire.accounts[0].clone();
        wire.accounts.insert(0, first);
        assert!(matches!(
            State::from_wire(wire),
            Err(StateError::Corrupt(_))
        ));
        let mut wire = sample().to_wire();
        wire.subnets[0].neurons[0].weight_values.pop();
        assert!(matches!(
            State::from_wire(wire),
            Err(StateError::Corrupt(_))
        ));
        let mut wire = sample().to_wire();
        wire.subnets[0].neurons[0].trust = 65_536;
        assert!(matches!(
            State::from_wire(wire),
            Err(StateError::Corrupt(_))
        ));
        let mut wire = sample().to_wire();
        wire.network_id.pop();
        assert!(matches!(
            State::from_wire(wire),
            Err(StateError::Corrupt(_))
        ));
    }

    /// The state root of [`sample`]: if this changes, every snapshot's state root changes, which
    /// forks every running network. Change the protocol version instead.
    const GOLDEN_STATE_ROOT: &str =
        "41ad75106dc26e38f9deaafc7e11efb42467427b59e05156f66902190da9972f";
}
