#!/usr/bin/env bash
# Configures the clang build with AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer's
# coverage instrumentation that scripts/asan.sh and scripts/fuzz.sh share.
#
#   scripts/configure-sanitized.sh BUILD-DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build=$1
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
# WERROR off: the warning set is tuned for GCC, which the main build uses.
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTILEJIT_SANITIZE=address,undefined -DTILEJIT_BUILD_FUZZERS=ON -DTILEJIT_WERROR=OFF \
  -DTILEJIT_BUILD_BENCHMARKS=OFF -DTILEJIT_BUILD_EXAMPLES=OFF "${launcher[@]}" >/dev/null
