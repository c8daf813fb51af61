"""A peer of another libp2p stack joins a meshmind network: js-libp2p (from npm, pinned in
tests/interop) on its defaults (TCP, noise, yamux, identify, ping, signed gossipsub) connects to a
real node on loopback, identifies it, pings it, finds another node through the DHT under the
network's Kademlia protocol, receives a miner's signed capability ad, and publishes a signed transaction that the
network then applies."""

import json
import pathlib
import shutil
import subprocess

import pytest

import meshmind
from meshmind import Client, Wallet

from conftest import wait_for

INTEROP = pathlib.Path(__file__).resolve().parents[1] / "interop"


def test_a_js_libp2p_peer_identifies_pings_routes_receives_and_publishes(network, tmp_path):
    node_bin = shutil.which("node")
    if node_bin is None or not (INTEROP / "node_modules" / "libp2p").is_dir():
        pytest.fail("Node.js and tests/interop/node_modules are needed: scripts/test.sh runs `npm ci` there")
    net = network("--validators", "2", "--miners", "2", "--epoch-ms", "1000")
    client = Client(net.api("v0"))
    status = client.status()
    tcp = [a for a in status["listen"] if "/tcp/" in a and "/ip4/127.0.0.1/" in a]
    assert tcp, status["listen"]
    v1 = Client(net.api("v1")).status()["peer_id"]
    miners = {
        json.loads((net.data_dir(name) / "hotkey.json").read_text())["public_key"] for name in ("m1", "m2")
    }

    # A transfer signed with the SDK, to be published by the foreign peer on the `tx` topic.
    operator = Wallet.load(net.data_dir("v0") / "coldkey.json")
    receiver = meshmind.Keypair.generate()
    nonce = client.nonce(operator.coldkey)
    transfer = meshmind.tx.transaction(client.network_id(), nonce, meshmind.tx.transfer(receiver, 4_242), operator.coldkey)

    done = subprocess.run(
        [
            node_bin, str(INTEROP / "peer.mjs"),
            "--dial", tcp[0], "--network", status["network"], "--subnet", "1", "--find", v1,
            "--publish-topic", "tx", "--publish-hex", meshmind.encode(transfer).hex(), "--seconds", "60",
        ],
        capture_output=True, text=True, timeout=90, cwd=INTEROP,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    events = {line["event"]: line for line in lines}
    assert done.returncode == 0 and "error" not in events, f"{done.stdout}\n{done.stderr[-2000:]}"

    # It identified a meshmind node of this network.
    info = events["identify"]
    assert info["peer_id"] == status["peer_id"]
    assert info["agent_version"].startswith("meshmind/")
    assert info["protocol_version"] == f"/meshmind/{status['network']}/1"
    assert f"/meshmind/{status['network']}/kad/1" in info["protocols"]
    assert events["ping"]["rtt_ms"] >= 0
    # The DHT under the network's protocol name: v1, never dialled, found by its id.
    assert events["kad-find"]["peer_id"] == v1 and events["kad-find"]["addrs"], events["kad-find"]
    # A real signed ad of one of the subnet's miners.
    ad = meshmind.v1.CapabilityAd()
    ad.ParseFromString(bytes.fromhex(events["gossip"]["data"]))
    meshmind.verify_signature(ad)
    assert ad.miner.hex() in miners and ad.subnet == 1 and ad.network_id == client.network_id()
    # What it published was taken by the node and finalized.
    assert status["peer_id"] in events["published"]["recipients"]
    wait_for("the transaction the js peer published applied", lambda: client.nonce(operator.coldkey) > nonce)
    assert client.account(receiver)["balance"] == 4_242

    transcript = tmp_path / "interop-transcript.jsonl"
    transcript.write_text(done.stdout)
    print("js-libp2p interop transcript:")
    for line in lines:
        shown = {k: (v[:48] + "..." if isinstance(v, str) and len(v) > 48 else v) for k, v in line.items()}
        if "protocols" in shown:
            shown["protocols"] = len(line["protocols"])
        print("  " + json.dumps(shown))
