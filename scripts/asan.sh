#!/usr/bin/env bash
# Builds tilejit and the C++ tests that drive its CPU paths with AddressSanitizer and
# UndefinedBehaviorSanitizer (clang), and runs them: the expression code, the Program reader,
# signatures, the Binder, the caches, compile(), the CPU backend and the CLI. The build
# directory is the one scripts/fuzz.sh builds its fuzzers in (one instrumented library for
# both). scripts/test.sh (and so CI) runs it.
#
#   scripts/asan.sh [build-dir]        (default: build/asan)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/asan}
tests=(test_expr test_program_json test_signature test_binder test_bad_input test_cache_key
       test_cache_corruption test_compile test_cpu_backend test_cli)

bash scripts/configure-sanitized.sh "$build"
ninja -C "$build" -j"$(nproc)" tilejit_cli "${tests[@]}"

# Any report fails the run; UBSan's are otherwise printed and passed over.
export ASAN_OPTIONS="detect_leaks=1 abort_on_error=0 ${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 ${UBSAN_OPTIONS:-}"
export TILELANG_CACHE_DIR
TILELANG_CACHE_DIR=$(mktemp -d -t tilejit-asan-XXXXXX)
trap 'rm -rf "$TILELANG_CACHE_DIR"' EXIT
for test in "${tests[@]}"; do
  echo "== $test (AddressSanitizer + UndefinedBehaviorSanitizer)"
  "$build/tests/cpp/$test" --gtest_brief=1
done
echo "AddressSanitizer + UndefinedBehaviorSanitizer: no reports"
