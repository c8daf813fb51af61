//! The validator's loops: challenging miners on a schedule and publishing one committed weight
//! vector per epoch (revealed the next), and looking miners up in the DHT.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshmind_p2p::NetworkHandle;
use meshmind_protocols::{Keypair, v1};
use prost::Message;
use tokio_util::sync::CancellationToken;

use super::gossip::{Arrival, WeightBoard, WeightKind};
use super::service::Validator;
use super::weights::commit;
use crate::clock::now_ms;
use crate::genesis::Genesis;
use crate::state::State;

/// Most rounds of challenges in flight at once.
const MAX_ROUNDS: usize = 4;

/// What the challenge-and-weights loop needs.
pub struct EpochLoop {
    /// The validator.
    pub validator: Arc<Validator>,
    /// Its network.
    pub network: NetworkHandle,
    /// Its hotkey, which signs its weights.
    pub hotkey: Keypair,
    /// The genesis (epoch lengths, network id).
    pub genesis: Genesis,
    /// The subnet.
    pub subnet: u32,
    /// Time between two rounds of challenges.
    pub interval: Duration,
    /// The finalized economy, whose registrations give the miners' chain UIDs.
    pub economy: Option<Arc<Mutex<State>>>,
    /// The node's board, where its own weights are recorded too.
    pub board: Arc<Mutex<WeightBoard>>,
}

