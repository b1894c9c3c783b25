#!/usr/bin/env bash
# Instructions per seal and per open for every implementation in src/cases.rs, and per
# request through the layer (src/layer.rs), counted by valgrind's callgrind: unlike time on
# a shared VM, the count is the same on every run.
#
#   benches/instructions.sh        # table, and CSV in target/instructions.csv
#
# Each case runs N and N+1000 times; the difference / 1000 is one operation, without the
# setup. Counts are user-space instructions only: the getrandom syscall each jwe-session
# seal makes for its IV runs in the kernel and is not in them. Under valgrind, code that
# picks its path by CPU features sees valgrind's model of the CPU (AES-NI, PCLMULQDQ,
# AVX2; no VAES or AVX-512), so OpenSSL (josekit) and ring (biscuit) may run a different
# AES-GCM path than natively; for typical sessions the JSON work dominates anyway.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export CARGO_TARGET_DIR="$root/target"
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 2; }
(cd "$here" && cargo build --release --bin count 2>&1 | tail -1)
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$CARGO_TARGET_DIR/release/count" "$@" 2>&1 |
    sed -n 's/.*refs: *//p' | tr -d ,
}
csv="$CARGO_TARGET_DIR/instructions.csv"
echo "implementation,size,op,instructions" >"$csv"
for impl in jwe-session josekit biscuit cookie-private jsonwebtoken-hs256 aes-gcm-floor; do
  for size in typical large; do
    for op in seal open; do
      a=$(count "$impl" "$size" "$op" 100)
      b=$(count "$impl" "$size" "$op" 1100)
      echo "$impl,$size,$op,$(((b - a) / 1000))" >>"$csv"
    done
  done
done
# The layer, in-process (src/layer.rs): what it adds to a request over the bare service.
for req in "bare service" "no cookie" "valid cookie" "valid cookie (cache off)" "valid cookie, route never reads it (cache off)" "device-bound cookie" "login"; do
  a=$(count layer "$req" 100)
  b=$(count layer "$req" 1100)
  echo "layer,-,\"$req\",$(((b - a) / 1000))" >>"$csv"
done
python3 - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
ours = {(r["size"], r["op"]): int(r["instructions"]) for r in rows if r["implementation"] == "jwe-session"}
print(f"{'implementation':20} {'size':8} {'op':5} {'instructions':>12} {'vs jwe-session':>15}")
for r in rows:
    if r["implementation"] == "layer":
        continue
    n = int(r["instructions"])
    print(f"{r['implementation']:20} {r['size']:8} {r['op']:5} {n:>12,} {n / ours[(r['size'], r['op'])]:>14.2f}x")
layer = {r["op"]: int(r["instructions"]) for r in rows if r["implementation"] == "layer"}
print()
print(f"{'layer request':48} {'instructions':>12} {'added by the layer':>19}")
for req, n in layer.items():
    added = "-" if req == "bare service" else f"{n - layer['bare service']:,}"
    print(f"{req:48} {n:>12,} {added:>19}")
PY
echo
echo "CSV: $csv"
