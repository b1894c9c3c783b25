#!/usr/bin/env bash
# Seal/open benchmarks of jwe-session against the crates users would pick instead, all in
# one criterion run, printed as one table and written as CSV to target/compare.csv.
#
#   benches/compare.sh             # one full measurement (about 3 minutes after the build)
#   benches/compare.sh --quick     # a short measurement (about 40 seconds)
#   benches/compare.sh --runs 3    # repeat, and report each row's median over the runs
#
# Needs OpenSSL headers for josekit (Debian: libssl-dev). The benches are their own
# workspace so those crates stay out of the main build and tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export CARGO_TARGET_DIR="$root/target"
runs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) export COMPARE_QUICK=1 ;;
    --runs) runs=$2; shift ;;
    *) echo "usage: benches/compare.sh [--quick] [--runs N]" >&2; exit 2 ;;
  esac
  shift
done

samples=$(mktemp)
for run in $(seq "$runs"); do
  log=$(mktemp)
  echo "== run $run of $runs"
  (cd "$here" && cargo bench --bench tokens 2>&1) | tee "$log" | grep -E '^(token_len|[a-z-]+/(seal|open)/)' || true
  # One sample per row per run, read from criterion's estimates before the next run.
  python3 - "$log" "$CARGO_TARGET_DIR" >>"$samples" <<'PY'
import json, os, sys
log, target = sys.argv[1], sys.argv[2]
lens = {}
for line in open(log):
    if line.startswith("token_len,"):
        _, impl, size, n = line.strip().split(",")
        lens[(impl, size)] = n
for impl in ["jwe-session", "jwe-session-authjs", "josekit", "biscuit", "cookie-private", "jsonwebtoken-hs256", "aes-gcm-floor"]:
    for size in ["typical", "large"]:
        for op in ["seal", "open"]:
            path = os.path.join(target, "criterion", impl, op, size, "new", "estimates.json")
            if os.path.exists(path):
                m = json.load(open(path))["median"]["point_estimate"]
                print(f"{impl},{size},{op},{m},{lens.get((impl, size), 0)}")
PY
done

python3 - "$samples" "$CARGO_TARGET_DIR" "$runs" <<'PY'
import os, statistics, sys
samples, target, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
order, values, lens = [], {}, {}
for line in open(samples):
    impl, size, op, m, n = line.strip().split(",")
    key = (impl, size, op)
    if key not in values:
        order.append(key)
        values[key] = []
    values[key].append(float(m))
    lens[key] = n
rows = [(k, statistics.median(values[k]), lens[k]) for k in order]
base = {(s, o): m for ((i, s, o), m, _) in rows if i == "jwe-session"}
with open(os.path.join(target, "compare.csv"), "w") as f:
    f.write("implementation,size,op,median_ns,token_len\n")
    for ((i, s, o), m, n) in rows:
        f.write(f"{i},{s},{o},{m:.0f},{n}\n")
label = "median" if runs == 1 else f"median of {runs}"
print()
print(f"{'implementation':<20} {'size':<8} {'op':<5} {label:>14} {'vs jwe-session':>15} {'token_len':>10}")
for ((i, s, o), m, n) in rows:
    ratio = m / base[(s, o)] if (s, o) in base else float("nan")
    print(f"{i:<20} {s:<8} {o:<5} {m/1000:>11.2f} µs {ratio:>14.2f}x {n:>10}")
print(f"\nCSV: {os.path.join(target, 'compare.csv')}")
PY
