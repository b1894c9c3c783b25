#!/bin/bash
# The README's rotation runbook, run as written, on two demo instances sharing one Redis
# (ports 4101, 4102 and 6391; needs redis-server, curl and jq).
# Each instance has its own copy of the key file (as a Secret mount would give it);
# `ship` delivers keys.json to both with an atomic rename, as Kubernetes does.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
(cd "$repo" && cargo build -q -p jwe-session-cli -p jwe-session-examples --bin demo --bin jwe-session) || exit 1
work=$(mktemp -d) && cd "$work" && echo "# in $work"
export PATH=$repo/target/debug:$PATH
redis-server --port 6391 --save '' --appendonly no --daemonize yes --logfile redis.log >/dev/null
export REDIS_URL=redis://127.0.0.1:6391/
say() { printf '\n$ %s\n' "$*"; eval "$@"; }
ship() { for i in a b; do cp keys.json $i.keys.tmp && chmod 600 $i.keys.tmp && mv $i.keys.tmp $i.keys.json; done; }
kid() { t=$(awk '$6=="session"{print $7}' "$1"); [ -n "$t" ] && echo "$t" | jwe-session inspect | jq -r .header.kid || echo "none, cleared"; }
me() { curl -s -o /dev/null -w "%{http_code}" -b "$2" -c "$2" "http://127.0.0.1:$1/me"; echo " (cookie kid: $(kid $2))"; }
login() { curl -s -o /dev/null -w "%{http_code}\n" -c "$3" -d "username=$2&password=demo" "http://127.0.0.1:$1/login"; }

jwe-session keygen --kid 2026-11 --set > keys.json && chmod 600 keys.json && ship
for i in a b; do
  port=$([ $i = a ] && echo 4101 || echo 4102)
  JWE_SESSION_KEYS_FILE=$PWD/$i.keys.json JWE_SESSION_REVOCATIONS=$PWD/$i.redb BIND=127.0.0.1:$port \
    DEMO_INSECURE_COOKIE=1 RUST_LOG=info demo > $i.log 2>&1 &
done
sleep 2
echo "# alice logs in on A (:4101); bob on B (:4102)"
login 4101 alice alice.jar; login 4102 bob bob.jar
echo "alice on B: $(me 4102 alice.jar)"

echo; echo "## Routine rotation"
say jwe-session rotate --keys keys.json --stage --kid 2026-12
say ship
sleep 1.5; grep -h "key ring replaced" a.log b.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c29-
echo "alice on A: $(me 4101 alice.jar)"
T=$(date -u -d '+8 seconds' +%Y-%m-%dT%H:%M:%SZ)
say jwe-session rotate --keys keys.json --activate 2026-12 --at $T
say ship
sleep 1.5; for f in a.log b.log; do grep "key ring replaced" $f | tail -1; done | sed 's/\x1b\[[0-9;]*m//g' | cut -c29-
echo "before $T: alice on B: $(me 4102 alice.jar); bob on A: $(me 4101 bob.jar)"
while [ "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \< "$T" ]; do sleep 0.2; done; sleep 0.5
echo "at $T: alice on B: $(me 4102 alice.jar); bob on A: $(me 4101 bob.jar)"
login 4102 carol carol.jar >/dev/null; echo "carol logs in on B: $(me 4101 carol.jar)"
say jwe-session rotate --keys keys.json --retire 2026-11; echo "(exit $?)"

echo; echo "## Emergency rotation (2026-12 leaked)"
cp keys.json leaked.json   # what the attacker holds
forge() { now=$(date +%s); printf '{"iss":"jwe-session-demo","sub":"admin","sid":"forged-%s","iat":%s,"exp":%s,"jti":"x","auth_time":%s,"started_us":%s000000,"roles":["admin"]}' $now $now $((now+900)) $now $now \
  | jwe-session encrypt --keys leaked.json --kid 2026-12 --purpose "jwe-session/cookie/session;iss=jwe-session-demo"; }
say 'jwe-session revoke --redis "$REDIS_URL" --all --before now'
echo "alice on A: $(me 4101 alice.jar); bob on B: $(me 4102 bob.jar)"
sleep 1
printf '127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t%s\n' "$(forge)" > forged.jar
echo "a token forged with the leaked key, claiming a later login, on A: $(me 4101 forged.jar)"
say jwe-session rotate --keys keys.json --kid 2026-12-emergency --keep 0
say ship
sleep 1.5
login 4101 alice alice.jar >/dev/null; echo "alice logs in again on A; on B: $(me 4102 alice.jar)"
printf '127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t%s\n' "$(forge)" > forged.jar
echo "a new forgery with the leaked key, on A: $(me 4101 forged.jar); on B: $(me 4102 forged.jar)"
kill %1 %2 2>/dev/null; redis-cli -p 6391 shutdown nosave >/dev/null 2>&1
