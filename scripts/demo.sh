#!/usr/bin/env bash
# Builds tilejit into build/ (Release) and runs the real example programs: the C++ examples
# (each checks itself against a plain C++ reference) and `tilejit run --check` on every
# examples/*.json; on a machine where nvidia-smi works, also examples/cuda/*.json.
# Prints a summary and exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
JOBS=${JOBS:-2}

# A fresh machine first gets the build dependencies (a no-op when they are installed).
if ! bash scripts/install-deps.sh; then
  echo "demo: warning: scripts/install-deps.sh failed; trying to build with what is installed"
fi

# Warnings are not errors here: the demo must not depend on one compiler version's
# diagnostics (CI builds with -Werror). Only what the demo runs is built: the CLI and the
# C++ examples (the tests have their own command).
targets=(tilejit_cli)
for source in examples/*.cc; do
  [ -f "$source" ] && targets+=("example_$(basename "$source" .cc)")
done
echo "== configure and build ($BUILD, Release, -j$JOBS): ${targets[*]}"
if ! cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTILEJIT_WERROR=OFF >/dev/null \
   || ! cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}"; then
  echo "demo: BUILD FAILED"
  exit 1
fi

# Kernels compiled by the demo go to a private cache, removed afterwards.
TILELANG_CACHE_DIR=$(mktemp -d)
export TILELANG_CACHE_DIR
trap 'rm -rf "$TILELANG_CACHE_DIR"' EXIT

passed=()
failed=()
run_step() {  # run_step NAME COMMAND...
  local name=$1
  shift
  echo
  echo "== $name"
  if "$@"; then passed+=("$name"); else failed+=("$name"); fi
}

TILEJIT="$BUILD/tools/tilejit"
run_step "tilejit info" "$TILEJIT" info

for example in "$BUILD"/examples/example_*; do
  [ -x "$example" ] || continue
  run_step "$(basename "$example")" "$example"
done

programs=(examples/*.json)
if nvidia-smi >/dev/null 2>&1; then
  programs+=(examples/cuda/*.json)
else
  echo
  echo "== no working nvidia-smi: skipping examples/cuda/*.json"
fi
for program in "${programs[@]}"; do
  [ -f "$program" ] || continue
  run_step "tilejit run --check $program" \
    "$TILEJIT" run "$program" --check --default-size 1000 --seed 1 --repeat 20
done

echo
echo "== summary: ${#passed[@]} passed, ${#failed[@]} failed"
for name in "${passed[@]}"; do echo "  PASS  $name"; done
for name in "${failed[@]}"; do echo "  FAIL  $name"; done
[ "${#failed[@]}" -eq 0 ]
