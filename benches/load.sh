#!/usr/bin/env bash
# HTTP load on the demo's /me, with and without a session, and on /healthz (a route behind
# the layer that never reads the session) with and without the session cookie, on loopback
# only, bounded in time: benches/load.sh [SECONDS] (default 10). Needs wrk (Debian: apt-get install wrk).
# wrk and the server share this machine's cores, so the figures are a floor.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
cd "$root"
cargo build -q --release -p jwe-session-examples --bin demo
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=warn BIND=127.0.0.1:$port DEMO_INSECURE_COOKIE=1 target/release/demo >/dev/null 2>&1 &
demo=$!
trap 'kill $demo 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
cookie=$(curl -s -i -d 'username=alice&password=demo' "http://127.0.0.1:$port/login" \
  | tr -d '\r' | sed -n 's/^set-cookie: \(session=[^;]*\).*/\1/Ip' | head -n1)
[ -n "$cookie" ] || { echo "login failed" >&2; exit 1; }
curl -s -o /dev/null -w '%{http_code}\n' -H "Cookie: $cookie" "http://127.0.0.1:$port/me" | grep -q 200

echo "== GET /me with a session (${secs}s, 2 threads, 32 connections)"
wrk -t2 -c32 -d"${secs}s" --latency -H "Cookie: $cookie" "http://127.0.0.1:$port/me"
echo
echo "== GET /me without a session (answers 401 by design)"
wrk -t2 -c32 -d"${secs}s" --latency "http://127.0.0.1:$port/me"
echo
echo "== GET /healthz with the session cookie (behind the layer, never reads the session)"
wrk -t2 -c32 -d"${secs}s" --latency -H "Cookie: $cookie" "http://127.0.0.1:$port/healthz"
echo
echo "== GET /healthz without a cookie"
wrk -t2 -c32 -d"${secs}s" --latency "http://127.0.0.1:$port/healthz"
