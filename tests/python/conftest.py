"""Real meshmind networks for the Python tests, started with meshmind-testnet on 127.0.0.1.

The binaries come from MESHMIND_BIN_DIR (scripts/test.sh sets it to cargo's release folder);
the embed miners need the model that scripts/fetch-model.sh unpacks.
"""

import json
import os
import pathlib
import re
import subprocess
import time
import urllib.request

import pytest

BIN_DIR = pathlib.Path(os.environ.get("MESHMIND_BIN_DIR", "target/release"))


def testnet_tool() -> str:
    tool = BIN_DIR / "meshmind-testnet"
    if not tool.exists():
        pytest.fail(f"{tool} is missing: build it first (scripts/test.sh does)")
    return str(tool)


class Testnet:
    """A running testnet: its folder, manifest and the nodes' API addresses."""

    def __init__(self, folder: pathlib.Path):
        self.folder = folder
        self.manifest = json.loads((folder / "testnet.json").read_text())

    def api(self, node: str) -> str:
        for entry in self.manifest["nodes"]:
            if entry["name"] == node:
                return f"http://{entry['api']}"
        raise KeyError(node)

    def data_dir(self, node: str) -> pathlib.Path:
        for entry in self.manifest["nodes"]:
            if entry["name"] == node:
                return pathlib.Path(entry["data_dir"])
        raise KeyError(node)

    def configure(self, node: str, section: str, values: dict[str, str]) -> None:
        """Sets keys of one `[section]` of a node's config.toml (values as TOML text); each key
        must already be there. Restart the node for it to take effect."""
        config = self.data_dir(node) / "config.toml"
        text = config.read_text()
        start = text.index(f"\n[{section}]\n")
        end = text.find("\n[", start + 1)
        end = len(text) if end < 0 else end
        body = text[start:end]
        for key, value in values.items():
            # A value is one line, or an array over several.
            body, count = re.subn(rf"^{key} = (\[[^\]]*\]|.*)$", f"{key} = {value}", body, count=1, flags=re.M)
            assert count == 1, f"{node}: no {key} in [{section}]"
        config.write_text(text[:start] + body + text[end:])

    def get(self, node: str, path: str):
        with urllib.request.urlopen(self.api(node) + path, timeout=5) as answer:
            return json.loads(answer.read())

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [testnet_tool(), *args, "--dir", str(self.folder)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"meshmind-testnet {args}: {done.stdout}\n{done.stderr}")
        return done.stdout


def start(folder: pathlib.Path, *flags: str) -> Testnet:
    done = subprocess.run(
        [testnet_tool(), "up", "--dir", str(folder), "--base-port", "0", *flags],
        capture_output=True,
        text=True,
        timeout=150,
    )
    if done.returncode != 0:
        subprocess.run([testnet_tool(), "down", "--purge", "--dir", str(folder)], timeout=60)
        pytest.fail(f"the testnet did not come up:\n{done.stdout}\n{done.stderr}")
    return Testnet(folder)


def wait_for(what: str, check, timeout: float = 60.0, every: float = 0.5):
    """Polls `check` until it returns a true value; fails the test with `what` otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as error:  # a node still starting answers nothing yet
            last = error
        time.sleep(every)
    pytest.fail(f"{what}: not within {timeout} s (last seen: {last!r})")


@pytest.fixture
def network(tmp_path):
    """Starts a testnet with the flags a test gives; stops and removes every one at the end."""
    started = []

    def launch(*flags: str) -> Testnet:
        net = start(tmp_path / f"net{len(started)}", *flags)
        started.append(net)
        return net

    yield launch
    for net in started:
        subprocess.run(
            [testnet_tool(), "down", "--purge", "--dir", str(net.folder)],
            capture_output=True,
            timeout=60,
        )
