//! The validator as a node service: checks the capability ads of the subnets it validates, routes
//! clients' queries to the validator of their subnet, and runs each subnet's
//! challenge-and-weights and discovery loops.

use std::sync::Arc;
use std::time::Duration;

use meshmind_p2p::{GossipMessage, InboundQuery};
use tokio_util::sync::CancellationToken;

use super::epoch::{EpochLoop, discover};
use super::set::Validators;
use crate::clock::now_ms;
use crate::service::{Service, ServiceFuture};
use crate::topics::Topic;

/// A node's validators, their loops, and how often they look miners up, as one service.
pub struct ValidatorService {
    validators: Arc<Validators>,
    epochs: std::sync::Mutex<Vec<EpochLoop>>,
    discovery: Option<Duration>,
}

impl ValidatorService {
    /// `validators` with the epoch loop of each (`epochs`), each looking the miners of its
    /// subnet's tasks up every `discovery` if given.
    pub fn new(
        validators: Arc<Validators>,
        epochs: Vec<EpochLoop>,
        discovery: Option<Duration>,
    ) -> Self {
        Self {
            validators,
            epochs: std::sync::Mutex::new(epochs),
            discovery,
        }
    }
}

impl Service for ValidatorService {
    fn name(&self) -> &'static str {
        "validator"
    }

    fn topics(&self) -> Vec<Topic> {
        self.validators
            .subnets()
            .into_iter()
            .map(Topic::Caps)
            .collect()
    }

    fn answers_queries(&self) -> bool {
        true
    }

    fn on_gossip(&self, topic: Topic, message: GossipMessage) {
        match topic.subnet().and_then(|s| self.validators.get(s)) {
            Some(validator) => {
                validator.handle_ad_gossip(message, now_ms());
            }
            None => message.validation.ignore(),
        }
    }

    fn on_query(&self, query: InboundQuery) {
        let validators = self.validators.clone();
        tokio::spawn(async move { validators.serve(query, now_ms()).await });
    }

    fn run(self: Arc<Self>, cancel: CancellationToken) -> ServiceFuture {
        let epochs = std::mem::take(&mut *self.epochs.lock().unwrap_or_else(|p| p.into_inner()));
        let validators = self.validators.clone();
        let discovery = self.discovery;
        Box::pin(async move {
            let mut loops = tokio::task::JoinSet::new();
            if let Some(every) = discovery {
                for (_, validator) in validators.iter() {
                    let tasks = validator.tasks().to_vec();
                    loops.spawn(discover(validator.clone(), tasks, every, cancel.clone()));
                }
            }
            for epoch in epochs {
                loops.spawn(epoch.run(cancel.clone()));
            }
            while let Some(done) = loops.join_next().await {
                if let Err(e) = done
                    && e.is_panic()
                {
                    tracing::error!(error = %e, "a validator loop panicked");
                }
            }
        })
    }
}
