//! A real `meshmind` validator on 127.0.0.1 with one-second epochs: transactions signed by the CLI
//! enter finalized snapshots and move balances, stake and registrations; a replay is refused;
//! emission is credited; `ledger verify` replays the whole economy from genesis.

use std::process::Stdio;
use std::time::Duration;

use meshmind_node::api::types::{Account, ChainMetagraph, Economy, Metagraph, SnapshotView};

use crate::common::{Running, free_port, get, meshmind, new_key, ok, public_hex, status};

fn chain(api: &str) -> ChainMetagraph {
    get::<Metagraph>(api, "/metagraph/1")
        .chain
        .expect("a finalized metagraph")
}

/// Runs `meshmind args`, which must fail with `reason` in what it prints.
fn refused(args: &[&str], reason: &str) {
    let output = meshmind().args(args).output().expect("run meshmind");
    assert!(!output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(reason),
        "{output:?}"
    );
}

fn account(api: &str, key: &str) -> Account {
    serde_json::from_str(&ok(&["account", "show", key, "--api", api])).expect("an account")
}

#[test]
fn transactions_move_balances_stake_and_registrations_through_finalized_snapshots() {
    let dir = tempfile::tempdir().expect("temp dir");
    let v_dir = dir.path().join("v");
    let api_addr = format!("127.0.0.1:{}", free_port());
    let api = format!("http://{api_addr}");
    let dir_text = v_dir.to_str().expect("utf-8");
    ok(&[
        "init",
        "--role",
        "validator",
        "--data-dir",
        dir_text,
        "--api-listen",
        &api_addr,
    ]);
    // One-second epochs starting now, so snapshots come quickly.
    let genesis_path = v_dir.join("genesis.toml");
    let text = std::fs::read_to_string(&genesis_path).expect("genesis");
    let text = text.replace("epoch_ms = 10000", "epoch_ms = 1000");
    assert!(text.contains("epoch_ms = 1000\n"), "{text}");
    std::fs::write(&genesis_path, text).expect("write genesis");

    let validator = Running(
        meshmind()
            .args(["run", "--data-dir", dir_text])
            .env("MESHMIND_VALIDATOR__CHALLENGE_INTERVAL_MS", "250")
            .stdout(Stdio::null())
            .spawn()
            .expect("start validator"),
    );
    status(&api, Duration::from_secs(20));
    let coldkey_file = v_dir.join("coldkey.json");
    let coldkey_path = coldkey_file.to_str().expect("utf-8");
    let coldkey = public_hex(&coldkey_file);
    let hotkey = public_hex(&v_dir.join("hotkey.json"));
    let start = account(&api, &coldkey);
    assert_eq!(start.nonce, 0);
    let start_balance = start.balance;
    assert!(start_balance >= 1_000_000_000, "{start:?}");

    // A transfer to a fresh coldkey, waited for until a finalized snapshot applied it.
    let other = new_key(dir.path(), "coldkey", "other.json");
    ok(&[
        "tx",
        "transfer",
        "--coldkey",
        coldkey_path,
        "--api",
        &api,
        "--to",
        &other,
        "--amount",
        "12345",
        "--wait",
    ]);
    assert_eq!(account(&api, &other).balance, 12_345);
    assert_eq!(account(&api, &coldkey).nonce, 1);

    // The same nonce again is a replay: refused before it reaches any snapshot.
    refused(
        &[
            "tx",
            "transfer",
            "--coldkey",
            coldkey_path,
            "--api",
            &api,
            "--to",
            &other,
            "--amount",
            "12345",
            "--nonce",
            "0",
        ],
        "nonce",
    );

    // Register a new hotkey (its key file signs its consent): it gets the next UID, and the
    // burn price doubles.
    let burn_before = chain(&api).burn;
    let new_hotkey = new_key(dir.path(), "hotkey", "miner-hotkey.json");
    let new_hotkey_path = dir.path().join("miner-hotkey.json");
    let register = |hotkey: &str, rest: &[&str]| -> Vec<String> {
        let head = ["tx", "register", "--coldkey", coldkey_path, "--api", &api];
        let tail = ["--hotkey", hotkey, "--subnet", "1"];
        head.iter()
            .chain(&tail)
            .chain(rest)
            .map(|s| s.to_string())
            .collect()
    };
    // Someone else's hotkey, without its consent, is refused before it reaches any snapshot.
    let forged = "ab".repeat(64);
    let args = register(&new_hotkey, &["--hotkey-signature", &forged]);
    refused(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "consent",
    );
    let args = register(new_hotkey_path.to_str().expect("utf-8"), &["--wait"]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let after = chain(&api);
    assert!(
        after.neurons.iter().any(|n| n.hotkey == new_hotkey),
        "{after:?}"
    );
    // Doubled on registration, then lowered by at most 5 % per epoch since.
    assert!(after.burn > burn_before, "{after:?}");
    // The staked validator holds a permit and is active; the new neuron, with no stake, has no
    // permit but counts as active while its registration is recent.
    let neuron = |key: &str| {
        after
            .neurons
            .iter()
            .find(|n| n.hotkey == key)
            .expect("registered")
            .clone()
    };
    let (staked, fresh) = (neuron(&hotkey), neuron(&new_hotkey));
    assert!(staked.validator_permit && staked.active, "{staked:?}");
    assert!(!fresh.validator_permit && fresh.active, "{fresh:?}");

    // Stake on the validator's hotkey.
    ok(&[
        "tx",
        "stake",
        "--coldkey",
        coldkey_path,
        "--api",
        &api,
        "--hotkey",
        &hotkey,
        "--subnet",
        "1",
        "--amount",
        "5000",
        "--wait",
    ]);
    let stakes = account(&api, &coldkey).stakes;
    let staked = stakes
        .iter()
        .find(|s| s.hotkey == hotkey)
        .map(|s| s.amount)
        .expect("a stake on the validator's hotkey");
    assert!(
        staked >= 1_005_000,
        "genesis stake + 5000 + emission: {stakes:?}"
    );

    // Supply: everything held equals genesis + emitted - burned, and emission flowed.
    let economy: Economy = get(&api, "/economy");
    assert!(economy.supply.emitted > 0, "{economy:?}");
    assert!(economy.supply.burned >= burn_before);

    // Transactions appear in the finalized snapshots.
    let head = status(&api, Duration::from_secs(5))
        .consensus
        .finalized_epoch
        .expect("a head");
    let mut carried = 0;
    for epoch in 0..=head {
        let snapshot: SnapshotView = get(&api, &format!("/snapshots/{epoch}"));
        carried += snapshot.transactions.len();
    }
    assert_eq!(carried, 3, "transfer, register and stake");

    assert!(validator.terminate().success());
    let verified = ok(&["ledger", "verify", "--data-dir", dir_text]);
    assert!(verified.starts_with("ok:"), "{verified}");
}
