#!/usr/bin/env bash
# Installs Chromium (Debian's `chromium` package) when it is missing: the
# e2e browser test opens /docs in headless Chromium (chromedp). Where it
# cannot be installed (not root, no apt) the test skips and says so.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (Debian package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null; }
fi
if ! command -v chromium >/dev/null 2>&1; then
  echo "chromium is not installed: the /docs browser test will skip" >&2
fi
