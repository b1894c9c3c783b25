#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 10): fuzz/run.sh 600
# Needs a nightly toolchain and cargo-fuzz (cargo install cargo-fuzz --locked).
# Seeds come from fuzz/seeds/TARGET; findings land in fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-10}
targets=(open header jwks cookies proof authjs claims)
cargo +nightly fuzz build
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== fuzz $t for ${secs}s"
  cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$secs" -print_final_stats=1 2>&1 \
    | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)' || true
  # A crash makes cargo fuzz exit non-zero and writes an artifact: fail loudly.
  if ls "artifacts/$t"/crash-* "artifacts/$t"/leak-* "artifacts/$t"/oom-* 2>/dev/null | grep -q .; then
    echo "fuzz target $t found a failure: see fuzz/artifacts/$t" >&2
    exit 1
  fi
done
