//! Signed transactions: checks and effects of transfer, stake, unstake, register and create subnet.

use meshmind_protocols::{Signed, Validate, v1};

use super::{Key, Neuron, State, Subnet};

/// Why a transaction does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// It fails validation (a field is malformed).
    #[error("malformed: {0}")]
    Malformed(String),
    /// It is for another network.
    #[error("for another network")]
    WrongNetwork,
    /// Its signature does not verify under its coldkey.
    #[error("bad signature")]
    BadSignature,
    /// A registration or finalizer declaration without the hotkey's signed consent to this coldkey.
    #[error("the hotkey did not consent to this transaction (hotkey_signature)")]
    NoHotkeyConsent,
    /// Its nonce is not the account's next one (a replay, or one sent too early).
    #[error("nonce {got}, the account's next nonce is {expected}")]
    Nonce {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The balance or stake does not cover it.
    #[error("needs {needed}, only {available} available")]
    Insufficient {
        /// Amount needed.
        needed: u64,
        /// Amount available.
        available: u64,
    },
    /// The subnet does not exist.
    #[error("no subnet {0}")]
    UnknownSubnet(u32),
    /// The hotkey is jailed for equivocating, until the epoch given.
    #[error("the hotkey is jailed until epoch {0}")]
    Jailed(u64),
    /// Another coldkey declared the hotkey (or did lately).
    #[error("the hotkey is declared a finalizer by another coldkey")]
    DeclaredByAnother,
    /// The coldkey has no stake behind the hotkey to finalize with.
    #[error("the coldkey has no stake behind the hotkey (stake first, then declare)")]
    NoOwnStake,
    /// The hotkey is declared a finalizer already.
    #[error("the hotkey is declared a finalizer already")]
    AlreadyDeclared,
    /// The hotkey is not declared a finalizer by this coldkey.
    #[error("the hotkey is not declared a finalizer by this coldkey")]
    NotDeclared,
    /// The hotkey is not registered on the subnet.
    #[error("hotkey is not registered on subnet {0}")]
    NotRegistered(u32),
    /// The hotkey is already registered on the subnet.
    #[error("hotkey is already registered on subnet {0}")]
    AlreadyRegistered(u32),
    /// The burn is above what the signer accepts.
    #[error("burn is {burn}, above the {max} accepted")]
    BurnTooHigh {
        /// Current burn.
        burn: u64,
        /// The transaction's limit.
        max: u64,
    },
    /// The lock cost is above what the signer accepts.
    #[error("subnet lock is {lock}, above the {max} accepted")]
    LockTooHigh {
        /// Current lock cost.
        lock: u64,
        /// The transaction's limit.
        max: u64,
    },
    /// The subnet is full and every neuron is still immune.
    #[error("subnet {0} is full and every neuron is immune")]
    SubnetFull(u32),
    /// No more subnets may be created.
    #[error("at the limit of {0} subnets")]
    TooManySubnets(u32),
}

/// Puts transactions in the order a snapshot carries them: by coldkey, then nonce, repeats of a
/// (coldkey, nonce) dropped.
pub fn order_transactions(mut txs: Vec<v1::Transaction>) -> Vec<v1::Transaction> {
    txs.sort_by(|a, b| (&a.coldkey, a.nonce).cmp(&(&b.coldkey, b.nonce)));
    txs.dedup_by(|a, b| a.coldkey == b.coldkey && a.nonce == b.nonce);
    txs
}

fn hotkey(bytes: &[u8]) -> Result<Key, TxError> {
    Key::from_slice(bytes).ok_or_else(|| TxError::Malformed("hotkey is not 32 bytes".into()))
}

impl State {
    /// Checks `tx` against the state without changing it: shape, network, signature, a nonce not
    /// already used, and everything its kind needs now (subnet, registration, price limits, room),
    /// with the fee and what it spends covered by the balance. A transaction that passes with the
    /// account's next nonce applies. Used before one is forwarded or kept for a later snapshot.
    pub fn precheck(&self, tx: &v1::Transaction) -> Result<(), TxError> {
        tx.validate()
            .map_err(|e| TxError::Malformed(e.to_string()))?;
        if tx.network_id != self.network_id.0 {
            return Err(TxError::WrongNetwork);
        }
        let coldkey = Key::from_slice(&tx.coldkey)
            .ok_or_else(|| TxError::Malformed("coldkey is not 32 bytes".into()))?;
        let account = self.account(&coldkey);
        if tx.nonce < account.nonce {
            return Err(TxError::Nonce {
                expected: account.nonce,
                got: tx.nonce,
            });
        }
        let needed = self.cost(&coldkey, tx)?;
        if needed > account.balance {
            return Err(TxError::Insufficient {
                needed,
                available: account.balance,
            });
        }
        tx.verify_signature().map_err(|_| TxError::BadSignature)?;
        match &tx.kind {
            Some(v1::transaction::Kind::Register(r)) => r
                .verify_consent(&tx.network_id, &tx.coldkey)
                .map_err(|_| TxError::NoHotkeyConsent)?,
            Some(v1::transaction::Kind::DeclareFinalizer(d)) => d
                .verify_consent(&tx.network_id, &tx.coldkey)
                .map_err(|_| TxError::NoHotkeyConsent)?,
            _ => {}
        }
        Ok(())
    }

