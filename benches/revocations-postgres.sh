#!/usr/bin/env bash
# The PostgreSQL revocation store at scale, the same measurements as benches/revocations.sh
# (the Redis store's), against a real PostgreSQL made here with initdb (fsync and
# synchronous_commit on, as in production), with release builds of the CLI, the demo and
# the storm harness (tests/src/bin/storm.rs):
#
#   1. bulk revocation through the CLI (`revoke --postgres --sids-from`): revocations/s;
#   2. 1,000,000 session revocations stored: a new demo instance's time to its first
#      answer, and its resident memory against an instance on an empty database;
#   3. 1,000,000 session revocations made two hours ago (outside the window): the same;
#   4. three instances under a steady 1,000 revocations/s: propagation p50/p99/max and
#      request throughput during the storm against idle.
#
# Usage: benches/revocations-postgres.sh [N]   (N session revocations, default 1000000).
# Runs PostgreSQL as the `postgres` user when run as root (it refuses root).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
n=${1:-1000000}

cargo build --release --locked -q -p jwe-session-cli -p jwe-session-examples -p jwe-session-tests \
  --bin jwe-session --bin demo --bin storm
bin=target/release
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d)
chmod 755 "$work"
pids=()
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups); fi
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${pgport:-}" ] && "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

pgport=$(free_port)
mkdir -p "$work/pg" && [ ${#as_pg[@]} -eq 0 ] || chown postgres: "$work/pg"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pg" -U postgres --auth=trust --no-instructions -E UTF8 --locale=C >/dev/null
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w \
  -o "-p $pgport -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work/pg -c max_connections=200" start >/dev/null
psql() { command psql -X -q -A -t -h 127.0.0.1 -p "$pgport" -U postgres "$@"; }
db() { psql -d postgres -c "CREATE DATABASE $1"; echo "postgres://postgres@127.0.0.1:$pgport/$1"; }

demo_start() { # demo_start DATABASE_URL: seconds to the first answer, then RSS (KiB)
  local port t0 t1 pid
  port=$(free_port)
  t0=$(now)
  DATABASE_URL="$1" BIND="127.0.0.1:$port" RUST_LOG=warn \
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

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), PostgreSQL $("$pgbin/postgres" --version | awk '{ print $3 }'), $(date -u +%Y-%m-%d)"

empty=$(db empty)
read -r t_empty rss_empty <<<"$(demo_start "$empty")"
read -r t_empty rss_empty <<<"$(demo_start "$empty")"
echo "empty database: first answer after ${t_empty} s, RSS $((rss_empty / 1024)) MiB"

big=$(db big)
"$bin/jwe-session" revoke --postgres "$big" --force --sid warm-up >/dev/null
seq -f "leaked-%.0f" 1 "$n" >"$work/sids.txt"
t0=$(now)
"$bin/jwe-session" revoke --postgres "$big" --sids-from "$work/sids.txt" >"$work/bulk.json"
t1=$(now)
echo "bulk revoke through the CLI: $n sessions in $(secs "$t0" "$t1") s: $(python3 -c "print(f'{$n / ($t1 - $t0):,.0f}')") revocations/s ($(cat "$work/bulk.json"))"
echo "table size with them: $(psql -d big -c "SELECT pg_size_pretty(pg_total_relation_size('jwe_session.revocations'))")"
read -r t_big rss_big <<<"$(demo_start "$big")"
echo "$n session revocations stored (all within the mirror window): first answer after ${t_big} s, RSS $((rss_big / 1024)) MiB (+$(((rss_big - rss_empty) / 1024)) MiB)"
psql -d big -c "UPDATE jwe_session.revocations SET made_us = made_us - 7200000000" >/dev/null
psql -d big -c "VACUUM ANALYZE jwe_session.revocations" >/dev/null
read -r t_old rss_old <<<"$(demo_start "$big")"
echo "$n session revocations made 2 h ago (outside the window): first answer after ${t_old} s, RSS $((rss_old / 1024)) MiB"

storm=$(db storm)
"$bin/storm" "$storm" 1000 10
