#!/usr/bin/env bash
# Seal/open benchmarks of jwe-session against the crates users would pick instead, in one
# criterion run, printed as one table and written as CSV to target/compare.csv.
#
#   benches/compare.sh           # full measurement (a few minutes)
#   benches/compare.sh --quick   # short measurement (about a minute after the build)
#
# Needs OpenSSL headers for josekit (Debian: libssl-dev). The benches are their own
# workspace so those crates stay out of the main build and tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export CARGO_TARGET_DIR="$root/target"
if [ "${1:-}" = "--quick" ]; then export COMPARE_QUICK=1; fi

log=$(mktemp)
(cd "$here" && cargo bench --bench tokens 2>&1) | tee "$log" | grep -E '^(token_len|[a-z-]+/(seal|open)/)' || true

python3 - "$log" "$CARGO_TARGET_DIR" <<'PY'
import json, os, sys
log, target = sys.argv[1], sys.argv[2]
lens = {}
for line in open(log):
    if line.startswith("token_len,"):
        _, impl, size, n = line.strip().split(",")
        lens[(impl, size)] = int(n)
impls = ["jwe-session", "josekit", "biscuit", "cookie-private", "jsonwebtoken-hs256", "aes-gcm-floor"]
rows = []
for impl in impls:
    for size in ["typical", "large"]:
        for op in ["seal", "open"]:
            path = os.path.join(target, "criterion", impl, op, size, "new", "estimates.json")
            if not os.path.exists(path):
                continue
            median = json.load(open(path))["median"]["point_estimate"]
            rows.append((impl, size, op, median, lens.get((impl, size), 0)))
base = {(s, o): m for (i, s, o, m, _) in rows if i == "jwe-session"}
with open(os.path.join(target, "compare.csv"), "w") as f:
    f.write("implementation,size,op,median_ns,token_len\n")
    for (i, s, o, m, n) in rows:
        f.write(f"{i},{s},{o},{m:.0f},{n}\n")
print()
print(f"{'implementation':<20} {'size':<8} {'op':<5} {'median':>10} {'vs jwe-session':>15} {'token_len':>10}")
for (i, s, o, m, n) in rows:
    ratio = m / base[(s, o)] if (s, o) in base else float("nan")
    med = f"{m/1000:.2f} µs"
    print(f"{i:<20} {s:<8} {o:<5} {med:>10} {ratio:>14.2f}x {n:>10}")
print(f"\nCSV: {os.path.join(target, 'compare.csv')}")
PY
