#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver (Debian packages `chromium` and
# `chromium-driver`) for the monitor page's browser test, once: when both are already
# on the PATH nothing is installed. Prints two lines on stdout: the chromium binary,
# then the chromedriver binary. Fails (exit 1) when the packages cannot be installed.
set -euo pipefail
find_bins() {
  chromium_bin=$(command -v chromium || command -v chromium-browser || true)
  driver_bin=$(command -v chromedriver || true)
  [ -n "$chromium_bin" ] && [ -n "$driver_bin" ]
}
if ! find_bins; then
  echo "installing chromium and chromium-driver (Debian packages)" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "not root and no sudo: cannot install chromium" >&2; exit 1; }
    sudo="sudo -n"
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! $sudo apt-get install -y --no-install-recommends chromium chromium-driver >&2; then
    $sudo apt-get update >&2 || true
    $sudo apt-get install -y --no-install-recommends chromium chromium-driver >&2
  fi
  find_bins || { echo "chromium or chromedriver missing after the install" >&2; exit 1; }
fi
echo "$chromium_bin"
echo "$driver_bin"
