"""A miner that fronts an OpenAI-compatible server (the `openai` backend): here the server is
another network's validator, whose /v1/embeddings routes to a real model miner."""

import json
import math
import urllib.request

from conftest import wait_for


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def embed(api, text):
    request = urllib.request.Request(
        api + "/v1/embeddings",
        data=json.dumps({"model": "embed", "input": text, "encoding_format": "float"}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=15) as answer:
        return json.loads(answer.read())["data"][0]["embedding"]


def own_weights(net):
    """The validator's own weight vector, by its UIDs."""
    return dict(net.get("v0", "/weights/1").get("own") or [])


def test_a_miner_fronting_an_openai_server_is_scored_and_routed_to(network):
    # The serving engine: a network whose validator answers OpenAI's embeddings API.
    engine = network("--validators", "1", "--miners", "1", "--epoch-ms", "1000",
                     "--behaviour", "m1=embed")
    wait_for("the engine's miner scored", lambda: any(w > 0 for w in own_weights(engine).values()))

    # The market: its miner m1 forwards every embed query to the engine.
    market = network("--validators", "1", "--miners", "1", "--epoch-ms", "1000")
    market.configure("m1", "miner", {
        "backend": '"openai"',
        "url": json.dumps(engine.api("v0") + "/v1"),
        "model": '"embed"',
        "tasks": '["embed"]',
    })
    market.run("restart", "m1")

    hotkey = json.loads((market.data_dir("m1") / "hotkey.json").read_text())["public_key"]

    def scored():
        entry = next(
            (m for m in market.get("v0", "/metagraph/1")["miners"] if m["hotkey"] == hotkey), None
        )
        # Once its old ads (arith, sort: now refused, so scored 0) have expired, only the embed
        # challenges count: the score climbs past 0.9 only if the forwarded vectors are right.
        return entry if entry and entry["tasks"] == ["embed"] and entry["score"] > 0.9 else None

    entry = wait_for("the fronting miner scored by the embedding scorer", scored, timeout=120)
    sentence = "The ferry left the harbour an hour late because of the fog."
    through_market = embed(market.api("v0"), sentence)
    from_engine = embed(engine.api("v0"), sentence)
    assert len(through_market) == 384
    similarity = cosine(through_market, from_engine)
    assert similarity > 0.999, similarity
    print(
        f"openai backend: market -> m1 -> engine /v1/embeddings, cosine {similarity:.6f}, "
        f"m1's score {entry['score']:.3f}"
    )
