"""A scorer written in Python, run by the validator through `exec`, decides the miners' ranks."""

import json
import pathlib
import sys

from conftest import wait_for

SCORER = pathlib.Path(__file__).with_name("sort_scorer.py")


def test_a_python_scorer_ranks_the_miners(network, tmp_path):
    # m1 sorts; m2 answers with its input (the `wrong` behaviour), which this scorer gives only
    # partial credit: the word lists are shuffled, so a few words are in place by chance.
    net = network(
        "--validators", "1", "--miners", "2", "--epoch-ms", "1000",
        "--behaviour", "m2=wrong",
    )
    calls = tmp_path / "scorer-calls.jsonl"
    config = net.data_dir("v0") / "config.toml"
    config.write_text(
        config.read_text()
        + "\n[validator.scorers.sort]\nkind = \"exec\"\n"
        + f"exec = {json.dumps([sys.executable, str(SCORER), str(calls)])}\n"
    )
    net.run("restart", "v0")

    def ranks():
        miners = {m["hotkey"]: m["uid"] for m in net.get("v0", "/metagraph/1")["miners"]}
        weights = dict(net.get("v0", "/weights/1").get("own") or [])
        return miners, weights

    hotkeys = {
        name: json.loads((net.data_dir(name) / "hotkey.json").read_text())["public_key"]
        for name in ("m1", "m2")
    }

    def sorted_first():
        if not calls.exists():
            return False
        miners, weights = ranks()
        uid1, uid2 = miners.get(hotkeys["m1"]), miners.get(hotkeys["m2"])
        w1, w2 = weights.get(uid1, 0), weights.get(uid2, 0)
        return (w1, w2) if w1 == 65535 and w2 < 65535 else False

    w1, w2 = wait_for("the Python scorer's ranking in v0's weights", sorted_first, timeout=90)
    lines = [json.loads(line) for line in calls.read_text().splitlines()]
    made = [line for line in lines if line["call"] == "challenge"]
    judged = [line for line in lines if line["call"] == "score"]
    assert made and judged, lines[:3]
    assert all(line["body"]["task"] == "sort" for line in made)
    # Each round's answers come together, with who answered and how fast.
    answers = judged[-1]["body"]["answers"]
    assert {a["miner"] for a in answers} <= set(hotkeys.values())
    assert all(a["elapsed_ms"] >= 0 for a in answers)
    print(f"python scorer: {len(made)} challenges, {len(judged)} rounds scored; weights m1 {w1}, m2 {w2}")
