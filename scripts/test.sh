#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests (unit, integration,
# compile-fail, doc), Nacos integration tests against real servers, and a benchmark
# smoke run. Installs what it needs (cached under ~/.cache/erpc), idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "registry servers for the Nacos integration tests"
if rnacos_bin=$(bash scripts/install-rnacos.sh); then
  export ERPC_RNACOS_BIN="$rnacos_bin"
  export ERPC_REQUIRE_RNACOS=1
  echo "rnacos: $ERPC_RNACOS_BIN"
else
  echo "WARNING: rnacos could not be installed; its Nacos tests will report SKIPPED" >&2
fi
if [ -f scripts/install-nacos.sh ]; then
  for line in 2 3; do
    if lib=$(bash scripts/install-nacos.sh "$line"); then
      export "ERPC_NACOS${line}_LIB=$lib"
      export "ERPC_REQUIRE_NACOS${line}=1"
      echo "nacos $line.x: $lib"
    else
      echo "WARNING: official Nacos $line.x could not be assembled; its tests will report SKIPPED" >&2
    fi
  done
fi

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace"
cargo test --workspace

if [ -d erpc-bench ]; then
  step "benchmark smoke run"
  cargo run --release -q -p erpc-bench -- --smoke
fi

step "all checks passed"
