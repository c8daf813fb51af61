//! The validators of the subnets one node validates: one [`Validator`] per subnet, sharing the
//! node's hotkey, its query plane and each client's query rate.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use meshmind_p2p::{InboundQuery, RateLimiter};

use super::router::admit_inbound;
use super::service::{Client, Validator, lock};
use crate::role::admission::{AdmissionError, read_query};

/// One validator per subnet validated, as one node runs them; subnets may be added while it runs.
pub struct Validators {
    by_subnet: RwLock<BTreeMap<u32, Arc<Validator>>>,
    /// Every client's queries, whichever subnet they are for (the first validator's limiter).
    clients: Mutex<Option<Arc<Mutex<RateLimiter<Client>>>>>,
}

impl Validators {
    /// The validators given, one per subnet (a later one of the same subnet replaces an earlier);
    /// every client's queries count against one rate, the first validator's, whichever subnet
    /// they are for.
    pub fn new(validators: impl IntoIterator<Item = Validator>) -> Self {
        let mut shared = None;
        let by_subnet = validators
            .into_iter()
            .map(|mut validator| {
                let clients = shared.get_or_insert_with(|| validator.clients.clone());
                validator.clients = clients.clone();
                (validator.config.subnet, Arc::new(validator))
            })
            .collect();
        Self {
            by_subnet: RwLock::new(by_subnet),
            clients: Mutex::new(shared),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u32, Arc<Validator>>> {
        self.by_subnet.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes up `validator`'s subnet, sharing the clients' rate with the others; `None` if that
    /// subnet is validated already.
    pub fn add(&self, mut validator: Validator) -> Option<Arc<Validator>> {
        let mut by_subnet = self.by_subnet.write().unwrap_or_else(|p| p.into_inner());
        if by_subnet.contains_key(&validator.config.subnet) {
            return None;
        }
        // The first validator's limiter is everyone's, also when a node started with none.
        let mut shared = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        validator.clients = shared
            .get_or_insert_with(|| validator.clients.clone())
            .clone();
        let validator = Arc::new(validator);
        by_subnet.insert(validator.config.subnet, validator.clone());
        Some(validator)
    }

    /// The validator of `subnet`, if it is validated here.
    pub fn get(&self, subnet: u32) -> Option<Arc<Validator>> {
        self.read().get(&subnet).cloned()
    }

    /// Every validator, by subnet.
    pub fn all(&self) -> Vec<(u32, Arc<Validator>)> {
        self.read().iter().map(|(&s, v)| (s, v.clone())).collect()
    }

    /// The subnets validated, in order.
    pub fn subnets(&self) -> Vec<u32> {
        self.read().keys().copied().collect()
    }

    fn first(&self) -> Option<Arc<Validator>> {
        self.read().values().next().cloned()
    }

    /// The subnet that serves `task` best here: the validated one where most live miners serve
    /// it now, else one whose tasks name it, else the lowest (ties go to the lowest).
    pub fn subnet_for(&self, task: &str, now_ms: u64) -> Option<u32> {
        self.read()
            .iter()
            .map(|(&subnet, v)| {
                let serving = lock(&v.metagraph)
                    .miners()
                    .filter(|m| m.serves(task, now_ms))
                    .count();
                let listed = v.config.tasks.iter().any(|t| t == task);
                ((serving, listed, std::cmp::Reverse(subnet)), subnet)
            })
            .max()
            .map(|(_, subnet)| subnet)
    }

    /// Takes one of `client`'s query tokens; false when it is over its rate.
    pub fn admit_client(&self, client: Client) -> bool {
        self.first().is_some_and(|v| v.admit_client(client))
    }

    /// Takes `n` of `client`'s query tokens, all or none; false (taking none) when it has fewer.
    pub fn admit_client_n(&self, client: Client, n: u32) -> bool {
        self.first().is_some_and(|v| v.admit_client_n(client, n))
    }

    /// Answers a client's inbound query through the validator of its subnet (streamed through,
    /// when asked); a query for a subnet not validated here is refused so.
    pub async fn serve(&self, inbound: InboundQuery, now_ms: u64) {
        let Some(first) = self.first() else {
            return;
        };
        let Some((payload, responder)) = admit_inbound(inbound, |c| self.admit_client(c)).await
        else {
            return;
        };
        let query = match read_query(&payload) {
            Ok(query) => query,
            Err(refusal) => return first.respond(Err(refusal), responder, now_ms).await,
        };
        match self.get(query.subnet) {
            Some(validator) => {
                let admitted = validator.check(query);
                validator.respond(admitted, responder, now_ms).await;
            }
            None => {
                let refusal = AdmissionError::UnknownSubnet(query.subnet);
                first.respond(Err(refusal), responder, now_ms).await;
            }
        }
    }
}
