#!/usr/bin/env bash
# Installs the rnacos server (a Nacos-compatible registry from crates.io) into a cache
# directory, once. Prints the path of the binary on stdout.
# Cache: $ERPC_CACHE_DIR (default ~/.cache/erpc)/rnacos-<version>/bin/rnacos
set -euo pipefail
version="${RNACOS_VERSION:-0.8.8}"
cache="${ERPC_CACHE_DIR:-$HOME/.cache/erpc}"
root="$cache/rnacos-$version"
bin="$root/bin/rnacos"
if [ ! -x "$bin" ]; then
  echo "installing rnacos $version into $root (takes several minutes on 2 cores)" >&2
  mkdir -p "$root"
  nice -n 10 cargo install rnacos --version "$version" --locked --root "$root" >&2
fi
echo "$bin"
