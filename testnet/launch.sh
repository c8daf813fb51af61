#!/usr/bin/env bash
# First command for a newcomer: installs what the build needs, builds meshmind in release mode, and
# starts the best local network the current code can run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
echo "== building meshmind (release; the first build takes several minutes)"
cargo build --release --locked -p meshmind-node --bin meshmind
target="${CARGO_TARGET_DIR:-target}"
meshmind="$target/release/meshmind"

dir="${1:-./testnet-data}"
mkdir -p "$dir"
for node in v0 v1 v2 v3; do
  [ -f "$dir/$node.hotkey.json" ] || "$meshmind" keys generate --kind hotkey --out "$dir/$node.hotkey.json"
  [ -f "$dir/$node.coldkey.json" ] || "$meshmind" keys generate --kind coldkey --out "$dir/$node.coldkey.json"
done
echo
for node in v0 v1 v2 v3; do
  echo "== $node"
  "$meshmind" keys show "$dir/$node.hotkey.json"
done
cat <<MSG

Keys for four validators are in $dir. The multi-process testnet launcher is not built yet:
this script currently stops after preparing identities.
MSG
