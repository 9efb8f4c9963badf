#!/usr/bin/env bash
# Installs Debian's chromium for the console's browser test
# (internal/console/browser_test.go) when it is missing, and prints its path.
# Idempotent: does nothing when a chromium is already on PATH. Needs root
# and apt (CI runs as root); elsewhere it says what to do and fails.
set -euo pipefail
find_bin() {
  for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  done
  return 1
}
if bin=$(find_bin); then
  echo "$bin"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium is missing: install Debian's chromium package (apt-get install chromium)" >&2
  exit 1
fi
echo "installing chromium (Debian package) for the console's browser test" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium >&2
find_bin
