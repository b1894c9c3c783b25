#!/usr/bin/env bash
# The Redis revocation store at scale, against real redis-server processes on loopback,
# with release builds of the CLI, the demo and the storm harness (tests/src/bin/storm.rs):
#
#   1. bulk revocation through the CLI (`revoke --sids-from`): revocations per second;
#   2. 1,000,000 session revocations stored: a new demo instance's time to its first answer,
#      and its resident memory against an instance on an empty Redis;
#   3. 10,000 revocations beside 3,000,000 unrelated keys: the same;
#   4. three instances under a steady 1,000 revocations/s: propagation p50/p99/max and
#      request throughput during the storm against idle.
#
# Usage: benches/revocations.sh [N]   (N session revocations for 1 and 2, default 1000000)
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
n=${1:-1000000}

cargo build --release --locked -q -p jwe-session-cli -p jwe-session-examples -p jwe-session-tests \
  --bin jwe-session --bin demo --bin storm
bin=target/release
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

redis() { # redis PORT: a redis-server with persistence off
  mkdir -p "$work/redis-$1"
  redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/redis-$1" \
    --enable-debug-command local --loglevel warning --daemonize no >/dev/null &
  pids+=($!)
  until redis-cli -p "$1" ping >/dev/null 2>&1; do sleep 0.05; done
}

demo_start() { # demo_start REDIS_PORT: seconds to the first answer, then RSS (KiB)
  local port t0 t1 pid
  port=$(free_port)
  t0=$(now)
  REDIS_URL="redis://127.0.0.1:$1/" BIND="127.0.0.1:$port" RUST_LOG=warn \
    JWE_SESSION_REVOCATIONS="$work/queue-$port.redb" "$bin/demo" >"$work/demo-$port.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  until curl -sf -o /dev/null "http://127.0.0.1:$port/"; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/demo-$port.log"; exit 1; }
    sleep 0.01
  done
  t1=$(now)
  echo "$(secs "$t0" "$t1") $(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")"
  kill "$pid"
}

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(redis-server --version | cut -d' ' -f3), $(date -u +%Y-%m-%d)"

empty=$(free_port); redis "$empty"
read -r t_empty rss_empty <<<"$(demo_start "$empty")"
echo "empty Redis: first answer after ${t_empty} s, RSS $((rss_empty / 1024)) MiB"

big=$(free_port); redis "$big"
seq -f "leaked-%.0f" 1 "$n" >"$work/sids.txt"
t0=$(now)
"$bin/jwe-session" revoke --redis "redis://127.0.0.1:$big/" --sids-from "$work/sids.txt" >"$work/bulk.json"
t1=$(now)
echo "bulk revoke through the CLI: $n sessions in $(secs "$t0" "$t1") s: $(python3 -c "print(f'{$n / ($t1 - $t0):,.0f}')") revocations/s ($(cat "$work/bulk.json"))"
echo "Redis memory with them: $(redis-cli -p "$big" info memory | awk -F: '/^used_memory_human/ { print $2 }' | tr -d '\r')"
read -r t_big rss_big <<<"$(demo_start "$big")"
echo "$n session revocations stored (all within the mirror window): first answer after ${t_big} s, RSS $((rss_big / 1024)) MiB (+$(((rss_big - rss_empty) / 1024)) MiB)"

shared=$(free_port); redis "$shared"
redis-cli -p "$shared" debug populate 3000000 cache: >/dev/null
seq -f "s-%.0f" 1 10000 >"$work/sids10k.txt"
"$bin/jwe-session" revoke --redis "redis://127.0.0.1:$shared/" --sids-from "$work/sids10k.txt" >/dev/null
read -r t_shared rss_shared <<<"$(demo_start "$shared")"
echo "10,000 revocations beside $(redis-cli -p "$shared" dbsize) keys: first answer after ${t_shared} s, RSS $((rss_shared / 1024)) MiB"

storm=$(free_port); redis "$storm"
"$bin/storm" "redis://127.0.0.1:$storm/" 1000 10
