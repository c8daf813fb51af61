//! Key files: round trips, permissions and malformed content.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::keyfile::{KeyFile, KeyFileError, KeyKind};

fn write_mode(path: &std::path::Path, text: &str, mode: u32) {
    fs::write(path, text).expect("write test file");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod test file");
}

#[test]
fn round_trip_with_owner_only_permissions() {
    let dir = tempfile::tempdir().expect("temp dir");
    for kind in [KeyKind::Hotkey, KeyKind::Coldkey] {
        let path = dir.path().join(format!("{kind}.json"));
        let key = KeyFile::generate(kind).expect("os random");
        key.write_new(&path).expect("write key");
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = KeyFile::read(&path).expect("read key");
        assert_eq!(back.kind, kind);
        assert_eq!(back.public(), key.public());
        assert_eq!(
            back.keypair.secret_bytes().as_ref(),
            key.keypair.secret_bytes().as_ref()
        );
        assert_eq!(
            KeyFile::read_kind(&path, kind)
                .expect("kind matches")
                .public(),
            key.public()
        );
    }
}

#[test]
fn a_key_of_the_other_kind_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cold.json");
    KeyFile::generate(KeyKind::Coldkey)
        .expect("os random")
        .write_new(&path)
        .expect("write key");
    let err = KeyFile::read_kind(&path, KeyKind::Hotkey).expect_err("wrong kind");
    assert!(
        err.to_string()
            .contains("holds a coldkey, expected a hotkey"),
        "{err}"
    );
}

#[test]
fn an_existing_file_is_not_overwritten() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hot.json");
    let first = KeyFile::generate(KeyKind::Hotkey).expect("os random");
    first.write_new(&path).expect("write key");
    let second = KeyFile::generate(KeyKind::Hotkey).expect("os random");
    assert!(matches!(
        second.write_new(&path),
        Err(KeyFileError::Exists { .. })
    ));
    assert_eq!(KeyFile::read(&path).expect("read").public(), first.public());
}

#[test]
fn group_or_world_readable_files_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hot.json");
    KeyFile::generate(KeyKind::Hotkey)
        .expect("os random")
        .write_new(&path)
        .expect("write key");
    for mode in [0o644, 0o640, 0o604, 0o660] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        match KeyFile::read(&path) {
            Err(KeyFileError::Permissive { mode: seen, .. }) => assert_eq!(seen, mode),
            other => panic!("mode {mode:o} accepted: {other:?}"),
        }
    }
    let err = KeyFile::read(&path).expect_err("0660 refused");
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[test]
fn truncated_garbage_and_inconsistent_files_give_clear_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hot.json");
    let key = KeyFile::generate(KeyKind::Hotkey).expect("os random");
    key.write_new(&path).expect("write key");
    let text = fs::read_to_string(&path).expect("read");

    let cases: Vec<(&str, String)> = vec![
        ("truncated", text[..text.len() / 2].to_string()),
        ("garbage", "\u{1}\u{2}not json at all".to_string()),
        ("empty", String::new()),
        (
            "short secret",
            text.replace(&hex::encode(key.keypair.secret_bytes().as_ref()), "abcd"),
        ),
        (
            "foreign public key",
            text.replace(
                &key.public().to_hex(),
                &super::samples::key(1).public().to_hex(),
            ),
        ),
        ("unknown field", text.replacen('{', "{\"extra\": 1,", 1)),
    ];
    for (what, content) in cases {
        write_mode(&path, &content, 0o600);
        match KeyFile::read(&path) {
            Err(KeyFileError::Malformed { path: p, reason }) => {
                assert_eq!(p, path, "{what}");
                assert!(!reason.is_empty(), "{what}");
            }
            other => panic!("{what}: expected Malformed, got {other:?}"),
        }
    }

    write_mode(&path, &"x".repeat(10_000), 0o600);
    assert!(matches!(
        KeyFile::read(&path),
        Err(KeyFileError::Malformed { .. })
    ));
    let missing = dir.path().join("missing.json");
    assert!(matches!(
        KeyFile::read(&missing),
        Err(KeyFileError::Io { .. })
    ));
}
