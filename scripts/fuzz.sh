#!/usr/bin/env bash
# Runs every `go test -fuzz` target of every workspace module for FUZZTIME
# (default 10s). A target fails only when the fuzzer found an input (it is
# written under testdata/fuzz and must be committed with the fix); the Go
# fuzzing engine sometimes ends a duration-bounded run with a bare "context
# deadline exceeded" and no input, which is its own timer, not a finding.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-10s}
failed=0
for mod in $(go work edit -json | sed -n 's/.*"DiskPath": "\.\/\(.*\)".*/\1/p'); do
  for pkg in $(cd "$mod" && go list ./...); do
    for target in $(cd "$mod" && go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz'); do
      echo "== $pkg $target"
      out=$(cd "$mod" && go test -run XXX -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1)
      if [ $? -ne 0 ]; then
        if grep -q "Failing input written" <<<"$out" || ! grep -q "context deadline exceeded" <<<"$out"; then
          echo "$out"; failed=1
        else
          echo "   (fuzzing engine timer ended the run; no failing input)"
        fi
      fi
    done
  done
done
exit $failed
