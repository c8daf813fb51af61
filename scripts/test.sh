#!/usr/bin/env bash
# Every test: the Rust workspace (unit, integration, simulations, real-process scenarios), then
# the Python tests (the Python SDK, OpenAI's client and a Python scorer against real nodes). Fetches the
# embedding model first (scripts/fetch-model.sh) and installs the Python tests' packages into a
# virtualenv under the cache.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
mkdir -p "$CARGO_TARGET_DIR"
# Absolute, so the Python tests find the binaries from their own folder.
CARGO_TARGET_DIR="$(cd "$CARGO_TARGET_DIR" && pwd)"
bash scripts/fetch-model.sh >/dev/null

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "== cargo test --workspace --release"
cargo test --workspace --release --locked 2>&1 | tee "$log"
rust="$(grep -E '^test result:' "$log" | awk '{ passed += $4; failed += $6 } END { printf "%d passed, %d failed", passed, failed }')"

echo "== python tests (tests/python)"
venv="${MESHMIND_PYTHON_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/meshmind/python}"
if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
# The Python SDK, built from this checkout (its messages generated from protocols/proto).
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ./sdk/python
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check ./sdk/python
# The foreign-stack interop test's js-libp2p peer: its npm packages, as the lock file pins them.
npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error >/dev/null
# The nodes the tests start are the ones cargo just built.
export MESHMIND_BIN_DIR="$CARGO_TARGET_DIR/release"
cargo build --release --locked --quiet -p meshmind-node --bin meshmind -p meshmind-testnet --bin meshmind-testnet
set +e
(cd tests/python && "$venv/bin/python" -m pytest -q -s -p no:cacheprovider .) 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
python="$(grep -Eo '[0-9]+ (passed|failed|errors?)' "$log" | tr '\n' ' ' || true)"
echo "tests: rust ${rust}; python ${python:-none ran}"
exit "$status"
