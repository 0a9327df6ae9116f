#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (clang, with AddressSanitizer and UBSan) and runs each
# for a bounded time from its seed corpus in fuzz/corpus/<target>/, two at a time. A crash, a
# sanitizer report, a leak or a hang fails the run; the input is kept under
# BUILD-DIR/fuzz-artifacts/ and libFuzzer's last lines are printed. New corpus entries go to
# BUILD-DIR/fuzz-corpus/<target>/, never into the repository. scripts/test.sh (and so CI) runs
# it with 60 seconds per target.
#
#   scripts/fuzz.sh [seconds-per-target] [build-dir]      (defaults: 60, build/asan)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${1:-60}
build=${2:-build/asan}
targets=(fuzz_expr fuzz_program_json fuzz_signature fuzz_binder fuzz_cache_entry)
parallel=${TILEJIT_FUZZ_PARALLEL:-2}

bash scripts/configure-sanitized.sh "$build"
ninja -C "$build" -j"$(nproc)" "${targets[@]}"

export ASAN_OPTIONS="detect_leaks=1 ${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 ${UBSAN_OPTIONS:-}"
mkdir -p "$build/fuzz-artifacts"
run_target() {
  local target=$1 corpus="$build/fuzz-corpus/${1#fuzz_}"
  mkdir -p "$corpus"
  # -timeout: one input taking longer is a hang; -rss_limit_mb: a blow-up is a finding too.
  "$build/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$target-" \
    "$corpus" "$root/fuzz/corpus/${target#fuzz_}" >"$build/fuzz-$target.log" 2>&1
}
declare -A pids
failed=0
report() {
  local target=$1 status=$2 runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/fuzz-$target.log" | tail -1)
  if [ "$status" -eq 0 ]; then
    echo "== $target: ${runs:-?} executions in ${seconds}s, nothing found"
  else
    echo "== $target: FAILED after ${runs:-?} executions (exit $status); log $build/fuzz-$target.log"
    tail -n 40 "$build/fuzz-$target.log"
    failed=1
  fi
}
for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do sleep 1; done
  run_target "$target" &
  pids[$target]=$!
done
for target in "${targets[@]}"; do
  status=0
  wait "${pids[$target]}" || status=$?
  report "$target" "$status"
done
[ "$failed" -eq 0 ] || { echo "fuzzing found a failure"; exit 1; }
echo "fuzzing: no failures"
