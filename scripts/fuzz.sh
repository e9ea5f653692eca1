#!/usr/bin/env bash
# Runs each fuzz target (fuzz/, cargo-fuzz on the nightly toolchain) for SECONDS (default 60 for
# request_body, a quarter of that for identifiers). A crash or a failed check stops it non-zero
# and leaves the input under fuzz/artifacts/. The corpus grows in fuzz/corpus/ (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

run() {
  local target=$1 secs=$2 log
  log=$(mktemp)
  mkdir -p "fuzz/corpus/$target"
  echo "fuzz: $target for ${secs}s"
  if ! cargo +nightly fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$secs" -max_len=4096 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $target FAILED (the input is under fuzz/artifacts/$target/)"
    return 1
  fi
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || tail -n 5 "$log"
}

run request_body "$seconds"
run identifiers "$(( seconds / 4 > 5 ? seconds / 4 : 5 ))"
