//! A real validator and miner on 127.0.0.1, on the default configuration, under client load: 64
//! concurrent clients all get right answers, a greedy client is limited (429 with `Retry-After`)
//! without hurting a polite one, and the miner gives its capacity to the subnet's validator, not
//! to a staked hotkey that does not validate.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use meshmind_node::api::client::{ApiClient, ClientError};
use meshmind_node::api::types::{QueryAnswer, QueryRequest, Status};
use meshmind_node::role::quota::QuotasView;
use meshmind_node::role::reference;

use crate::common::{
    Running, get, init_pair, meshmind, new_key, ok, public_hex, quic_listen, status,
};

/// Concurrent clients, and the queries each sends.
const CLIENTS: usize = 64;
const EACH: usize = 20;

fn arith(a: usize, b: usize) -> QueryRequest {
    QueryRequest {
        content_type: None,
        encoding: None,
        subnet: 1,
        task: "arith".into(),
        input: format!("{a} + {b}"),
        deadline_ms: Some(3_000),
        want_all: false,
        stream: false,
    }
}

/// A client of `api` whose connections come from 127.1.x.y, its own address.
fn client(api: &str, n: u16) -> ApiClient {
    let [hi, lo] = n.to_be_bytes();
    let from = IpAddr::V4(Ipv4Addr::new(127, 1, hi, lo.max(1)));
    ApiClient::bound_to(api, from).expect("an API address")
}

/// Asks once; `None` for a right answer, else what came back.
async fn ask(client: &ApiClient, request: &QueryRequest) -> Option<String> {
    let expected = reference::expected(&request.task, request.input.as_bytes()).expect("valid");
    match client.query(request).await {
        Ok(QueryAnswer::One(answer)) if answer.output.as_bytes() == expected => None,
        other => Some(format!("{other:?}")),
    }
}

fn quotas(api: &str) -> QuotasView {
    get::<Status>(api, "/status")
        .quotas
        .expect("a miner shows its quotas")
}

