//! Ads and weights over gossip between real nodes on 127.0.0.1: a miner's ads reach two validators,
//! one validator's committed and revealed weights become visible to the other.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshmind_node::clock::now_ms;
use meshmind_node::role::miner::{Miner, MinerConfig, Reference};
use meshmind_node::role::validator::gossip::{
    Arrival, KEEP_BEHIND, WeightBoard, WeightKind, WeightsError, WeightsEvent,
};
use meshmind_node::role::validator::weights::{RevealError, commit};
use meshmind_node::role::validator::{Validator, ValidatorConfig};
use meshmind_node::topics::Topic;
use meshmind_p2p::{Network, NetworkConfig, NetworkError, NetworkEvent, NetworkHandle};
use meshmind_protocols::{Keypair, NetworkId, v1};
use prost::Message;

const NET: NetworkId = NetworkId::new([6; 32]);

async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..300 {
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn publish(handle: &NetworkHandle, topic: &str, data: Vec<u8>) {
    wait_for("a subscribed peer", || {
        let data = data.clone();
        async move {
            match handle.publish(topic, data).await {
                Ok(()) => Some(()),
                Err(NetworkError::NoPeers) => None,
                Err(e) => panic!("publish: {e}"),
            }
        }
    })
    .await
}

struct ValidatorNode {
    handle: NetworkHandle,
    key: Keypair,
    validator: Arc<Validator>,
    board: Arc<Mutex<WeightBoard>>,
}

/// The gossip test's clock: epoch 2 (it publishes epochs 1 and 2).
const NOW: Arrival = Arrival {
    subnet: 1,
    epoch: 2,
};

fn start_validator(
    key: Keypair,
    setters: &[Keypair],
    boot: Option<meshmind_p2p::Multiaddr>,
) -> ValidatorNode {
    let mut config = NetworkConfig::local("weights");
    config.bootnodes = boot.into_iter().collect();
    let (handle, mut events) = Network::spawn(config, &key).expect("network starts");
    let validator = Arc::new(Validator::new(
        ValidatorConfig::new(NET, 1),
        &key,
        handle.clone(),
    ));
    let board = Arc::new(Mutex::new(WeightBoard::new(
        setters.iter().map(Keypair::public),
    )));
    let (v, b) = (validator.clone(), board.clone());
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetworkEvent::Gossip(message) = event {
                let topic = message.topic.parse::<Topic>().expect("a known topic");
                match WeightKind::of(topic) {
                    Some((kind, 1)) => {
                        b.lock().expect("board").handle_gossip(kind, message, NOW);
                    }
                    _ => {
                        assert_eq!(topic, Topic::Caps(1));
                        v.handle_ad_gossip(message, now_ms());
                    }
                }
            }
        }
    });
    ValidatorNode {
        handle,
        key,
        validator,
        board,
    }
}

