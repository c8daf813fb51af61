#!/usr/bin/env bash
# The first command for a newcomer: installs what the build needs, builds meshmind in release mode, and
# starts a local network on 127.0.0.1 (one validator and MINERS miners, default 3), leaving it running.
#   ./testnet/launch.sh         start (or restart) the network; data in ./testnet-data
#   ./testnet/launch.sh stop    stop every node (SIGTERM), keeping the data
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${MESHMIND_TESTNET_DIR:-./testnet-data}"
miners="${MINERS:-3}"
base_port="${API_PORT:-7410}"

stop_all() {
  local stopped=0
  for pidfile in "$dir"/*/pid; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" && stopped=$((stopped + 1))
    fi
    rm -f "$pidfile"
  done
  echo "stopped $stopped node(s); data kept in $dir"
}

if [ "${1:-}" = "stop" ]; then
  stop_all
  exit 0
fi

bash scripts/install-deps.sh
command -v python3 >/dev/null 2>&1 || { echo "python3 is needed to read the nodes' JSON status" >&2; exit 1; }
echo "== building meshmind (release; the first build takes several minutes)"
cargo build --release --locked -p meshmind-node --bin meshmind
target="${CARGO_TARGET_DIR:-target}"
bin="$(cd "$target/release" && pwd)/meshmind"

stop_all >/dev/null
mkdir -p "$dir"

json_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

wait_status() {
  local api="$1"
  for _ in $(seq 1 100); do
    if out="$("$bin" status --api "http://$api" 2>/dev/null)"; then
      echo "$out"
      return 0
    fi
    sleep 0.2
  done
  echo "node at $api did not come up; see its log" >&2
  return 1
}

start_node() {
  local name="$1" role="$2" port="$3"; shift 3
  local data="$dir/$name"
  if [ ! -f "$data/config.toml" ]; then
    local genesis_args=()
    [ "$role" = "miner" ] && genesis_args=(--genesis "$dir/v0/genesis.toml")
    "$bin" init --role "$role" --data-dir "$data" --api-listen "127.0.0.1:$port" "${genesis_args[@]}" >/dev/null
    # Refresh ads every 10 s on a local network.
    sed -i 's/^ad_ttl_ms = .*/ad_ttl_ms = 30000/' "$data/config.toml"
  fi
  MESHMIND_LOG="${MESHMIND_LOG:-info}" nohup "$bin" run --data-dir "$data" "$@" > "$data/node.log" 2>&1 &
  echo $! > "$data/pid"
}

started=$(date +%s.%N)
start_node v0 validator "$base_port"
v_status="$(wait_status "127.0.0.1:$base_port")"
bootnode="$(echo "$v_status" | json_field "[a for a in d['listen'] if 'quic-v1' in a][0]")"
for i in $(seq 1 "$miners"); do
  start_node "m$i" miner $((base_port + i)) --bootnode "$bootnode"
done
for i in $(seq 1 "$miners"); do wait_status "127.0.0.1:$((base_port + i))" >/dev/null; done

printf '== waiting for the validator to see %s miners ' "$miners"
for _ in $(seq 1 120); do
  seen="$("$bin" status --api "http://127.0.0.1:$base_port" | json_field "d['miners_seen']")"
  [ "$seen" -ge "$miners" ] && break
  printf '.'
  sleep 0.5
done
echo
healthy=$(python3 -c "print(round($(date +%s.%N) - $started, 1))")

echo
printf '%-5s %-10s %-54s %-16s %s\n' node role "peer id" api "miners seen"
for name in v0 $(seq -f 'm%g' 1 "$miners"); do
  port=$base_port; [ "$name" != v0 ] && port=$((base_port + ${name#m}))
  "$bin" status --api "http://127.0.0.1:$port" | python3 -c "
import json,sys; d=json.load(sys.stdin)
print('%-5s %-10s %-54s %-16s %s' % ('$name', d['role'], d['peer_id'], '127.0.0.1:$port', d['miners_seen']))"
done
echo
echo "all healthy ${healthy}s after start. Try:"
echo "  $bin query --api http://127.0.0.1:$base_port --subnet 1 --task arith --input '6 * 7'"
echo "  curl -s http://127.0.0.1:$base_port/metagraph/1; curl -s http://127.0.0.1:$base_port/weights/1"
echo "Logs: $dir/<node>/node.log. Stop: ./testnet/launch.sh stop"
