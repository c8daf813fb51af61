"""The Python SDK against real nodes: a wallet funds a new account, registers and stakes a
hotkey, sets its take, moves stake and swaps the hotkey, waiting for each transaction to be
finalized; queries are answered whole and streamed;
the chain verifies from genesis; a Python miner and a Python scorer take part in a subnet."""

import json
import pathlib
import random
import subprocess
import sys

import pytest

import meshmind
from meshmind import Client, Wallet
from meshmind.light import Walker, genesis_set, verify_certificate

from conftest import wait_for

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "sdk" / "python" / "examples"


def test_a_client_funds_registers_stakes_queries_and_verifies(network, tmp_path):
    net = network("--validators", "2", "--miners", "1", "--epoch-ms", "1000")
    client = Client(net.api("v0"))
    operator = Wallet.load(net.data_dir("v0") / "coldkey.json")
    status = client.status()
    assert status["role"] == "validator" and status["network_id"] == client.network_id().hex()
    assert [s["id"] for s in client.subnets()] == [1] and client.subnet(1)["neurons"] == 3
    with pytest.raises(meshmind.ApiError) as missing:
        client.subnet(7)
    assert missing.value.status == 404
    wait_for("a finalized epoch", lambda: (client.head() or 0) >= 1)

    # A new operator: keys written as the CLI writes them, funded by v0's coldkey.
    newcomer = Wallet.create(tmp_path / "newcomer")
    receipt = client.transfer(operator.coldkey, newcomer.coldkey, 50_000_000)
    assert receipt.finalized and len(receipt.hash) == 64
    assert client.account(newcomer.coldkey)["balance"] == 50_000_000

    # Its hotkey registered and staked, each waited for.
    client.register(newcomer.coldkey, newcomer.hotkey, 1)
    client.stake(newcomer.coldkey, newcomer.hotkey, 1, 1_000_000)
    neurons = client.metagraph(1)["chain"]["neurons"]
    mine = next(n for n in neurons if n["hotkey"] == newcomer.hotkey.public_hex)
    assert mine["stake"] >= 1_000_000
    stakes = client.account(newcomer.coldkey)["stakes"]
    assert any(s["hotkey"] == newcomer.hotkey.public_hex and s["amount"] >= 1_000_000 for s in stakes)

    # Its take cut, some stake moved behind v0's validator hotkey, then its hotkey swapped.
    client.set_take(newcomer.coldkey, newcomer.hotkey, 50)
    delegate = client.delegate(newcomer.hotkey)
    assert delegate["take_per_mille"] == 50 and delegate["take_set"], delegate
    v0_hotkey = json.loads((net.data_dir("v0") / "hotkey.json").read_text())["public_key"]
    client.move_stake(newcomer.coldkey, newcomer.hotkey, 1, v0_hotkey, 1, 1_000)
    delegations = client.account(newcomer.coldkey)["delegations"]
    # (already earning: its part of the validator's dividends is staked behind it too)
    assert any(d["hotkey"] == v0_hotkey and d["amount"] >= 1_000 for d in delegations), delegations
    fresh = meshmind.Keypair.generate()
    client.swap_hotkey(newcomer.coldkey, newcomer.hotkey, fresh)
    wait_for(
        "the new hotkey in the old one's place",
        lambda: any(n["hotkey"] == fresh.public_hex for n in client.metagraph(1)["chain"]["neurons"]),
    )
    assert client.delegate(fresh)["take_per_mille"] == 50
    assert all(n["hotkey"] != newcomer.hotkey.public_hex for n in client.metagraph(1)["chain"]["neurons"])

    # A refused transaction names why: a nonce already used.
    with pytest.raises(meshmind.ApiError) as refused:
        client.send(meshmind.tx.transfer(operator.coldkey, 1), newcomer.coldkey, nonce=0, wait=False)
    assert refused.value.status == 422 and "nonce" in refused.value.message

    # Queries through the validator: whole, every answer, streamed.
    words = "pear apple fig kiwi date"
    answer = client.query(1, "sort", words)
    assert answer.text == " ".join(sorted(words.split())) and len(answer.miner) == 64
    assert [a.text for a in client.query_all(1, "sort", words)][0] == answer.text
    stream = client.stream(1, "sort", words)
    assert "".join(stream) == answer.text
    with pytest.raises(meshmind.ApiError) as unknown:
        client.query(9, "sort", words)
    assert unknown.value.code

    # The chain, verified from genesis against the network id pinned from the genesis itself.
    genesis = client.genesis()
    verified = client.verify_chain(network_id=meshmind.content_hash(genesis))
    assert verified.epoch >= 2 and len(verified.next_validators.validators) == 2
    # A forged certificate fails, naming its epoch.
    finalized = client.finalized(1)
    forged = meshmind.v1.FinalizedSnapshot()
    forged.CopyFrom(finalized)
    forged.certificate.signatures[0].signature = bytes(64)
    walker = Walker(genesis, client.network_id())
    walker.step(client.finalized(0))
    with pytest.raises(meshmind.VerificationError, match="epoch 1"):
        walker.step(forged)
    # A set the chain never named fails too.
    stranger = meshmind.v1.ValidatorSet()
    stranger.CopyFrom(genesis_set(genesis))
    stranger.validators[0].stake += 1
    with pytest.raises(meshmind.VerificationError, match="the chain names"):
        verify_certificate(finalized, stranger, client.network_id())
    # The shipped client example walks the same path.
    example = subprocess.run(
        [sys.executable, str(EXAMPLES / "client.py"), str(net.folder)], capture_output=True, text=True, timeout=120
    )
    assert example.returncode == 0 and "chain verified from genesis" in example.stdout, example.stderr
    print(f"sdk client: transfer, register, stake finalized; chain verified to epoch {verified.epoch}")


