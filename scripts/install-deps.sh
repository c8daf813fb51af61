#!/usr/bin/env bash
# Installs the system packages the build needs, if they are missing. Debian/Ubuntu; needs root or sudo.
set -euo pipefail

packages=()
# The ledger's RocksDB bindings run bindgen, which needs libclang.
dpkg -s libclang-dev >/dev/null 2>&1 || packages+=(libclang-dev)
# Network-namespace testnets and tests use `ip`.
command -v ip >/dev/null 2>&1 || packages+=(iproute2)
# The launcher reads the nodes' JSON status with python3.
command -v python3 >/dev/null 2>&1 || packages+=(python3)
# The model fetch and the Python tests use pip and a virtualenv.
{ python3 -c 'import ensurepip, venv' && python3 -m pip --version; } >/dev/null 2>&1 || packages+=(python3-venv python3-pip)
# RocksDB and libFuzzer are C++.
command -v g++ >/dev/null 2>&1 || packages+=(g++)
command -v make >/dev/null 2>&1 || packages+=(make)
# The README's examples read the API with curl.
command -v curl >/dev/null 2>&1 || packages+=(curl)
# Tests and the testnet read process tables and memory (`ps`).
command -v ps >/dev/null 2>&1 || packages+=(procps)
# The foreign-stack interop test runs a js-libp2p peer on Node.js.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
# The explorer page's test drives a headless Chromium over WebDriver.
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || packages+=(chromium-driver)

if [ ${#packages[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install ${packages[*]} as root first" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "== installing ${packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi

command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
# CI checks formatting and lints.
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    command -v rustup >/dev/null 2>&1 || { echo "cargo $component missing and no rustup to add it" >&2; exit 1; }
    echo "== adding the $component component"
    rustup component add "$component"
  fi
done