    /// What `tx` takes from its signer's balance (the fee included), after the checks of its kind
    /// that read the state.
    pub fn cost(&self, coldkey: &Key, tx: &v1::Transaction) -> Result<u64, TxError> {
        use v1::transaction::Kind;
        let spent = match &tx.kind {
            None => return Err(TxError::Malformed("no kind".into())),
            Some(Kind::Transfer(t)) => {
                Key::from_slice(&t.to)
                    .ok_or_else(|| TxError::Malformed("to is not 32 bytes".into()))?;
                t.amount
            }
            Some(Kind::AddStake(s)) => {
                self.registered(s.subnet, &hotkey(&s.hotkey)?)?;
                s.amount
            }
            Some(Kind::RemoveStake(s)) => {
                let held = self.stake(s.subnet, &hotkey(&s.hotkey)?, coldkey);
                if held < s.amount {
                    return Err(TxError::Insufficient {
                        needed: s.amount,
                        available: held,
                    });
                }
                0
            }
            Some(Kind::Register(r)) => {
                let hotkey = hotkey(&r.hotkey)?;
                let subnet = self
                    .subnets
                    .get(&r.subnet)
                    .ok_or(TxError::UnknownSubnet(r.subnet))?;
                if subnet.uid_of(&hotkey).is_some() {
                    return Err(TxError::AlreadyRegistered(r.subnet));
                }
                if subnet.burn > r.max_burn {
                    return Err(TxError::BurnTooHigh {
                        burn: subnet.burn,
                        max: r.max_burn,
                    });
                }
                self.free_slot(r.subnet)?;
                subnet.burn
            }
            Some(Kind::CreateSubnet(c)) => {
                let lock = self.params.subnet_lock;
                if lock > c.max_lock {
                    return Err(TxError::LockTooHigh {
                        lock,
                        max: c.max_lock,
                    });
                }
                if self.subnets.len() >= self.params.max_subnets as usize {
                    return Err(TxError::TooManySubnets(self.params.max_subnets));
                }
                lock
            }
            Some(Kind::DeclareFinalizer(d)) => {
                let hotkey = hotkey(&d.hotkey)?;
                if self.own_stake(&hotkey, coldkey) == 0 {
                    return Err(TxError::NoOwnStake);
                }
                if let Some(f) = self.finalizers.get(&hotkey) {
                    if f.jailed_until > self.epoch {
                        return Err(TxError::Jailed(f.jailed_until));
                    }
                    if f.coldkey != *coldkey && self.bonded(&hotkey) {
                        return Err(TxError::DeclaredByAnother);
                    }
                    if f.declared {
                        return Err(TxError::AlreadyDeclared);
                    }
                }
                0
            }
            Some(Kind::UndeclareFinalizer(u)) => {
                let hotkey = hotkey(&u.hotkey)?;
                match self.finalizers.get(&hotkey) {
                    Some(f) if f.declared && f.coldkey == *coldkey => 0,
                    _ => return Err(TxError::NotDeclared),
                }
            }
        };
        Ok(spent.saturating_add(self.params.tx_fee))
    }

