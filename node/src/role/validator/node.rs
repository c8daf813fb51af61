//! The validator as a node service: checks the subnet's capability ads, routes clients' queries,
//! and runs its challenge-and-weights and discovery loops.

use std::sync::Arc;
use std::time::Duration;

use meshmind_p2p::{GossipMessage, InboundQuery};
use tokio_util::sync::CancellationToken;

use super::epoch::{EpochLoop, discover};
use super::service::Validator;
use crate::clock::now_ms;
use crate::service::{Service, ServiceFuture};
use crate::topics::Topic;

/// A validator, its loops, and the tasks it discovers miners for, as one service of a node.
pub struct ValidatorService {
    validator: Arc<Validator>,
    subnet: u32,
    epoch: std::sync::Mutex<Option<EpochLoop>>,
    discovery: Option<(Vec<String>, Duration)>,
}

impl ValidatorService {
    /// `epoch.validator` on `epoch.subnet`, looking miners of `discovery.0` up every
    /// `discovery.1` if given.
    pub fn new(epoch: EpochLoop, discovery: Option<(Vec<String>, Duration)>) -> Self {
        Self {
            validator: epoch.validator.clone(),
            subnet: epoch.subnet,
            epoch: std::sync::Mutex::new(Some(epoch)),
            discovery,
        }
    }
}

impl Service for ValidatorService {
    fn name(&self) -> &'static str {
        "validator"
    }

    fn topics(&self) -> Vec<Topic> {
        vec![Topic::Caps(self.subnet)]
    }

    fn answers_queries(&self) -> bool {
        true
    }

    fn on_gossip(&self, _topic: Topic, message: GossipMessage) {
        self.validator.handle_ad_gossip(message, now_ms());
    }

    fn on_query(&self, query: InboundQuery) {
        let validator = self.validator.clone();
        tokio::spawn(async move { validator.serve(query, now_ms()).await });
    }

    fn run(self: Arc<Self>, cancel: CancellationToken) -> ServiceFuture {
        let epoch = self.epoch.lock().unwrap_or_else(|p| p.into_inner()).take();
        let discovery = self.discovery.clone();
        let validator = self.validator.clone();
        Box::pin(async move {
            let discovery = async {
                if let Some((tasks, every)) = discovery {
                    discover(validator, tasks, every, cancel.clone()).await;
                }
            };
            let epochs = async {
                if let Some(epoch) = epoch {
                    epoch.run(cancel.clone()).await;
                }
            };
            tokio::join!(discovery, epochs);
        })
    }
}
