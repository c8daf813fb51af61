//! Signed transactions: the checks and effects of each kind.

use meshmind_protocols::{Signed, Validate, v1};

use super::{Key, Neuron, ParamError, State, Subnet};

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
    /// No more subnets may be created: at the limit, and every one still immune.
    #[error("at the limit of {0} subnets, and every one is still immune")]
    TooManySubnets(u32),
    /// The signer does not own the subnet or hotkey.
    #[error("the signer does not own it")]
    NotOwner,
    /// Changed too recently; allowed again from the epoch given.
    #[error("rate limited until epoch {until}")]
    RateLimited {
        /// The first epoch it is allowed again.
        until: u64,
    },
    /// A subnet parameter change is refused.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A take above the highest.
    #[error("a take above {max} per mille")]
    TakeTooHigh {
        /// The highest take.
        max: u64,
    },
    /// Stake behind a finalizer leaves only by unstaking, through unbonding.
    #[error("the hotkey is bonded to finalizing: unstake (it unbonds) instead of moving")]
    Bonded,
    /// The new hotkey of a swap is already known to the network.
    #[error("the new hotkey is already in use")]
    HotkeyInUse,
    /// The hotkey is already being swapped this epoch.
    #[error("a swap of the hotkey is pending")]
    SwapPending,
    /// As many hotkey swaps as one epoch takes are pending.
    #[error("{0} hotkey swaps are pending this epoch already")]
    TooManySwaps(usize),
    /// The hotkey was swapped away; it cannot be used again while evidence against it may come.
    #[error("the hotkey was swapped away and is retired for now")]
    HotkeyRetired,
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
        // The cheap checks that make a sender pay come before the ones that read the state.
        tx.verify_signature().map_err(|_| TxError::BadSignature)?;
        if account.balance < self.params.tx_fee {
            return Err(TxError::Insufficient {
                needed: self.params.tx_fee,
                available: account.balance,
            });
        }
        let needed = self.cost(&coldkey, tx)?;
        if needed > account.balance {
            return Err(TxError::Insufficient {
                needed,
                available: account.balance,
            });
        }
        match &tx.kind {
            Some(v1::transaction::Kind::Register(r)) => r
                .verify_consent(&tx.network_id, &tx.coldkey)
                .map_err(|_| TxError::NoHotkeyConsent)?,
            Some(v1::transaction::Kind::DeclareFinalizer(d)) => d
                .verify_consent(&tx.network_id, &tx.coldkey)
                .map_err(|_| TxError::NoHotkeyConsent)?,
            Some(v1::transaction::Kind::SwapHotkey(s)) => s
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
                let hotkey = hotkey(&s.hotkey)?;
                self.registered(s.subnet, &hotkey)?;
                self.check_not_retired(&hotkey)?;
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
                self.check_not_retired(&hotkey)?;
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
                self.check_room()?;
                if self.next_subnet == u32::MAX {
                    return Err(TxError::TooManySubnets(self.params.max_subnets));
                }
                lock
            }
            Some(Kind::SetSubnetParams(p)) => {
                self.changed_params(coldkey, p)?;
                0
            }
            Some(Kind::SetTake(t)) => {
                let hotkey = hotkey(&t.hotkey)?;
                self.check_not_retired(&hotkey)?;
                self.check_take(coldkey, &hotkey, u64::from(t.take_per_mille))?;
                0
            }
            Some(Kind::MoveStake(m)) => {
                let from = (m.from_subnet, hotkey(&m.from_hotkey)?);
                let to = (m.to_subnet, hotkey(&m.to_hotkey)?);
                self.check_move(coldkey, from, to, m.amount)?;
                0
            }
            Some(Kind::SwapHotkey(s)) => {
                self.check_swap(coldkey, &hotkey(&s.old_hotkey)?, &hotkey(&s.hotkey)?)?;
                0
            }
            Some(Kind::DeclareFinalizer(d)) => {
                let hotkey = hotkey(&d.hotkey)?;
                self.check_not_retired(&hotkey)?;
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
                self.record_flow(s.subnet, s.amount.min(i64::MAX as u64) as i64);
            }
            Some(Kind::RemoveStake(s)) => {
                let hotkey = hotkey(&s.hotkey)?;
                self.take_stake(s.subnet, &hotkey, &coldkey, s.amount);
                self.record_flow(s.subnet, -(s.amount.min(i64::MAX as u64) as i64));
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
                if let Some(subnet) = self.subnets.get_mut(&r.subnet) {
                    subnet.burn = subnet.burn.saturating_mul(2).min(subnet.params.max_burn);
                }
            }
            Some(Kind::DeclareFinalizer(d)) => self.declare(hotkey(&d.hotkey)?, coldkey),
            Some(Kind::UndeclareFinalizer(u)) => self.undeclare(&hotkey(&u.hotkey)?),
            Some(Kind::CreateSubnet(c)) => {
                let lock = self.params.subnet_lock;
                if let Some(weakest) = self.check_room()? {
                    self.deregister(weakest);
                }
                let id = self.next_subnet;
                self.next_subnet += 1;
                self.debit(&coldkey, lock);
                let subnet = Subnet::new(
                    c.name.clone(),
                    c.tasks.clone(),
                    Some(coldkey),
                    lock,
                    self.params.subnet_defaults,
                    self.epoch,
                );
                self.subnets.insert(id, subnet);
            }
            Some(Kind::SetSubnetParams(p)) => {
                let next = self.changed_params(&coldkey, p)?;
                let epoch = self.epoch;
                if let Some(subnet) = self.subnets.get_mut(&p.subnet) {
                    subnet.pending = Some(next);
                    subnet.params_changed_at = Some(epoch);
                    for value in &p.values {
                        subnet.changes.insert(value.name.clone(), epoch);
                    }
                }
            }
            Some(Kind::SetTake(t)) => {
                self.set_take(coldkey, hotkey(&t.hotkey)?, u64::from(t.take_per_mille));
            }
            Some(Kind::MoveStake(m)) => {
                let from = (m.from_subnet, hotkey(&m.from_hotkey)?);
                let to = (m.to_subnet, hotkey(&m.to_hotkey)?);
                self.move_stake(coldkey, from, to, m.amount);
            }
            Some(Kind::SwapHotkey(s)) => {
                self.request_swap(coldkey, hotkey(&s.old_hotkey)?, hotkey(&s.hotkey)?);
            }
        }
        let fee = self.params.tx_fee;
        self.debit(&coldkey, fee);
        self.supply.burned = self.supply.burned.saturating_add(fee);
        self.accounts.entry(coldkey).or_default().nonce = tx.nonce + 1;
        Ok(())
    }

    /// The rules `coldkey`'s change `p` gives its subnet from the next epoch: signed by the owner,
    /// `owner_rate_limit` epochs after the last change, every value within bounds, consistent,
    /// and room for the neurons registered.
    fn changed_params(
        &self,
        coldkey: &Key,
        p: &v1::SetSubnetParams,
    ) -> Result<super::SubnetParams, TxError> {
        let subnet = self
            .subnets
            .get(&p.subnet)
            .ok_or(TxError::UnknownSubnet(p.subnet))?;
        if subnet.owner != Some(*coldkey) {
            return Err(TxError::NotOwner);
        }
        if let Some(at) = subnet.params_changed_at {
            let until = at.saturating_add(self.params.owner_rate_limit.max(1));
            if self.epoch < until {
                return Err(TxError::RateLimited { until });
            }
        }
        let values: Vec<(&str, u64)> = p
            .values
            .iter()
            .map(|v| (v.name.as_str(), v.value))
            .collect();
        let next = subnet
            .pending
            .unwrap_or(subnet.params)
            .with(&values, &self.params.bounds)?;
        if (next.max_uids as usize) < subnet.neurons.len() {
            return Err(
                ParamError::Inconsistent("max_uids is below the neurons registered").into(),
            );
        }
        Ok(next)
    }

    pub(super) fn registered(&self, subnet: u32, hotkey: &Key) -> Result<u32, TxError> {
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
        if subnet.neurons.len() < subnet.params.max_uids as usize {
            return Ok(subnet.neurons.len());
        }
        subnet
            .neurons
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                self.epoch.saturating_sub(n.registered_at) >= subnet.params.immunity_epochs
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
