#!/usr/bin/env bash
# Runs every benchmark program (services/<svc>/bench/<name>/main.go). Each
# prints a table comparing against a baseline measured in the same run.
# BENCH_FULL=1 selects the full sizes documented in docs/benchmarks.md
# where a program has a shorter default; BENCH_ONLY=<name> runs one.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in services/*/bench/*/; do
  [ -f "$dir/main.go" ] || continue
  name=$(basename "$dir")
  [ -z "${BENCH_ONLY:-}" ] || [ "$BENCH_ONLY" = "$name" ] || continue
  svc=$(basename "$(dirname "$(dirname "$dir")")")
  # The gateway benchmark compares against nginx (it would install it itself; done here so the step is visible).
  if [ "$svc/$name" = gateway/gateway ]; then bash scripts/ensure-nginx.sh; fi
  echo "== $svc/bench/$name"
  (cd "services/$svc" && go run "./bench/$name")
done
