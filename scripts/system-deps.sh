#!/usr/bin/env bash
# System packages the test suite needs beyond Python: Debian's Chromium for the browser tests.
# Installs them when it can (root or passwordless sudo); otherwise says exactly what to run.
set -euo pipefail

CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "error: Chromium is missing at $CHROMIUM; install it with: sudo apt-get install chromium" >&2
  exit 1
fi

echo "installing Chromium (Debian package) for the browser tests..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
"$CHROMIUM" --version
