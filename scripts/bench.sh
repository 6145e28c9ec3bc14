#!/usr/bin/env bash
# Runs every benchmark program (services/*/bench/*/main.go). Each prints a
# table comparing against a baseline measured in the same run. Set
# BENCH_FULL=1 for the full sizes documented in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in services/*/bench/*/; do
  [ -f "$dir/main.go" ] || continue
  mod=$(cd "$dir" && go list -m)
  pkg=$(cd "$dir" && go list .)
  echo "== $pkg"
  (cd "services/$(basename "$(dirname "$(dirname "$dir")")")" && go run "$pkg" ${BENCH_ARGS:-})
done
