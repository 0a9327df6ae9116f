#!/usr/bin/env bash
# Builds tilejit with ThreadSanitizer and runs the tests that exercise compile()'s threads:
# the memory cache's in-flight builds, par_compile's pool, jit's memo, the NVRTC worker pool.
# scripts/test.sh (and so CI) runs it last.
#
#   scripts/tsan.sh [build-dir]        (default: build-tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-tsan}
tests=(test_compile test_par_compile test_jit test_nvrtc_worker)

# WERROR off: GCC warns (-Wtsan) on atomic_thread_fence, which TSan does not model.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTILEJIT_SANITIZE=thread -DTILEJIT_WERROR=OFF \
  -DTILEJIT_BUILD_BENCHMARKS=OFF -DTILEJIT_BUILD_EXAMPLES=OFF >/dev/null
ninja -C "$build" -j"$(nproc)" "${tests[@]}"

# halt_on_error: a report fails the run instead of scrolling past.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
export TILELANG_CACHE_DIR
TILELANG_CACHE_DIR=$(mktemp -d -t tilejit-tsan-XXXXXX)
trap 'rm -rf "$TILELANG_CACHE_DIR"' EXIT
for test in "${tests[@]}"; do
  echo "== $test (ThreadSanitizer)"
  "$build/tests/cpp/$test" --gtest_brief=1
done
echo "ThreadSanitizer: no data races reported"
