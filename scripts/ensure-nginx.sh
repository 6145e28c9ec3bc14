#!/usr/bin/env bash
# Installs nginx (Debian's package) for the gateway benchmark
# (services/gateway/bench/gateway), which compares the gateway with nginx
# as a reverse proxy. Does nothing when nginx is already there.
set -euo pipefail
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "nginx is missing and apt-get is not available: install nginx to run the gateway benchmark" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "installing nginx (Debian package) for the gateway benchmark"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq nginx >/dev/null
# The package starts a system nginx on :80; the benchmark runs its own.
if command -v service >/dev/null 2>&1; then $SUDO service nginx stop >/dev/null 2>&1 || true; fi
