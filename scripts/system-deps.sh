#!/usr/bin/env bash
# System packages beyond Python: Debian's Chromium for the browser tests, and nginx (the reverse
# proxy of `make check-deploy`, the reference deployment without containers).
# Installs them when it can (root or passwordless sudo); otherwise says exactly what to run.
set -euo pipefail

CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
packages=()
[ -x "$CHROMIUM" ] || packages+=(chromium fonts-liberation)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || packages+=(nginx-light)
if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "error: missing system packages; install them with: sudo apt-get install ${packages[*]}" >&2
  exit 1
fi

echo "installing system packages (Debian): ${packages[*]}..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
if [[ " ${packages[*]} " == *" nginx-light "* ]]; then
  # The package's own service would serve its default site on port 80 of every interface; the
  # check starts an nginx of its own on loopback.
  $SUDO systemctl disable --now nginx >/dev/null 2>&1 || $SUDO service nginx stop >/dev/null 2>&1 || true
fi
[ -x "$CHROMIUM" ] && "$CHROMIUM" --version
exit 0
