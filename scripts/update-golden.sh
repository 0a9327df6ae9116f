#!/usr/bin/env bash
# Regenerates the golden files of the host-wrapper generators (tests/data/golden/) from the
# Programs in tests/cpp/test_codegen_programs.h, then shows what changed. Review the diff by
# eye before committing: the golden files are the reviewed form of the generated code.
#
#   scripts/update-golden.sh [BUILD_DIR]      # default: build-golden
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$repo/build-golden}"

if [[ ! -f "$build/build.ninja" ]]; then
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTILEJIT_WERROR=OFF >/dev/null
fi
ninja -C "$build" test_codegen
TILEJIT_UPDATE_GOLDEN=1 "$build/tests/cpp/test_codegen" --gtest_filter='CodegenGolden.*'
git -C "$repo" status --short -- tests/data/golden
git -C "$repo" diff --stat -- tests/data/golden
