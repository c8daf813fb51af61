//! The validator as a node service: checks the capability ads of the subnets it validates, routes
//! clients' queries to the validator of their subnet, runs each subnet's challenge-and-weights and
//! discovery loops, and takes up subnets created after it started.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshmind_p2p::{GossipMessage, InboundQuery, NetworkHandle};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::epoch::{EpochLoop, discover};
use super::service::Validator;
use super::set::Validators;
use crate::clock::now_ms;
use crate::service::{Service, ServiceFuture};
use crate::state::State;
use crate::topics::{Topic, TopicKind};

/// How often the finalized economy is read for subnets created since.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// Builds what a validator runs for a subnet: the validator from the subnet's tasks, and its
/// epoch loop.
pub trait SubnetValidator: Send + Sync {
    /// The validator of `subnet`, whose tasks are `tasks`.
    fn validator(&self, subnet: u32, tasks: Vec<String>) -> Validator;
    /// The epoch loop of `validator`.
    fn epoch_loop(&self, validator: Arc<Validator>) -> EpochLoop;
}

/// How a node takes up subnets created after it started (when its config lists none).
pub struct Follow {
    /// The finalized economy, read for its subnets.
    pub economy: Arc<Mutex<State>>,
    /// Where the new subnets' caps topics are subscribed.
    pub network: NetworkHandle,
    /// What to run for each.
    pub build: Box<dyn SubnetValidator>,
}

/// A node's validators, their loops, and how often they look miners up, as one service.
pub struct ValidatorService {
    validators: Arc<Validators>,
    epochs: Mutex<Vec<EpochLoop>>,
    discovery: Option<Duration>,
    follow: Option<Follow>,
}

impl ValidatorService {
    /// `validators` with the epoch loop of each (`epochs`), each looking the miners of its
    /// subnet's tasks up every `discovery` if given; with `follow`, subnets the finalized economy
    /// gains later are validated too.
    pub fn new(
        validators: Arc<Validators>,
        epochs: Vec<EpochLoop>,
        discovery: Option<Duration>,
        follow: Option<Follow>,
    ) -> Self {
        Self {
            validators,
            epochs: Mutex::new(epochs),
            discovery,
            follow,
        }
    }

    /// Starts the loops of one subnet's validator.
    fn spawn(&self, loops: &mut JoinSet<()>, epoch: EpochLoop, cancel: &CancellationToken) {
        if let Some(every) = self.discovery {
            let tasks = epoch.validator.tasks().to_vec();
            loops.spawn(discover(
                epoch.validator.clone(),
                tasks,
                every,
                cancel.clone(),
            ));
        }
        loops.spawn(epoch.run(cancel.clone()));
    }

    /// Takes up every subnet of the finalized economy not validated yet; returns the loops of
    /// each new one.
    async fn take_up(&self, follow: &Follow) -> Vec<EpochLoop> {
        let subnets: BTreeMap<u32, Vec<String>> = follow
            .economy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .subnets
            .iter()
            .map(|(&id, s)| (id, s.tasks.clone()))
            .collect();
        let known = self.validators.subnets();
        let mut started = Vec::new();
        for (subnet, tasks) in subnets {
            if known.contains(&subnet) {
                continue;
            }
            // Subscribed first, so no ad of the new subnet's miners is missed once it is added.
            if let Err(e) = follow
                .network
                .subscribe(&Topic::Caps(subnet).to_string())
                .await
            {
                tracing::warn!(subnet, error = %e, "cannot follow a new subnet's ads");
                continue;
            }
            if let Some(validator) = self.validators.add(follow.build.validator(subnet, tasks)) {
                tracing::info!(subnet, "validating a subnet created since start");
                started.push(follow.build.epoch_loop(validator));
            }
        }
        started
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

    fn topic_kinds(&self) -> Vec<TopicKind> {
        match self.follow {
            Some(_) => vec![TopicKind::Caps],
            None => Vec::new(),
        }
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
        Box::pin(async move {
            let mut loops = JoinSet::new();
            for epoch in epochs {
                self.spawn(&mut loops, epoch, &cancel);
            }
            let mut follow = tokio::time::interval(FOLLOW_EVERY);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    Some(done) = loops.join_next(), if !loops.is_empty() => {
                        if let Err(e) = done
                            && e.is_panic()
                        {
                            tracing::error!(error = %e, "a validator loop panicked");
                        }
                    }
                    _ = follow.tick(), if self.follow.is_some() => {
                        if let Some(rule) = &self.follow {
                            for epoch in self.take_up(rule).await {
                                self.spawn(&mut loops, epoch, &cancel);
                            }
                        }
                    }
                }
            }
            // Every loop watches the same token: wait for them to return.
            while loops.join_next().await.is_some() {}
        })
    }
}
