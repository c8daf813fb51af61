"""The Python SDK encodes, hashes and signs exactly as the Rust side does: every golden vector
the Rust tests generate (protocols/golden/vectors.json) is reproduced, and key files cross
between the SDK and the `meshmind` CLI both ways."""

import json
import os
import pathlib
import subprocess

import pytest

import meshmind
from meshmind import tx, v1
from meshmind.signing import derive

from conftest import BIN_DIR

ROOT = pathlib.Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "protocols" / "golden" / "vectors.json").read_text())
TYPES = {
    "vote": v1.Vote,
    "capability_ad": v1.CapabilityAd,
    "weight_reveal": v1.WeightReveal,
    "transfer": v1.Transaction,
    "register": v1.Transaction,
    "declare_finalizer": v1.Transaction,
    "set_subnet_params": v1.Transaction,
    "swap_hotkey": v1.Transaction,
    "certificate": v1.Certificate,
    "genesis": v1.Genesis,
    "economy_state": v1.EconomyState,
}
KEYS = {k["public_key"]: meshmind.Keypair(bytes.fromhex(k["seed"])) for k in VECTORS["keys"]}
NET = bytes.fromhex(VECTORS["network_id"])


def vector(name: str) -> dict:
    return next(m for m in VECTORS["messages"] if m["name"] == name)


def decoded(entry: dict):
    message = TYPES[entry["name"]]()
    message.ParseFromString(bytes.fromhex(entry["encoded"]))
    return message


def test_every_vector_type_is_checked():
    assert {m["name"] for m in VECTORS["messages"]} == set(TYPES)


def test_keys_and_peer_ids_match():
    for k in VECTORS["keys"]:
        key = meshmind.Keypair(bytes.fromhex(k["seed"]))
        assert key.public_hex == k["public_key"]
        assert key.peer_id == k["peer_id"]


@pytest.mark.parametrize("entry", VECTORS["messages"], ids=lambda e: e["name"])
def test_encoding_and_hash_round_trip(entry):
    message = decoded(entry)
    assert meshmind.encode(message).hex() == entry["encoded"]
    assert meshmind.content_hash(message).hex() == entry["hash"]


@pytest.mark.parametrize("entry", [m for m in VECTORS["messages"] if "signature" in m], ids=lambda e: e["name"])
def test_signed_messages_digest_verify_and_sign_alike(entry):
    message = decoded(entry)
    assert meshmind.signing_digest(message).hex() == entry["digest"]
    meshmind.verify_signature(message)
    # Signing again with the same key gives the same bytes (ed25519 is deterministic).
    signer = KEYS[meshmind.signing.signer(message).hex()]
    message.ClearField("signature")
    assert meshmind.encode(message).hex() == entry["unsigned"]
    meshmind.sign(message, signer)
    assert message.signature.hex() == entry["signature"]
    assert meshmind.encode(message).hex() == entry["encoded"]
    # One changed bit breaks it.
    tampered = decoded(entry)
    tampered.network_id = b"\x12" * 32
    with pytest.raises(meshmind.SignatureError):
        meshmind.verify_signature(tampered)


def test_state_root_is_the_derived_key_of_the_state():
    entry = vector("economy_state")
    assert derive("meshmind/v1/state", bytes.fromhex(entry["encoded"])).hex() == entry["state_root"]


def test_transactions_built_by_the_sdk_are_the_golden_bytes():
    seven, eight = (meshmind.Keypair(bytes([seed]) * 32) for seed in (7, 8))
    built = {
        "transfer": tx.transaction(NET, 42, tx.transfer(eight, 500), seven),
        "register": tx.transaction(NET, 3, tx.register(eight, 1, 5_000, NET, seven), seven),
        "declare_finalizer": tx.transaction(NET, 4, tx.declare_finalizer(eight, NET, seven), seven),
        "set_subnet_params": tx.transaction(NET, 5, tx.set_subnet_params(1, {"kappa": 40_000, "tempo": 3}), seven),
        "swap_hotkey": tx.transaction(NET, 6, tx.swap_hotkey(bytes([5]) * 32, eight, NET, seven), seven),
    }
    for name, message in built.items():
        assert meshmind.encode(message).hex() == vector(name)["encoded"], name