    /// Applies one transaction, or changes nothing and says why not.
    pub fn apply(&mut self, tx: &v1::Transaction) -> Result<(), TxError> {
        use v1::transaction::Kind;
        self.precheck(tx)?;
        let coldkey = Key::from_slice(&tx.coldkey)
            .ok_or_else(|| TxError::Malformed("coldkey is not 32 bytes".into()))?;
        let account = self.account(&coldkey);
        if tx.nonce != account.nonce {
            return Err(TxError::Nonce {
                expected: account.nonce,
                got: tx.nonce,
            });
        }
        // Every check passed (each arm parses its keys before it changes anything).
        match &tx.kind {
            None => return Err(TxError::Malformed("no kind".into())),
            Some(Kind::Transfer(t)) => {
                let to = Key::from_slice(&t.to)
                    .ok_or_else(|| TxError::Malformed("to is not 32 bytes".into()))?;
                self.debit(&coldkey, t.amount);
                self.credit(to, t.amount);
            }
            Some(Kind::AddStake(s)) => {
                let hotkey = hotkey(&s.hotkey)?;
                self.debit(&coldkey, s.amount);
                self.add_stake(s.subnet, hotkey, coldkey, s.amount);
            }
            Some(Kind::RemoveStake(s)) => {
                let hotkey = hotkey(&s.hotkey)?;
                self.take_stake(s.subnet, &hotkey, &coldkey, s.amount);
                // Stake behind a finalizer stays slashable while evidence against it may come.
                if self.bonded(&hotkey) {
                    self.unbond(coldkey, hotkey, s.amount);
                } else {
                    self.credit(coldkey, s.amount);
                }
            }
            Some(Kind::Register(r)) => {
                let hotkey = hotkey(&r.hotkey)?;
                let slot = self.free_slot(r.subnet)?;
                let burn = self.subnets.get(&r.subnet).map_or(0, |s| s.burn);
                self.debit(&coldkey, burn);
                self.supply.burned = self.supply.burned.saturating_add(burn);
                self.seat(r.subnet, slot, Neuron::new(hotkey, coldkey, self.epoch));
                let max_burn = self.params.max_burn;
                if let Some(subnet) = self.subnets.get_mut(&r.subnet) {
                    subnet.burn = subnet.burn.saturating_mul(2).min(max_burn);
                }
            }
            Some(Kind::DeclareFinalizer(d)) => self.declare(hotkey(&d.hotkey)?, coldkey),
            Some(Kind::UndeclareFinalizer(u)) => self.undeclare(&hotkey(&u.hotkey)?),
            Some(Kind::CreateSubnet(c)) => {
                let lock = self.params.subnet_lock;
                let id = self.subnets.keys().next_back().map_or(1, |&id| id + 1);
                self.debit(&coldkey, lock);
                self.subnets.insert(
                    id,
                    Subnet {
                        name: c.name.clone(),
                        tasks: c.tasks.clone(),
                        owner: Some(coldkey),
                        locked: lock,
                        burn: self.params.min_burn,
                        neurons: Vec::new(),
                    },
                );
            }
        }
        let fee = self.params.tx_fee;
        self.debit(&coldkey, fee);
        self.supply.burned = self.supply.burned.saturating_add(fee);
        self.accounts.entry(coldkey).or_default().nonce = tx.nonce + 1;
        Ok(())
    }

    fn registered(&self, subnet: u32, hotkey: &Key) -> Result<u32, TxError> {
        self.subnets
            .get(&subnet)
            .ok_or(TxError::UnknownSubnet(subnet))?
            .uid_of(hotkey)
            .ok_or(TxError::NotRegistered(subnet))
    }

    fn debit(&mut self, coldkey: &Key, amount: u64) {
        if let Some(account) = self.accounts.get_mut(coldkey) {
            account.balance = account.balance.saturating_sub(amount);
        }
    }

    pub(crate) fn credit(&mut self, coldkey: Key, amount: u64) {
        let account = self.accounts.entry(coldkey).or_default();
        account.balance = account.balance.saturating_add(amount);
    }

    /// The UID a new registration takes: the next one while there is room; when full, the
    /// non-immune neuron with the lowest last emission (ties: older registration, then lower UID).
    fn free_slot(&self, id: u32) -> Result<usize, TxError> {
        let subnet = self.subnets.get(&id).ok_or(TxError::UnknownSubnet(id))?;
        if subnet.neurons.len() < self.params.max_uids as usize {
            return Ok(subnet.neurons.len());
        }
        subnet
            .neurons
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                self.epoch.saturating_sub(n.registered_at) >= self.params.immunity_epochs
            })
            .min_by_key(|(uid, n)| (n.last_emission, n.registered_at, *uid))
            .map(|(uid, _)| uid)
            .ok_or(TxError::SubnetFull(id))
    }

    /// Puts `neuron` at `uid`: a new UID, or a pruned one, whose hotkey's stake on the subnet goes
    /// back to its stakers' balances and whose bonds are cleared.
    fn seat(&mut self, id: u32, uid: usize, neuron: Neuron) {
        let pruned = self
            .subnets
            .get(&id)
            .and_then(|s| s.neurons.get(uid))
            .map(|n| n.hotkey);
        if let Some(old) = pruned {
            let stakers: Vec<(Key, u64)> = self
                .stakes
                .get(&id)
                .and_then(|h| h.get(&old))
                .map(|c| c.iter().map(|(k, v)| (*k, *v)).collect())
                .unwrap_or_default();
            let bonded = self.bonded(&old);
            for (coldkey, amount) in stakers {
                self.take_stake(id, &old, &coldkey, amount);
                if bonded {
                    self.unbond(coldkey, old, amount);
                } else {
                    self.credit(coldkey, amount);
                }
            }
        }
        let Some(subnet) = self.subnets.get_mut(&id) else {
            return;
        };
        let uid32 = u32::try_from(uid).unwrap_or(u32::MAX);
        for other in &mut subnet.neurons {
            other.bonds.retain(|&(j, _)| j != uid32);
        }
        if uid < subnet.neurons.len() {
            subnet.neurons[uid] = neuron;
        } else {
            subnet.neurons.push(neuron);
        }
    }
}
