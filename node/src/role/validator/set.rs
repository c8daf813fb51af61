//! The validators of the subnets one node validates: one [`Validator`] per subnet, sharing the
//! node's hotkey, its query plane and each client's query rate.

use std::collections::BTreeMap;
use std::sync::Arc;

use meshmind_p2p::InboundQuery;

use super::router::admit_inbound;
use super::service::{Client, Validator, lock};
use crate::role::admission::{AdmissionError, read_query};

/// One validator per subnet validated, as one node runs them.
pub struct Validators {
    by_subnet: BTreeMap<u32, Arc<Validator>>,
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
        Self { by_subnet }
    }

    /// The validator of `subnet`, if it is validated here.
    pub fn get(&self, subnet: u32) -> Option<&Arc<Validator>> {
        self.by_subnet.get(&subnet)
    }

    /// Every validator, by subnet.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Arc<Validator>)> {
        self.by_subnet.iter().map(|(&subnet, v)| (subnet, v))
    }

    /// The subnets validated, in order.
    pub fn subnets(&self) -> Vec<u32> {
        self.by_subnet.keys().copied().collect()
    }

    /// The subnet that serves `task` best here: the validated one where most live miners serve
    /// it now, else one whose tasks name it, else the lowest (ties go to the lowest).
    pub fn subnet_for(&self, task: &str, now_ms: u64) -> Option<u32> {
        self.by_subnet
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
        self.by_subnet
            .values()
            .next()
            .is_some_and(|v| v.admit_client(client))
    }

    /// Takes `n` of `client`'s query tokens, all or none; false (taking none) when it has fewer.
    pub fn admit_client_n(&self, client: Client, n: u32) -> bool {
        self.by_subnet
            .values()
            .next()
            .is_some_and(|v| v.admit_client_n(client, n))
    }

    /// Answers a client's inbound query through the validator of its subnet (streamed through,
    /// when asked); a query for a subnet not validated here is refused so.
    pub async fn serve(&self, inbound: InboundQuery, now_ms: u64) {
        let Some(first) = self.by_subnet.values().next() else {
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
        match self.by_subnet.get(&query.subnet) {
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