def test_key_files_cross_between_the_sdk_and_the_cli(tmp_path):
    cli = str(BIN_DIR / "meshmind")
    # Written by the SDK, read by the CLI.
    key = meshmind.Keypair.generate()
    path = meshmind.write_key(tmp_path / "hot.json", key, "hotkey")
    assert os.stat(path).st_mode & 0o777 == 0o600
    shown = json.loads(subprocess.run([cli, "keys", "show", str(path), "--json"], capture_output=True, text=True, check=True).stdout)
    assert key.public_hex in json.dumps(shown) and key.peer_id in json.dumps(shown)
    # Written by the CLI, read by the SDK.
    cold = tmp_path / "cold.json"
    subprocess.run([cli, "keys", "generate", "--kind", "coldkey", "--out", str(cold)], capture_output=True, check=True)
    wallet = meshmind.Wallet.load(cold)
    assert wallet.coldkey.public_hex in cold.read_text()
    # Refused: a hotkey where a coldkey is wanted, a file others can read, an existing file.
    with pytest.raises(meshmind.KeyFileError, match="expected a coldkey"):
        meshmind.Wallet.load(path)
    os.chmod(cold, 0o644)
    with pytest.raises(meshmind.KeyFileError, match="chmod 600"):
        meshmind.read_key(cold)
    with pytest.raises(meshmind.KeyFileError, match="already exists"):
        meshmind.write_key(path, key, "hotkey")
    # A secret that does not match its public key.
    os.chmod(cold, 0o600)
    document = json.loads(cold.read_text())
    document["public_key"] = key.public_hex
    cold.write_text(json.dumps(document))
    with pytest.raises(meshmind.KeyFileError, match="does not belong"):
        meshmind.read_key(cold)


def load_example(name: str):
    import importlib.util

    path = ROOT / "sdk" / "python" / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_miner_and_scorer_speak_the_nodes_protocols():
    miner = load_example("miner").miner
    validator = {"hotkey": "ab" * 32, "stake": 10, "permit": True}
    assert miner.handle({"task": "sort", "input": "pear fig", "caller": validator}) == (200, {"output": "fig pear"})
    assert list(miner.handle({"task": "sort", "input": "pear fig", "caller": validator, "stream": True})) == [
        {"chunk": "fig "},
        {"chunk": "pear "},
    ]
    assert miner.handle({"task": "sort", "input": "b a", "caller": {"hotkey": "", "stake": 0, "permit": False}})[0] == 403
    assert miner.handle({"task": "arith", "input": "1+1"})[0] == 404
    # Bytes in, bytes out.
    raw = miner.handle({"task": "sort", "input_base64": "YiBh", "caller": validator})
    assert raw == (200, {"output": "a b"})

    scorer = load_example("scorer").scorer
    status, reply = scorer.handle({"task": "challenge", "input": json.dumps({"task": "sort"})})
    made = json.loads(reply["output"])
    assert status == 200 and sorted(made["input"].split()) == made["expected"].split()
    answers = [
        {"miner": "aa", "output": made["expected"], "elapsed_ms": 3},
        {"miner": "bb", "output": made["input"], "elapsed_ms": 4},
        {"miner": "cc", "output_base64": "", "elapsed_ms": 5},
    ]
    status, reply = scorer.handle(
        {"task": "score", "input": json.dumps({"task": "sort", "input": made["input"], "expected": made["expected"], "answers": answers})}
    )
    scores = json.loads(reply["output"])["scores"]
    assert status == 200 and scores[0] == 1.0 and 0.0 <= scores[1] < 1.0 and scores[2] == 0.0
    assert scorer.handle({"task": "score", "input": "not json"})[0] == 400


def test_the_helpers_server_refuses_bad_bodies_and_streams_as_it_goes():
    import socket
    import time

    miner = meshmind.Miner()
    produced = []

    @miner.forward("count")
    def count(request):
        for i in range(3):
            produced.append(time.monotonic())
            time.sleep(0.2)
            yield f"{i} "

    url = miner.start()
    host, port = url.split("//")[1].rstrip("/").split(":")
    try:
        def raw(request: bytes) -> bytes:
            with socket.create_connection((host, int(port)), timeout=5) as s:
                s.sendall(request)
                return s.recv(4096)

        # A negative or missing length, nesting deeper than the parser goes, and too big a body.
        assert b" 400 " in raw(b"POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n")
        assert b" 400 " in raw(b"POST / HTTP/1.1\r\ncontent-length: x\r\n\r\n")
        deep = b"[" * 100_000
        assert b" 400 " in raw(b"POST / HTTP/1.1\r\ncontent-length: %d\r\n\r\n" % len(deep) + deep)
        assert b" 413 " in raw(b"POST / HTTP/1.1\r\ncontent-length: 999999999\r\n\r\n")
        # A stream's first piece arrives before the last is produced.
        body = json.dumps({"task": "count", "input": "", "stream": True}).encode()
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"POST / HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
            first = s.recv(4096)
            arrived = time.monotonic()
            assert b"application/x-ndjson" in first
            rest = b""
            while b"0\r\n\r\n" not in rest:
                chunk = s.recv(4096)
                if not chunk:
                    break
                rest += chunk
        assert arrived < produced[-1] + 0.1 and b'"chunk": "2 "' in first + rest
    finally:
        miner.stop()