async fn quic_addr(handle: &NetworkHandle) -> meshmind_p2p::Multiaddr {
    wait_for("a listen address", || async {
        handle
            .listen_addrs()
            .await
            .ok()?
            .into_iter()
            .find(|a| a.to_string().contains("quic-v1"))
            .and_then(|a| a.with_p2p(handle.local_peer_id()).ok())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ads_and_weights_travel_by_gossip_and_reveals_open_commitments() {
    let keys = [Keypair::generate(), Keypair::generate()].map(|k| k.expect("os random"));
    let a = start_validator(keys[0].clone(), &keys, None);
    let boot = quic_addr(&a.handle).await;
    let b = start_validator(keys[1].clone(), &keys, Some(boot.clone()));

    let miner_key = Keypair::generate().expect("os random");
    let mut miner_config = NetworkConfig::local("weights");
    miner_config.bootnodes = vec![boot];
    let (miner_net, mut miner_events) = Network::spawn(miner_config, &miner_key).expect("starts");
    let miner = Arc::new(Miner::new(
        MinerConfig::new(
            NET,
            1,
            Reference::TASKS.iter().map(|t| t.to_string()).collect(),
        ),
        miner_key.clone(),
        Arc::new(Reference),
    ));
    let serving = miner.clone();
    tokio::spawn(async move {
        while let Some(event) = miner_events.recv().await {
            if let NetworkEvent::InboundQuery(q) = event {
                serving.serve(q).await;
            }
        }
    });

    for handle in [&a.handle, &b.handle, &miner_net] {
        for topic in Topic::subnet_topics(1) {
            handle
                .subscribe(&topic.to_string())
                .await
                .expect("subscribe");
        }
    }
    for handle in [&a.handle, &b.handle] {
        wait_for("gossip meshes", || async {
            (handle
                .mesh_peers(&Topic::Caps(1).to_string())
                .await
                .ok()?
                .len()
                >= 2)
                .then_some(())
        })
        .await;
    }

    // The miner advertises; both validators learn it from gossip.
    let query_addr = miner_net.query_addr().expect("query plane").to_string();
    for ad in miner.capability_ads(now_ms(), 600_000, &[], &query_addr) {
        publish(&miner_net, &Topic::Caps(1).to_string(), ad.encode_to_vec()).await;
    }
    for v in [&a, &b] {
        wait_for("the miner in the metagraph", || async {
            let graph = v.validator.metagraph();
            (graph.serving("sort", now_ms()).count() == 1).then_some(())
        })
        .await;
    }

    // A scores the miner and publishes epoch 1, then epoch 2 (which reveals epoch 1).
    a.validator.challenge_all(now_ms()).await;
    let weights = a.validator.weights();
    assert_eq!(weights.len(), 1, "one miner weighted: {weights:?}");
    let mut own = WeightBoard::default();
    let (commitment, reveal) = commit(&a.key, NET, 1, 1, &weights, [1; 32]);
    own.publish_epoch(&a.handle, 1, commitment, reveal)
        .await
        .expect("epoch 1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (commitment, reveal) = commit(&a.key, NET, 1, 2, &weights, [2; 32]);
    own.publish_epoch(&a.handle, 1, commitment, reveal)
        .await
        .expect("epoch 2");
    let seen = wait_for("B to see A's revealed weights", || async {
        let revealed = b.board.lock().expect("board").revealed(1, 1);
        revealed.get(&a.key.public()).cloned()
    })
    .await;
    assert_eq!(seen, weights);
    assert!(
        b.board.lock().expect("board").revealed(2, 1).is_empty(),
        "epoch 2 is committed, not revealed"
    );

    for handle in [&a.handle, &b.handle, &miner_net] {
        handle.shutdown().await;
    }
}

#[test]
fn a_reveal_that_does_not_match_is_refused() {
    let key = Keypair::from_secret(&[4; 32]);
    let (commitment, reveal) = commit(&key, NET, 1, 3, &[(0, 65535)], [7; 32]);
    let mut board = WeightBoard::new([key.public()]);
    assert!(
        matches!(
            board.on_message(WeightKind::Reveal, &reveal.encode_to_vec(), at(3)),
            Err(WeightsError::NoCommitment)
        ),
        "reveal before commit"
    );
    board
        .on_message(WeightKind::Commit, &commitment.encode_to_vec(), at(3))
        .expect("commit");
    let (_, other) = commit(&key, NET, 1, 3, &[(0, 100)], [7; 32]);
    assert!(
        matches!(
            board.on_message(WeightKind::Reveal, &other.encode_to_vec(), at(3)),
            Err(WeightsError::Reveal(RevealError::WrongHash))
        ),
        "different weights"
    );
    assert!(matches!(
        board.on_message(WeightKind::Reveal, b"garbage", at(3)),
        Err(WeightsError::Decode(_))
    ));
    board
        .on_message(WeightKind::Reveal, &reveal.encode_to_vec(), at(3))
        .expect("the real reveal");
    assert_eq!(
        board.revealed(3, 1).get(&key.public()),
        Some(&vec![(0, 65535)])
    );
}

#[test]
fn a_second_different_commitment_is_evidence_and_the_first_stands() {
    let key = Keypair::from_secret(&[5; 32]);
    let (first, reveal) = commit(&key, NET, 1, 4, &[(0, 65535)], [7; 32]);
    let (second, _) = commit(&key, NET, 1, 4, &[(0, 1)], [7; 32]);
    let mut board = WeightBoard::new([key.public()]);
    board
        .on_message(WeightKind::Commit, &first.encode_to_vec(), at(4))
        .expect("first");
    assert!(
        matches!(
            board.on_message(WeightKind::Commit, &first.encode_to_vec(), at(4)),
            Ok(WeightsEvent::Committed)
        ),
        "a repeat is no equivocation"
    );
    let Ok(WeightsEvent::Equivocated(evidence)) =
        board.on_message(WeightKind::Commit, &second.encode_to_vec(), at(4))
    else {
        panic!("a second commitment must be evidence");
    };
    let Some(v1::evidence::Kind::DuplicateWeightCommit(d)) = evidence.kind else {
        panic!("wrong evidence kind");
    };
    assert_eq!(d.first, Some(first));
    assert_eq!(d.second, Some(second));
    board
        .on_message(WeightKind::Reveal, &reveal.encode_to_vec(), at(4))
        .expect("the first commitment still opens");
}

fn at(epoch: u64) -> Arrival {
    Arrival { subnet: 1, epoch }
}

/// Once the finalized economy names each subnet's permit holders, a key takes part in the
/// weights only of subnets where it holds a permit (and a key it names is let in there).
#[test]
fn weights_are_taken_from_each_subnets_permit_holders() {
    let (genesis_key, newcomer) = (
        Keypair::from_secret(&[10; 32]),
        Keypair::from_secret(&[11; 32]),
    );
    let mut board = WeightBoard::new([genesis_key.public()]);
    let on = |subnet| Arrival { subnet, epoch: 4 };
    let holder = |k: &Keypair| meshmind_node::state::Key(k.public().to_bytes());
    let permits = std::collections::BTreeMap::from([
        (1, [holder(&genesis_key), holder(&newcomer)].into()),
        (2, [holder(&newcomer)].into()),
    ]);
    board.set_permits(&permits);
    for (key, subnet, taken) in [
        (&genesis_key, 1, true),
        (&newcomer, 1, true),
        (&newcomer, 2, true),
        (&genesis_key, 2, false),
    ] {
        let (c, _) = commit(key, NET, subnet, 4, &[(0, 1)], [5; 32]);
        let result = board.on_message(WeightKind::Commit, &c.encode_to_vec(), on(subnet));
        match taken {
            true => assert!(matches!(result, Ok(WeightsEvent::Committed)), "{result:?}"),
            false => assert!(
                matches!(result, Err(WeightsError::NotASetter)),
                "no permit on subnet {subnet}: {result:?}"
            ),
        }
    }
}

/// One validator commits one vector per subnet each epoch: the vectors of two subnets stand side
/// by side (neither is a second commitment of the other), each opens on its own subnet, and a
/// second different vector on one subnet is still evidence.
#[test]
fn one_validator_commits_once_per_subnet() {
    let key = Keypair::from_secret(&[9; 32]);
    let mut board = WeightBoard::new([key.public()]);
    let on = |subnet| Arrival { subnet, epoch: 4 };
    let (c1, r1) = commit(&key, NET, 1, 4, &[(0, 65535)], [1; 32]);
    let (c2, r2) = commit(&key, NET, 2, 4, &[(3, 65535)], [2; 32]);
    for (c, subnet) in [(&c1, 1), (&c2, 2)] {
        assert!(matches!(
            board.on_message(WeightKind::Commit, &c.encode_to_vec(), on(subnet)),
            Ok(WeightsEvent::Committed)
        ));
    }
    for (r, subnet) in [(&r1, 1), (&r2, 2)] {
        board
            .on_message(WeightKind::Reveal, &r.encode_to_vec(), on(subnet))
            .expect("each reveal opens its own subnet's commitment");
    }
    assert_eq!(
        board.revealed(4, 1).get(&key.public()),
        Some(&vec![(0, 65535)])
    );
    assert_eq!(
        board.revealed(4, 2).get(&key.public()),
        Some(&vec![(3, 65535)])
    );
    assert_eq!(board.reveals(4).len(), 2, "a snapshot carries both");
    let (again, _) = commit(&key, NET, 2, 4, &[(3, 1)], [3; 32]);
    assert!(matches!(
        board.on_message(WeightKind::Commit, &again.encode_to_vec(), on(2)),
        Ok(WeightsEvent::Equivocated(_))
    ));
}

/// The weight-board lockout: a burst of commitments for far-future epochs, from a validator and
/// from keys outside the set, must not keep an honest commitment out.
#[test]
fn far_future_and_foreign_commitments_cannot_fill_the_board() {
    let honest = Keypair::from_secret(&[6; 32]);
    let byzantine = Keypair::from_secret(&[7; 32]);
    let mut board = WeightBoard::new([honest.public(), byzantine.public()]);
    for epoch in 100..164 {
        let (c, _) = commit(&byzantine, NET, 1, epoch, &[(0, 1)], [1; 32]);
        let refused = board
            .on_message(WeightKind::Commit, &c.encode_to_vec(), at(10))
            .expect_err("a far-future commitment is not kept");
        assert!(
            matches!(refused, WeightsError::OutOfWindow { epoch: e, now: 10 } if e == epoch),
            "{refused:?}"
        );
        assert!(!refused.penalise(), "late or early is not a fault");
    }
    for n in 0..64u8 {
        let stranger = Keypair::from_secret(&[100 + n; 32]);
        let (c, _) = commit(&stranger, NET, 1, 10, &[(0, 1)], [1; 32]);
        let refused = board
            .on_message(WeightKind::Commit, &c.encode_to_vec(), at(10))
            .expect_err("a key outside the set is refused");
        assert!(matches!(refused, WeightsError::NotASetter), "{refused:?}");
        assert!(!refused.penalise(), "dropped, not held against the relay");
    }
    let (other_subnet, _) = commit(&honest, NET, 2, 10, &[(0, 1)], [1; 32]);
    assert!(matches!(
        board.on_message(WeightKind::Commit, &other_subnet.encode_to_vec(), at(10)),
        Err(WeightsError::WrongSubnet { found: 2, topic: 1 })
    ));
    // The honest validator's commitment and reveal still go through, and only it is visible.
    let (c, r) = commit(&honest, NET, 1, 10, &[(0, 65535)], [2; 32]);
    board
        .on_message(WeightKind::Commit, &c.encode_to_vec(), at(10))
        .expect("an honest commitment");
    board
        .on_message(WeightKind::Reveal, &r.encode_to_vec(), at(11))
        .expect("its reveal");
    assert_eq!(board.revealed(10, 1).len(), 1);
    for epoch in 100..164 {
        assert!(board.revealed(epoch, 1).is_empty() && board.reveals(epoch).is_empty());
    }
}

/// Commitments of the current epoch and its neighbours are kept; epochs more than
/// `KEEP_BEHIND` old are forgotten as the clock moves on.
#[test]
fn the_board_keeps_a_window_of_epochs() {
    let key = Keypair::from_secret(&[8; 32]);
    let mut board = WeightBoard::new([key.public()]);
    for epoch in [9, 10, 11] {
        let (c, r) = commit(&key, NET, 1, epoch, &[(0, 1)], [3; 32]);
        board
            .on_message(WeightKind::Commit, &c.encode_to_vec(), at(10))
            .unwrap_or_else(|e| panic!("epoch {epoch} is in the window: {e}"));
        board
            .on_message(WeightKind::Reveal, &r.encode_to_vec(), at(11))
            .expect("its reveal");
    }
    board.advance_to(9 + KEEP_BEHIND);
    assert_eq!(board.revealed(9, 1).len(), 1, "still in the window");
    board.advance_to(10 + KEEP_BEHIND);
    assert!(board.revealed(9, 1).is_empty(), "forgotten");
    assert_eq!(board.revealed(10, 1).len(), 1);
}

/// On a subnet whose owner turned commit-reveal off, a permit holder's vector is taken without a
/// commitment (checked as one would be); elsewhere a reveal still needs its commitment.
#[test]
fn vectors_come_without_commitments_where_commit_reveal_is_off() {
    let (holder, stranger) = (
        Keypair::from_secret(&[12; 32]),
        Keypair::from_secret(&[13; 32]),
    );
    let subnet = |id: u32| v1::SubnetSpec {
        id,
        name: format!("s{id}"),
        tasks: vec!["sort".into()],
        owner: Vec::new(),
    };
    let genesis = v1::Genesis {
        network_name: "open".into(),
        epoch_ms: 1_000,
        subnets: vec![subnet(1), subnet(2)],
        validators: vec![v1::GenesisValidator {
            hotkey: holder.public().to_bytes().to_vec(),
            coldkey: holder.public().to_bytes().to_vec(),
            stake: 1_000,
        }],
        ..Default::default()
    };
    let mut state = meshmind_node::state::State::from_genesis(&genesis, NET).expect("a genesis");
    state
        .subnets
        .get_mut(&2)
        .expect("subnet 2")
        .params
        .commit_reveal = false;
    let mut board = WeightBoard::default();
    board.follow(&state);
    let on = |subnet| Arrival { subnet, epoch: 4 };
    let vector = |key: &Keypair, subnet: u32, epoch: u64| {
        commit(key, NET, subnet, epoch, &[(0, 7)], [5; 32])
            .1
            .encode_to_vec()
    };
    let result = board.on_message(WeightKind::Reveal, &vector(&holder, 1, 4), on(1));
    assert!(
        matches!(result, Err(WeightsError::NoCommitment)),
        "{result:?}"
    );
    let result = board.on_message(WeightKind::Reveal, &vector(&holder, 2, 4), on(2));
    assert!(matches!(result, Ok(WeightsEvent::Revealed)), "{result:?}");
    assert_eq!(board.revealed(4, 2).len(), 1);
    let result = board.on_message(WeightKind::Reveal, &vector(&stranger, 2, 4), on(2));
    assert!(
        matches!(result, Err(WeightsError::NotASetter)),
        "{result:?}"
    );
    let result = board.on_message(WeightKind::Reveal, &vector(&holder, 2, 9), on(2));
    assert!(
        matches!(result, Err(WeightsError::OutOfWindow { .. })),
        "{result:?}"
    );
    let mut forged = commit(&holder, NET, 2, 4, &[(0, 7)], [5; 32]).1;
    forged.weights[0] = 9;
    let result = board.on_message(WeightKind::Reveal, &forged.encode_to_vec(), on(2));
    assert!(
        matches!(result, Err(WeightsError::Signature(_))),
        "{result:?}"
    );
}
