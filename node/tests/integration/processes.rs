//! Real `meshmind` processes on 127.0.0.1: a validator and a miner from `init`, `run`, `status` and
//! `query`, then a graceful shutdown on SIGTERM.

use std::process::Stdio;
use std::time::{Duration, Instant};

use meshmind_node::api::types::{Answer, QueryAnswer, StreamLine};

use crate::common::{Running, init_pair, meshmind, ok, quic_listen, status};

/// Asks the validator at `api` for `6 * 7` until a miner answers (at most 60 s).
fn first_routed_answer(api: &str) -> Answer {
    let start = Instant::now();
    loop {
        let output = meshmind()
            .args([
                "query", "--api", api, "--subnet", "1", "--task", "arith", "--input", "6 * 7",
            ])
            .output()
            .expect("run meshmind");
        if output.status.success() {
            match serde_json::from_slice(&output.stdout).expect("an answer") {
                QueryAnswer::One(answer) => return answer,
                other => panic!("one answer expected, got {other:?}"),
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no routed answer in 60 s: {output:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn init_run_status_query_and_graceful_shutdown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (v_dir, m_dir, v_api, m_api) = init_pair(dir.path());

    // Refresh ads every second so the validator hears of the miner quickly.
    let m_config = m_dir.join("config.toml");
    let text = std::fs::read_to_string(&m_config).expect("config");
    assert!(text.contains("ad_ttl_ms = 60000"), "{text}");
    std::fs::write(
        &m_config,
        text.replace("ad_ttl_ms = 60000", "ad_ttl_ms = 3000"),
    )
    .expect("write");

    let validator = Running(
        meshmind()
            .args(["run", "--data-dir", v_dir.to_str().expect("utf-8")])
            .stdout(Stdio::null())
            .spawn()
            .expect("start validator"),
    );
    let v_api_url = format!("http://{v_api}");
    let v_status = status(&v_api_url, Duration::from_secs(20));
    assert_eq!(v_status.role, "validator");
    let bootnode = quic_listen(&v_status);

    let miner = Running(
        meshmind()
            .args([
                "run",
                "--data-dir",
                m_dir.to_str().expect("utf-8"),
                "--bootnode",
                &bootnode,
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("start miner"),
    );
    let m_status = status(&format!("http://{m_api}"), Duration::from_secs(20));
    assert_eq!(m_status.role, "miner");
    assert_eq!(
        m_status.network, v_status.network,
        "same genesis, same network"
    );

    // The validator learns the miner from its ads, and routes a query to it.
    let answer = first_routed_answer(&v_api_url);
    assert_eq!(answer.output, "42");
    assert_eq!(answer.miner.len(), 64);
    let miner_key = answer.miner.clone();

    // The same through the p2p query plane: client -> validator -> miner, all over QUIC.
    let query_addr = v_status
        .query_multiaddr
        .clone()
        .expect("a query-plane address");
    let network_id = v_status.network_id.clone();
    let plane_query = [
        "query",
        "--validator",
        &query_addr,
        "--network-id",
        &network_id,
        "--subnet",
        "1",
        "--task",
        "sort",
        "--input",
        "pear apple fig",
    ];
    let answer = ok(&plane_query);
    let answer: QueryAnswer = serde_json::from_str(&answer).expect("an answer");
    assert!(
        matches!(&answer, QueryAnswer::One(a) if a.output == "apple fig pear"),
        "{answer:?}"
    );
    // Streamed through the validator: the text itself, then a verified signed trailer on stderr.
    let output = meshmind()
        .args(plane_query)
        .arg("--stream")
        .output()
        .expect("run meshmind");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "apple fig pear\n");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("signature verified"),
        "{output:?}"
    );
    // Streamed over the HTTP API: newline-delimited JSON, pieces then the miner's end.
    let lines = ok(&[
        "query", "--api", &v_api_url, "--subnet", "1", "--task", "arith", "--input", "6 * 7",
        "--stream",
    ]);
    let lines: Vec<StreamLine> = lines
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).expect("a stream line"))
        .collect();
    assert_eq!(
        lines.first(),
        Some(&StreamLine::Chunk { chunk: "42".into() })
    );
    match lines.last() {
        Some(StreamLine::Done { done, miner, .. }) => {
            assert!(*done);
            assert_eq!(*miner, miner_key);
        }
        other => panic!("an end line expected, got {other:?} in {lines:?}"),
    }
    // A wrong network id is refused by the validator's query plane.
    let output = meshmind()
        .args([
            "query",
            "--validator",
            &query_addr,
            "--network-id",
            &"ab".repeat(32),
            "--subnet",
            "1",
            "--task",
            "sort",
            "--input",
            "b a",
            "--deadline-ms",
            "1000",
        ])
        .output()
        .expect("run meshmind");
    assert!(!output.status.success(), "{output:?}");
    // Refused in the handshake: the network id is part of the query plane's protocol name.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("connecting to"), "{stderr}");

    assert!(miner.terminate().success(), "the miner exits 0 on SIGTERM");
    assert!(
        validator.terminate().success(),
        "the validator exits 0 on SIGTERM"
    );
}

#[test]
fn a_bad_config_names_the_key_and_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("node");
    ok(&[
        "init",
        "--role",
        "observer",
        "--data-dir",
        data.to_str().expect("utf-8"),
    ]);
    let config = data.join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("{text}\nrol = \"miner\"\n")).expect("write");
    let output = meshmind()
        .args(["run", "--data-dir", data.to_str().expect("utf-8")])
        .output()
        .expect("run meshmind");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rol"), "{stderr}");
}

#[test]
fn a_miner_that_announces_only_in_the_dht_is_found_and_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (v_dir, m_dir, v_api, m_api) = init_pair(dir.path());
    let validator = Running(
        meshmind()
            .args(["run", "--data-dir", v_dir.to_str().expect("utf-8")])
            .env("MESHMIND_VALIDATOR__DISCOVERY_INTERVAL_MS", "500")
            .stdout(Stdio::null())
            .spawn()
            .expect("start validator"),
    );
    let v_api_url = format!("http://{v_api}");
    let v_status = status(&v_api_url, Duration::from_secs(20));
    let bootnode = quic_listen(&v_status);
    // The miner publishes no ads on gossip: only its DHT provider records announce it.
    let miner = Running(
        meshmind()
            .args([
                "run",
                "--data-dir",
                m_dir.to_str().expect("utf-8"),
                "--bootnode",
                &bootnode,
            ])
            .env("MESHMIND_MINER__GOSSIP_ADS", "false")
            .stdout(Stdio::null())
            .spawn()
            .expect("start miner"),
    );
    status(&format!("http://{m_api}"), Duration::from_secs(20));
    let answer = first_routed_answer(&v_api_url);
    assert_eq!(answer.output, "42");
    assert!(miner.terminate().success());
    assert!(validator.terminate().success());
}
