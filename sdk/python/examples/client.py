"""A client that funds a new account, registers and stakes its hotkey, queries a subnet and
verifies the chain, against a local testnet (`meshmind-testnet up --dir ./testnet-data`).

    python examples/client.py ./testnet-data
"""

import json
import pathlib
import sys
import tempfile

import meshmind

testnet = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "testnet-data")
nodes = json.loads((testnet / "testnet.json").read_text())["nodes"]
client = meshmind.Client("http://" + next(n["api"] for n in nodes if n["name"] == "v0"))
operator = meshmind.Wallet.load(testnet / "v0" / "coldkey.json")
newcomer = meshmind.Wallet.create(tempfile.mkdtemp(prefix="meshmind-wallet-"))
print("new wallet:", newcomer)

print("transfer:", client.transfer(operator.coldkey, newcomer.coldkey, 10_000_000))
print("register:", client.register(newcomer.coldkey, newcomer.hotkey, subnet=1))
print("stake:   ", client.stake(newcomer.coldkey, newcomer.hotkey, subnet=1, amount=1_000_000))
print("account: ", client.account(newcomer.coldkey))

answer = client.query(1, "sort", "pear apple fig")
print(f"sort answered by {answer.miner[:16]}... in {answer.elapsed_us} us: {answer.text}")
print("streamed:", list(client.stream(1, "sort", "kiwi date banana")))

verified = client.verify_chain()
print(f"chain verified from genesis to epoch {verified.epoch}; "
      f"{len(verified.next_validators.validators)} validators finalize the next epoch")
