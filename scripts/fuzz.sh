#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time:
# `bash scripts/fuzz.sh [seconds] [target...]` (default 60 s per target, all targets). Installs a nightly toolchain and cargo-fuzz when missing
# (idempotent: an installed nightly is not updated, cargo-fuzz stays in ~/.cargo/bin).
# Prints executions and crashes per target and exits non-zero when a target crashed;
# where nightly or cargo-fuzz cannot be installed it prints SKIPPED and exits 0 (the
# same targets run as proptests in `cargo test`, erpc-core/tests/fuzz_props.rs).
#
# The committed seed corpus (fuzz/corpus/<target>) is read only; what libFuzzer adds
# goes to fuzz/target/corpus/<target>, crashing inputs to fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
targets=(frame_stream request_head request response)
if [ "$#" -gt 1 ]; then
  targets=("${@:2}")
fi
export PATH="$HOME/.cargo/bin:$PATH"

skip() {
  echo "SKIPPED: $*; the same targets ran as proptests in cargo test (erpc-core/tests/fuzz_props.rs)"
  exit 0
}

command -v rustup >/dev/null 2>&1 || skip "rustup is not installed, so no nightly toolchain"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal >&2 ||
    skip "the nightly toolchain could not be installed"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked >&2 || skip "cargo-fuzz could not be installed"
fi

# Safe Rust under test: no sanitizer (ASan only slows it), but debug assertions and
# overflow checks on (-a), so arithmetic overflow is a crash.
flags=(--sanitizer none --debug-assertions)
cd fuzz
echo "building the fuzz targets (nightly, release, debug assertions)"
cargo +nightly fuzz build "${flags[@]}"

failed=()
for target in "${targets[@]}"; do
  mkdir -p "target/corpus/$target" "artifacts/$target"
  log="target/fuzz-$target.log"
  status=0
  cargo +nightly fuzz run "${flags[@]}" "$target" "target/corpus/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" >"$log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1 || true)
  if [ -z "$runs" ]; then
    # No final stats after a crash: the last progress line ("#12345 ...") counts.
    runs=$(grep -o '^#[0-9]*' "$log" | tr -d '#' | tail -n 1 || true)
  fi
  crashes=$(grep -o 'Test unit written to [^ ]*' "$log" | sed 's/Test unit written to //' || true)
  count=$(printf '%s' "$crashes" | grep -c . || true)
  printf '%-13s %12s executions in %ss, %s crashes\n' "$target" "${runs:-?}" "$seconds" "$count"
  if [ "$status" -ne 0 ] || [ "$count" -ne 0 ]; then
    failed+=("$target")
    tail -n 40 "$log" >&2
    for input in $crashes; do
      echo "  reproduce: (cd fuzz && cargo +nightly fuzz run ${flags[*]} $target $input)" >&2
    done
  fi
done

if [ "${#failed[@]}" -ne 0 ]; then
  echo "FUZZING FOUND CRASHES in: ${failed[*]} (logs in fuzz/target/fuzz-<target>.log)" >&2
  exit 1
fi
echo "fuzzing: no crashes"
