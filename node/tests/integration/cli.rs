//! The `meshmind` command line, run as the real binary.

use crate::common::meshmind;

#[test]
fn generate_then_show() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hotkey.json");
    let output = meshmind()
        .args(["keys", "generate", "--kind", "hotkey", "--out"])
        .arg(&path)
        .output()
        .expect("run meshmind");
    assert!(output.status.success(), "{output:?}");

    let output = meshmind()
        .args(["keys", "show", "--json"])
        .arg(&path)
        .output()
        .expect("run meshmind");
    assert!(output.status.success(), "{output:?}");
    let shown: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("show prints JSON");
    let key = meshmind_protocols::KeyFile::read(&path).expect("key file readable");
    assert_eq!(shown["public_key"], key.public().to_hex());
    assert_eq!(shown["peer_id"], key.public().peer_id().to_string());
    assert!(!String::from_utf8_lossy(&output.stdout).contains("secret"));

    // A second generate to the same path refuses and keeps the first key.
    let output = meshmind()
        .args(["keys", "generate", "--out"])
        .arg(&path)
        .output()
        .expect("run meshmind");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
}

#[test]
fn init_public_configures_a_public_node_and_local_mode_is_refused_there() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("node");
    let output = meshmind()
        .args(["init", "--role", "observer", "--public", "--data-dir"])
        .arg(&data)
        .output()
        .expect("run meshmind");
    assert!(output.status.success(), "{output:?}");
    let config =
        meshmind_node::config::NodeConfig::load(&data.join("config.toml")).expect("config");
    assert!(!config.network.local);
    assert!(
        config
            .network
            .listen
            .iter()
            .all(|a| a.to_string().starts_with("/ip4/0.0.0.0/")),
        "{:?}",
        config.network.listen
    );
    // Turning local-testnet mode on for a node listening on every interface is refused at start.
    let output = meshmind()
        .args(["run", "--data-dir"])
        .arg(&data)
        .env("MESHMIND_NETWORK__LOCAL", "true")
        .output()
        .expect("run meshmind");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("set local = false"), "{stderr}");
}

#[test]
fn show_refuses_a_readable_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hotkey.json");
    let status = meshmind()
        .args(["keys", "generate", "--out"])
        .arg(&path)
        .status()
        .expect("run meshmind");
    assert!(status.success());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let output = meshmind()
        .args(["keys", "show"])
        .arg(&path)
        .output()
        .expect("run meshmind");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");
}

#[test]
fn yuma_prints_json_and_exits_2_on_malformed_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("in.json");
    std::fs::write(
        &good,
        r#"{"stake":[100,0,0],"weights":[[[1,49151],[2,16384]],[],[]],"max_validators":64,"emission":1000}"#,
    )
    .expect("write input");
    let output = meshmind()
        .args(["yuma", "--input"])
        .arg(&good)
        .output()
        .expect("run meshmind");
    assert!(output.status.success(), "{output:?}");
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON out");
    for key in [
        "consensus",
        "incentive",
        "dividends",
        "validator_trust",
        "emission",
        "bonds",
    ] {
        assert_eq!(result[key].as_array().map(Vec::len), Some(3), "{key}");
    }
    let emitted: u64 = result["emission"]
        .as_array()
        .expect("emission array")
        .iter()
        .filter_map(serde_json::Value::as_u64)
        .sum();
    assert!((990..=1000).contains(&emitted), "{emitted}");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"stake":[1,2],"weights":[[]],"emission":1}"#).expect("write");
    let output = meshmind()
        .args(["yuma", "--input"])
        .arg(&bad)
        .output()
        .expect("run meshmind");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("weights: has 1 rows, stake has 2 UIDs"),
        "{stderr}"
    );
}