/// The rate of `caller` at the miner, once `check` holds for it (at most 30 s).
fn rate_when(api: &str, caller: &str, check: impl Fn(u32) -> bool) -> u32 {
    let start = Instant::now();
    loop {
        let view = quotas(api);
        let rate = view
            .callers
            .iter()
            .find(|q| q.caller == caller)
            .map(|q| q.rate);
        if let Some(rate) = rate.filter(|&r| check(r)) {
            return rate;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{caller}: {view:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_gateway_carries_load_and_a_miner_serves_its_validator() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (v_dir, m_dir, v_api, m_api) = init_pair(dir.path());
    // One-second epochs (in both copies of the genesis), so stake changes finalize quickly; the
    // miner refreshes its ads every second.
    for genesis in [v_dir.join("genesis.toml"), m_dir.join("genesis.toml")] {
        let text = std::fs::read_to_string(&genesis).expect("genesis");
        assert!(text.contains("epoch_ms = 10000\n"), "{text}");
        std::fs::write(
            &genesis,
            text.replace("epoch_ms = 10000", "epoch_ms = 1000"),
        )
        .expect("write genesis");
    }
    let m_config = m_dir.join("config.toml");
    let text = std::fs::read_to_string(&m_config).expect("config");
    std::fs::write(
        &m_config,
        text.replace("ad_ttl_ms = 60000", "ad_ttl_ms = 3000"),
    )
    .expect("write");
    let v_dir_text = v_dir.to_str().expect("utf-8");
    let validator = Running(
        meshmind()
            .args(["run", "--data-dir", v_dir_text])
            .env("MESHMIND_VALIDATOR__CHALLENGE_INTERVAL_MS", "250")
            .stdout(Stdio::null())
            .spawn()
            .expect("start validator"),
    );
    let v_url = format!("http://{v_api}");
    let m_url = format!("http://{m_api}");
    let bootnode = quic_listen(&status(&v_url, Duration::from_secs(20)));
    let miner = Running(
        meshmind()
            .args(["run", "--data-dir", m_dir.to_str().expect("utf-8")])
            .args(["--bootnode", &bootnode])
            .stdout(Stdio::null())
            .spawn()
            .expect("start miner"),
    );
    status(&m_url, Duration::from_secs(20));

    // The miner registers (signed by the validator's coldkey, with its hotkey's consent), so the
    // validator has a miner to weight; the miner reads the finalized state: the validator, the
    // only permit holder that sets weights, gets its whole capacity.
    let coldkey = v_dir.join("coldkey.json");
    let coldkey = coldkey.to_str().expect("utf-8");
    let tx = |args: &[&str]| {
        let head = ["tx", args[0], "--coldkey", coldkey, "--api", v_url.as_str()];
        let all: Vec<&str> = head.iter().chain(&args[1..]).copied().collect();
        ok(&all);
    };
    let m_hotkey = m_dir.join("hotkey.json");
    let m_hotkey = m_hotkey.to_str().expect("utf-8");
    tx(&["register", "--hotkey", m_hotkey, "--subnet", "1", "--wait"]);
    let v_hotkey = public_hex(&v_dir.join("hotkey.json"));
    let capacity = quotas(&m_url).capacity;
    rate_when(&m_url, &v_hotkey, |rate| rate == capacity);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        // Until the validator has found the miner.
        let first = client(&v_url, 1);
        let start = Instant::now();
        while let Some(answer) = ask(&first, &arith(6, 7)).await {
            assert!(start.elapsed() < Duration::from_secs(60), "{answer}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // 64 concurrent clients, each from its own address: every query answered rightly.
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let client = client(&v_url, c as u16 + 1);
                tokio::spawn(async move {
                    let mut failures = Vec::new();
                    for i in 0..EACH {
                        failures.extend(ask(&client, &arith(c, i)).await);
                    }
                    failures
                })
            })
            .collect();
        let mut failures = Vec::new();
        for task in clients {
            failures.extend(task.await.expect("a client"));
        }
        assert!(
            failures.is_empty(),
            "{} of {} failed, first: {:?}",
            failures.len(),
            CLIENTS * EACH,
            failures.first()
        );

        // A greedy client is limited at its own rate; a polite one at the same time is not.
        let greedy = client(&v_url, 0x0101);
        let polite = client(&v_url, 0x0102);
        let flood = tokio::spawn(async move {
            let (mut answered, mut limited, mut other) = (0, 0, Vec::new());
            for i in 0..2_000 {
                match greedy.query(&arith(1, i)).await {
                    Ok(_) => answered += 1,
                    Err(ClientError::Api { status: 429, .. }) => limited += 1,
                    Err(e) => other.push(e.to_string()),
                }
            }
            (answered, limited, other)
        });
        let mut tick = tokio::time::interval(Duration::from_millis(25));
        let mut polite_failures = Vec::new();
        for i in 0..40 {
            tick.tick().await;
            polite_failures.extend(ask(&polite, &arith(2, i)).await);
        }
        let (answered, limited, other) = flood.await.expect("the flood");
        assert!(polite_failures.is_empty(), "{polite_failures:?}");
        assert!(other.is_empty(), "{other:?}");
        assert!(
            limited > 0 && answered > 0,
            "greedy: {answered} answered, {limited} limited"
        );
        // The refusal says when to come back.
        let raw = reqwest::Client::builder()
            .local_address(IpAddr::V4(Ipv4Addr::new(127, 1, 1, 1)))
            .build()
            .expect("a client");
        let mut retry_after = None;
        for i in 0..2_000 {
            let response = raw
                .post(format!("{v_url}/query"))
                .json(&arith(3, i))
                .send()
                .await
                .expect("an answer");
            if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
                retry_after = response.headers().get("retry-after").cloned();
                break;
            }
        }
        assert!(retry_after.is_some(), "a 429 with Retry-After");
    });

    // A second hotkey registers and takes half as much stake as the validator has, but sets no
    // weights: a permit holder that does not validate takes none of the miner's capacity.
    let other_hotkey = new_key(dir.path(), "hotkey", "other-hotkey.json");
    let other_path = dir.path().join("other-hotkey.json");
    let other = other_path.to_str().expect("utf-8");
    tx(&["register", "--hotkey", other, "--subnet", "1", "--wait"]);
    let stake = quotas(&m_url)
        .callers
        .iter()
        .find(|q| q.caller == v_hotkey)
        .map(|q| q.stake)
        .expect("the validator's stake");
    let amount = (stake / 2).to_string();
    let subnet = ["--subnet", "1", "--amount", &amount, "--wait"];
    tx(&[&["stake", "--hotkey", &other_hotkey][..], &subnet[..]].concat());
    let staked_at = status(&v_url, Duration::from_secs(5))
        .consensus
        .finalized_epoch
        .expect("a head");
    let start = Instant::now();
    while quotas(&m_url).epoch.is_none_or(|e| e <= staked_at + 1) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the miner stopped following"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let view = quotas(&m_url);
    let callers: Vec<(&str, u32)> = view
        .callers
        .iter()
        .map(|q| (q.caller.as_str(), q.rate))
        .collect();
    assert_eq!(
        callers,
        vec![(v_hotkey.as_str(), capacity), ("others", 50)],
        "{view:?}"
    );

    // The same on /metrics, by caller.
    let metrics = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            reqwest::get(format!("{m_url}/metrics"))
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text")
        })
    })
    .join()
    .expect("metrics read");
    let rate_line = format!("miner_quota_rate{{caller=\"{v_hotkey}\"}} {capacity}");
    assert!(metrics.contains(&rate_line), "{rate_line} in {metrics}");
    assert!(
        metrics.contains("miner_quota_admitted_total{caller=\"others\"}"),
        "{metrics}"
    );

    assert!(miner.terminate().success());
    assert!(validator.terminate().success());
}
