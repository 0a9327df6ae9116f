#!/usr/bin/env bash
# Builds tilejit and runs every test that needs no GPU: the C++ suite (ctest) and the Python
# suite (pytest, against the package installed into a fresh virtual environment the way a
# user installs it). GPU tests are built and skip with a reason where no device exists;
# scripts/gpu-check.sh runs them on a GPU machine.
#
#   scripts/test.sh            # everything
#   TILEJIT_SKIP_PYTHON=1 scripts/test.sh   # no Python suite
#   TILEJIT_SKIP_TSAN=1 scripts/test.sh     # no ThreadSanitizer build (scripts/tsan.sh)
#   TILEJIT_SKIP_ASAN=1 scripts/test.sh     # no ASan + UBSan build, no fuzzing (scripts/asan.sh,
#                                           # scripts/fuzz.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${TILEJIT_JOBS:-$(nproc)}
build=${TILEJIT_BUILD_DIR:-$root/build/test}
# Each phase's end and the time since the start, so a slow CI run shows where its time went.
phase() { echo "== test.sh: $1 done at $((SECONDS / 60)) min $((SECONDS % 60)) s"; }

bash scripts/install-deps.sh
phase "install-deps"

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTILEJIT_WERROR=ON >/dev/null
cmake --build "$build" -j "$jobs"
phase "build"
# A private cache directory, so tests never read or write the user's kernel cache.
export TILELANG_CACHE_DIR="$build/kernel-cache"
rm -rf "$TILELANG_CACHE_DIR"
(cd "$build" && ctest -j "$jobs" --output-on-failure --timeout 600)
phase "ctest"

if [ "${TILEJIT_SKIP_PYTHON:-0}" != 1 ]; then
  venv="$build/venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  # ray: tests/python/test_cluster.py runs par_compile on a local Ray cluster.
  "$venv/bin/python" -m pip install -q pytest numpy ray
  # torch and TileLang (the TileLang front end's tests lower TileLang's kernels; no GPU needed;
  # test_torch_op.py runs torch.compile, whose inductor uses g++ on the CPU).
  "$venv/bin/python" -m pip install -q torch tilelang==0.1.15
  "$venv/bin/python" -m pip install -q "$root"
  # Run from outside the source tree so the installed package, not python/, is imported.
  # TILEJIT_CLI: the CLI the TileLang tests hand their saved Programs to.
  (cd "$build" && TILEJIT_CLI="$build/tools/tilejit" \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/tests/python")
  # The C++ test of TileLang's headers on both backends; ctest above skipped it (no tilelang yet).
  TILEJIT_TILELANG_DIR="$("$venv/bin/python" -c \
    'import importlib.util as u; print(u.find_spec("tilelang").submodule_search_locations[0])')" \
    "$build/tests/cpp/test_tilelang_headers"
  phase "pytest"
fi

if [ "${TILEJIT_SKIP_TSAN:-0}" != 1 ]; then
  bash scripts/tsan.sh "$root/build/tsan"
  phase "ThreadSanitizer"
fi

if [ "${TILEJIT_SKIP_ASAN:-0}" != 1 ]; then
  # One clang build with ASan + UBSan serves both: the C++ tests, then each fuzzer for 60 s.
  bash scripts/asan.sh "$root/build/asan"
  bash scripts/fuzz.sh 60 "$root/build/asan"
  phase "AddressSanitizer and fuzzing"
fi
