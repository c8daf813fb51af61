"""OpenAI's own Python client against a validator's /v1/embeddings, routed to real model miners."""

import math

import openai
import pytest

from conftest import wait_for


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.fixture
def embed_net(network):
    net = network(
        "--validators", "1", "--miners", "2", "--epoch-ms", "1000",
        "--behaviour", "m1=embed", "--behaviour", "m2=embed",
    )
    client = openai.OpenAI(base_url=net.api("v0") + "/v1", api_key="not-needed", max_retries=0)
    # The validator routes to miners it has scored: wait until one has a weight.
    wait_for(
        "a scored embed miner",
        lambda: any(w > 0 for _, w in (net.get("v0", "/weights/1").get("own") or [])),
    )
    return net, client


def test_embeddings_create_returns_384_dimensions_that_mean_something(embed_net):
    _, client = embed_net
    texts = [
        "A man is playing a guitar on the stage.",
        "Someone performs music with a stringed instrument.",
        "The stock market fell sharply on Tuesday.",
    ]
    # The client asks for base64 by default and decodes it itself.
    answer = client.embeddings.create(model="embed", input=texts)
    vectors = [item.embedding for item in sorted(answer.data, key=lambda d: d.index)]
    assert [len(v) for v in vectors] == [384, 384, 384]
    assert abs(math.sqrt(sum(x * x for x in vectors[0])) - 1.0) < 1e-3
    close, far = cosine(vectors[0], vectors[1]), cosine(vectors[0], vectors[2])
    assert close > far + 0.2, (close, far)
    print(f"openai client: 3 x 384-d vectors; close pair {close:.3f}, unrelated pair {far:.3f}")

    floats = client.embeddings.create(
        model="all-MiniLM-L6-v2", input=texts[0], encoding_format="float"
    )
    assert len(floats.data) == 1
    assert cosine(floats.data[0].embedding, vectors[0]) > 0.999


def test_errors_come_in_openais_shape(embed_net):
    _, client = embed_net
    with pytest.raises(openai.NotFoundError) as missing:
        client.embeddings.create(model="gpt-4o", input="hello")
    assert missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.embeddings.create(model="embed", input="hello", dimensions=12)
    assert "384" in bad.value.body["message"]
    models = [m.id for m in client.models.list()]
    assert "embed" in models


def post(api, path, body):
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        api + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_query_bytes_travel_exactly_with_their_media_type(embed_net):
    import base64
    import struct

    net, client = embed_net
    api = net.api("v0")
    text = "Binary answers come back byte for byte."
    status, answer = post(api, "/query", {
        "subnet": 1, "task": "embed", "encoding": "base64", "content_type": "text/plain",
        "input": base64.b64encode(text.encode()).decode(),
    })
    assert status == 200, answer
    assert answer["content_type"] == "application/x-f32le"
    raw = base64.b64decode(answer["output"])
    assert len(raw) == 384 * 4
    vector = struct.unpack("<384f", raw)
    reference = client.embeddings.create(model="embed", input=text, encoding_format="float")
    assert cosine(vector, reference.data[0].embedding) > 0.9999

    # Bytes that are not text reach the miner as they are, and it says why it refuses them.
    status, refused = post(api, "/query", {
        "subnet": 1, "task": "embed", "encoding": "base64",
        "input": base64.b64encode(b"\xff\xfe\x00binary").decode(),
    })
    assert status >= 400 and "UTF-8" in json_text(refused), refused
    status, bad = post(api, "/query", {"subnet": 1, "task": "embed", "encoding": "base64",
                                         "input": "not base64!"})
    assert status == 400 and "base64" in json_text(bad), bad


def json_text(value):
    import json

    return json.dumps(value)
