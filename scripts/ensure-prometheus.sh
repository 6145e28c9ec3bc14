#!/usr/bin/env bash
# Installs Prometheus and promtool (Debian's `prometheus` package) when they
# are missing: the chart tests run `promtool check/test rules`, and the e2e
# suite runs a real Prometheus server against the running services.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing prometheus (Debian package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # The package's service is not wanted: tests start their own servers.
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
fi
if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool could not be installed (apt-get install prometheus)" >&2
  exit 1
fi