impl EpochLoop {
    /// Challenges miners every `interval` and publishes weights once per epoch (commit, then
    /// reveal), over the UIDs the finalized economy registered the miners at, until `cancel`.
    /// Each epoch's commitment is made once and also recorded on the board (gossip does not
    /// deliver a node's own messages back), so this node's snapshots carry its own vector too.
    pub async fn run(self, cancel: CancellationToken) {
        let network_id = self.genesis.network_id;
        let mut own = WeightBoard::default();
        let mut last_epoch = None;
        let mut current: Option<(u64, v1::WeightCommit, v1::WeightReveal)> = None;
        // Rounds of challenges run beside this loop, a new one every `interval`: a round lasts
        // until its slowest miner answers or its deadline passes, and a miner that never answers
        // (a dead one) must neither delay this validator's commitments nor keep its score.
        let mut rounds = tokio::task::JoinSet::new();
        let mut was_permitted = None;
        // The last epoch this validator made a vector for.
        let mut last_made = None;
        loop {
            let permitted = self.follow_registrations();
            if was_permitted != Some(permitted) {
                match permitted {
                    true => tracing::info!(
                        subnet = self.subnet,
                        "validator permit held: weights are published"
                    ),
                    false => tracing::info!(
                        subnet = self.subnet,
                        "no validator permit on the subnet (registered with enough stake?): scoring, not publishing weights"
                    ),
                }
                was_permitted = Some(permitted);
            }
            while let Some(done) = rounds.try_join_next() {
                if let Err(e) = done
                    && e.is_panic()
                {
                    tracing::error!(error = %e, "a round of challenges panicked");
                }
            }
            if rounds.len() < MAX_ROUNDS {
                let validator = self.validator.clone();
                let now = now_ms();
                rounds.spawn(async move {
                    validator.challenge_all(now).await;
                });
            }
            let epoch = self.genesis.epoch_at(now_ms());
            // Only permit holders' weights are taken; others keep scoring until they hold one.
            if !permitted {
                // A reveal kept from before the permit was lost would open nothing now.
                current = None;
                own = WeightBoard::default();
            } else if last_epoch != Some(epoch) {
                let rules = self.rules();
                let open = rules.is_some_and(|(params, _)| !params.commit_reveal);
                // The subnet counts one vector per `weights_rate_limit` epochs: none in between.
                let limited = rules.is_some_and(|(params, last_update)| {
                    let limit = params.weights_rate_limit;
                    let recorded =
                        last_update > 0 && (epoch + 1).saturating_sub(last_update) < limit;
                    let made = last_made.is_some_and(|m: u64| epoch.saturating_sub(m) < limit);
                    recorded || made
                });
                if limited {
                    if let Some((_, _, reveal)) = current.take() {
                        self.record(None, Some(&reveal), epoch);
                    }
                } else if current.as_ref().map(|c| c.0) != Some(epoch) {
                    let weights = self.weights();
                    let mut salt_input = self.hotkey.secret_bytes().to_vec();
                    salt_input.extend_from_slice(&self.subnet.to_be_bytes());
                    salt_input.extend_from_slice(&epoch.to_be_bytes());
                    let salt = *blake3::hash(&salt_input).as_bytes();
                    let (commitment, reveal) =
                        commit(&self.hotkey, network_id, self.subnet, epoch, &weights, salt);
                    let previous = current.take().map(|(_, _, reveal)| reveal);
                    if open {
                        // A vector without a commitment is seen at once.
                        for r in previous.iter().chain([&reveal]) {
                            self.record(None, Some(r), epoch);
                        }
                    } else {
                        self.record(Some(&commitment), previous.as_ref(), epoch);
                    }
                    last_made = Some(epoch);
                    current = Some((epoch, commitment, reveal));
                }
                let published = match current.clone() {
                    Some((made, commitment, reveal)) if made == epoch => match open {
                        true => own.publish_open(&self.network, self.subnet, reveal).await,
                        false => {
                            own.publish_epoch(&self.network, self.subnet, commitment, reveal)
                                .await
                        }
                    },
                    _ => own.flush(&self.network, self.subnet).await,
                };
                match published {
                    Ok(()) => last_epoch = Some(epoch),
                    Err(e) => tracing::debug!(error = %e, epoch, "weights not published yet"),
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// Tells the validator which hotkeys the finalized economy registered on the subnet, so ads
    /// of others count only as a few candidates, and which validate with a permit, so it knows
    /// its share of each miner's capacity; returns whether this validator holds a permit there
    /// (true when the economy is not known).
    fn follow_registrations(&self) -> bool {
        let Some(economy) = &self.economy else {
            return true;
        };
        let own = crate::state::Key(self.hotkey.public().to_bytes());
        let (registered, permits, permitted): (Vec<meshmind_protocols::PublicKey>, _, _) = {
            let state = economy.lock().unwrap_or_else(|p| p.into_inner());
            let registered = state
                .subnets
                .get(&self.subnet)
                .map(|chain| {
                    chain
                        .neurons
                        .iter()
                        .filter_map(|n| meshmind_protocols::PublicKey::from_bytes(&n.hotkey.0).ok())
                        .collect()
                })
                .unwrap_or_default();
            let permitted = state.permits(self.subnet).iter().any(|(k, _)| *k == own);
            (registered, state.validators(self.subnet), permitted)
        };
        self.validator.set_registered(registered);
        self.validator.set_permits(&permits);
        permitted
    }

    /// This epoch's weight vector, over chain UIDs when the economy is known, fitted to the
    /// subnet's largest share.
    fn weights(&self) -> Vec<(u32, u16)> {
        match &self.economy {
            Some(economy) => {
                let state = economy.lock().unwrap_or_else(|p| p.into_inner());
                state
                    .subnets
                    .get(&self.subnet)
                    .map(|chain| {
                        let row = self.validator.chain_weights(chain);
                        crate::state::fit_to_max_weight(&chain.params, &row, chain.neurons.len())
                    })
                    .unwrap_or_default()
            }
            None => self.validator.weights(),
        }
    }

    /// The subnet's rules and the epoch this validator's last vector was recorded there, when
    /// the economy is known.
    fn rules(&self) -> Option<(crate::state::SubnetParams, u64)> {
        let economy = self.economy.as_ref()?;
        let state = economy.lock().unwrap_or_else(|p| p.into_inner());
        let chain = state.subnets.get(&self.subnet)?;
        let own = crate::state::Key(self.hotkey.public().to_bytes());
        let last_update = chain
            .uid_of(&own)
            .and_then(|uid| chain.neurons.get(uid as usize))
            .map_or(0, |n| n.last_update);
        Some((chain.params, last_update))
    }

    /// Records this node's own commitment (if any) and a reveal on the board.
    fn record(
        &self,
        commitment: Option<&v1::WeightCommit>,
        reveal: Option<&v1::WeightReveal>,
        epoch: u64,
    ) {
        let mut board = self.board.lock().unwrap_or_else(|p| p.into_inner());
        let own = commitment
            .map(|c| (WeightKind::Commit, c.encode_to_vec()))
            .into_iter()
            .chain(reveal.map(|r| (WeightKind::Reveal, r.encode_to_vec())));
        for (kind, bytes) in own {
            let at = Arrival {
                subnet: self.subnet,
                epoch,
            };
            if let Err(e) = board.on_message(kind, &bytes, at) {
                tracing::warn!(error = %e, epoch, "own weights not recorded");
            }
        }
    }
}

/// Looks the subnet's miners of `tasks` up in the DHT every `every`, until `cancel`.
pub async fn discover(
    validator: Arc<Validator>,
    tasks: Vec<String>,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let found = tokio::select! {
            () = cancel.cancelled() => return,
            found = validator.discover(&tasks, now_ms()) => found,
        };
        if found > 0 {
            tracing::info!(ads = found, "miners found through the DHT");
        }
    }
}