WORDS = ["amber", "basil", "cobalt", "dune", "elm", "flint", "gale", "hazel", "indigo", "jade"]


def test_a_python_miner_and_a_python_scorer_take_part(network):
    # m1 becomes a Python miner; m2 answers with its input (`wrong`); v0 judges sort in Python.
    net = network("--validators", "1", "--miners", "2", "--epoch-ms", "1000", "--behaviour", "m2=wrong")
    miner = meshmind.Miner()
    callers = []

    @miner.forward("sort")
    def sort(request: meshmind.Request):
        callers.append(request.caller)
        words = sorted(request.text.split())
        if request.stream:
            return (word + (" " if i + 1 < len(words) else "") for i, word in enumerate(words))
        return " ".join(words)

    @miner.blacklist
    def only_permitted(caller):
        return None if caller and caller.permit else "validators only"

    scorer = meshmind.Scorer()
    rounds = []

    @scorer.challenge("sort")
    def make(task):
        words = random.sample(WORDS, 6)
        return meshmind.Challenge(input=" ".join(words), expected=" ".join(sorted(words)))

    @scorer.score("sort")
    def judge(round: meshmind.Round):
        rounds.append(round)
        return [1.0 if a.text == round.expected else 0.0 for a in round.answers]

    miner_url, scorer_url = miner.start(), scorer.start()
    try:
        net.configure("m1", "miner", {"backend": '"http"', "url": json.dumps(miner_url), "tasks": '["sort"]'})
        net.run("restart", "m1")
        config = net.data_dir("v0") / "config.toml"
        config.write_text(
            config.read_text() + f'\n[validator.scorers.sort]\nkind = "http"\nurl = {json.dumps(scorer_url)}\n'
        )
        net.run("restart", "v0")
        hotkeys = {
            name: json.loads((net.data_dir(name) / "hotkey.json").read_text())["public_key"]
            for name in ("v0", "m1", "m2")
        }
        client = Client(net.api("v0"))

        def python_miner_first():
            uids = {m["hotkey"]: m["uid"] for m in client.metagraph(1)["miners"]}
            weights = dict(client.weights(1).get("own") or [])
            w1, w2 = weights.get(uids.get(hotkeys["m1"]), 0), weights.get(uids.get(hotkeys["m2"]), 0)
            return (w1, w2) if rounds and w1 == 65535 and w2 < 65535 else None

        w1, w2 = wait_for("the Python miner ranked first by the Python scorer", python_miner_first, timeout=90)
        # The miner saw who asked: the validator, with its permit and stake.
        seen = [c for c in callers if c is not None]
        assert any(c.hotkey == hotkeys["v0"] and c.permit and c.stake > 0 for c in seen), seen[:3]
        assert {a.miner for r in rounds for a in r.answers} <= {hotkeys["m1"], hotkeys["m2"]}
        # A streamed query reaches the Python miner and comes back in its pieces.
        words = "kiwi fig apple"
        stream = client.stream(1, "sort", words)
        pieces = list(stream)
        assert "".join(pieces) == "apple fig kiwi", pieces
        # The blacklist refuses a caller without a permit.
        refused = meshmind.Miner.handle(miner, {"task": "sort", "input": "b a", "caller": {"hotkey": "", "stake": 0, "permit": False}})
        assert refused == (403, {"error": "validators only"})
        print(f"sdk miner and scorer: {len(rounds)} rounds scored in Python; weights m1 {w1}, m2 {w2}; stream {pieces}")
    finally:
        miner.stop()
        scorer.stop()
