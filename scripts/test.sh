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
# Each line that installs is required by the tests (ERPC_NACOS_REQUIRE); a line that
# cannot be installed here is reported and its tests print SKIPPED.
available=0
if rnacos_bin=$(bash scripts/install-rnacos.sh); then
  export ERPC_RNACOS_BIN="$rnacos_bin"
  available=1
  echo "rnacos: $ERPC_RNACOS_BIN"
else
  echo "WARNING: rnacos could not be installed; its Nacos tests will report SKIPPED" >&2
fi
for line in 2 3; do
  if lib=$(bash scripts/install-nacos.sh "$line"); then
    export "ERPC_NACOS${line}_LIB=$lib"
    available=$((available + 1))
    echo "official Nacos $line.x: $lib"
  else
    echo "WARNING: official Nacos $line.x could not be assembled; its tests will report SKIPPED" >&2
  fi
done
if [ "$available" -eq 3 ]; then
  export ERPC_NACOS_REQUIRE=all
elif [ -n "${ERPC_RNACOS_BIN:-}" ]; then
  export ERPC_NACOS_REQUIRE=1
fi

step "ZooKeeper for the erpc-zookeeper integration tests"
if zookeeper_lib=$(bash scripts/install-zookeeper.sh); then
  export ERPC_ZOOKEEPER_LIB="$zookeeper_lib" ERPC_ZOOKEEPER_REQUIRE=1
  echo "ZooKeeper: $ERPC_ZOOKEEPER_LIB"
else
  echo "WARNING: ZooKeeper could not be installed; its tests will report SKIPPED" >&2
fi

step "headless Chromium for the erpc monitor page test"
# Where the packages install, the browser test is required (ERPC_CHROMIUM_REQUIRE);
# where they cannot, it says SKIPPED.
if chromium_bins=$(bash scripts/install-chromium.sh); then
  export ERPC_CHROMIUM="$(sed -n 1p <<<"$chromium_bins")"
  export ERPC_CHROMEDRIVER="$(sed -n 2p <<<"$chromium_bins")"
  export ERPC_CHROMIUM_REQUIRE=1
  echo "Chromium: $ERPC_CHROMIUM, chromedriver: $ERPC_CHROMEDRIVER"
else
  echo "SKIPPED: Chromium and chromium-driver could not be installed; the monitor page test will report SKIPPED" >&2
fi

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo doc --workspace --no-deps (broken intra-doc links are errors)"
cargo doc --workspace --no-deps

step "cargo test --workspace (all but the Nacos and ZooKeeper suites)"
cargo test --workspace --exclude erpc-nacos --exclude erpc-zookeeper

# The workspace run above already builds erpc with `tls` (erpc-bench enables it); this
# step keeps the TLS suite running, and visible, should that ever change.
step "TLS tests (feature tls; certificates generated per test)"
cargo test -p erpc --features tls --test tls
cargo test -p erpc-core --features tls --lib transport::tls

step "OpenTelemetry tests (feature otel; spans through the SDK's in-memory exporter)"
cargo test -p erpc --features otel --test otel
cargo test -p erpc-core --features otel --lib filter

step "soak, 60 s: 1,000 connections while 3 providers restart in turn (erpc-chaos/README.md)"
cargo run -q -p erpc-chaos --bin soak -- --duration 60s

step "fuzzing: each cargo-fuzz target 60 s (SKIPPED where nightly is unavailable)"
bash scripts/fuzz.sh 60

step "Nacos suite, one test at a time (each starts rnacos and two JVM Nacos servers)"
cargo test -p erpc-nacos -- --test-threads 1

step "ZooKeeper suite, one test at a time (each starts its own ZooKeeper servers)"
cargo test -p erpc-zookeeper -- --test-threads 1

if [ -d erpc-bench ]; then
  step "benchmark smoke run"
  cargo run -q -p erpc-bench -- --smoke
fi

step "all checks passed"
