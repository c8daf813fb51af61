"""OpenAI's Python client against /v1/chat/completions, over a subnet task served by a miner
whose backend echoes its input word by word (the conversation arrives as JSON)."""

import json
import re

import openai

from conftest import wait_for


def test_chat_completions_whole_and_streamed(network):
    net = network("--validators", "1", "--miners", "1", "--epoch-ms", "1000")
    config = net.data_dir("m1") / "config.toml"
    text = config.read_text()
    miner = text.index("\n[miner]\n")
    head, section = text[:miner], text[miner:]
    for key, value in [("backend", '"echo"'), ("tasks", '["chat"]')]:
        section, count = re.subn(
            rf"^{key} = (\[[^\]]*\]|.*)$", f"{key} = {value}", section, count=1, flags=re.M
        )
        assert count == 1, key
    config.write_text(head + section)
    net.run("restart", "m1")
    wait_for(
        "the chat miner's ad",
        lambda: any("chat" in m["tasks"] for m in net.get("v0", "/metagraph/1")["miners"]),
    )
    client = openai.OpenAI(base_url=net.api("v0") + "/v1", api_key="unused", max_retries=0)
    messages = [
        {"role": "system", "content": "You repeat."},
        {"role": "user", "content": "three small words"},
    ]
    sent = json.dumps({"messages": messages}, separators=(",", ":"))

    whole = client.chat.completions.create(model="chat", messages=messages)
    assert whole.choices[0].message.role == "assistant"
    assert json.loads(whole.choices[0].message.content) == {"messages": messages}

    pieces, finish = [], None
    for chunk in client.chat.completions.create(model="1/chat", messages=messages, stream=True):
        choice = chunk.choices[0]
        if choice.delta.content:
            pieces.append(choice.delta.content)
        finish = choice.finish_reason or finish
    assert len(pieces) > 1, pieces
    assert json.loads("".join(pieces)) == {"messages": messages}
    assert finish == "stop"
    print(f"chat: whole reply and {len(pieces)} streamed pieces; payload {len(sent)} bytes")
