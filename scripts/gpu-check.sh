#!/usr/bin/env bash
# Builds tilejit and runs every GPU test and benchmark in one go, on a machine with a CUDA
# device (Ubuntu 24.04, CUDA 13 at /usr/local/cuda, an H200 here). Prints a short summary
# table last. Logs go to build-gpu/logs; when $OUT is set (a lent GPU machine, which returns at
# most 8 files), the summary and one logs.tar.gz of every log are copied there at exit.
#
#   scripts/gpu-check.sh                 # configure + build (Release, -j16), tests, bench
#   GPU_CHECK_SKIP_CPU_TESTS=1 scripts/gpu-check.sh
#   GPU_CHECK_BUILD_ONLY=1 scripts/gpu-check.sh   # build + install the Python package, then stop
#                                                 # (a lent machine's first call; the next call
#                                                 # finds the build and runs the rest)
#   GPU_CHECK_PART=tests scripts/gpu-check.sh     # only the tests (C++ on both backends, pytest,
#   GPU_CHECK_PART=bench scripts/gpu-check.sh     # examples) or only the benchmarks: one lent
#                                                 # call of at most 10 minutes each
#
# Other parts append their own sections at the end of this file: call `run_step NAME CMD...`
# (its output is logged to $LOGS/NAME.log, its status and last line land in the summary) or
# `record NAME STATUS DETAIL` directly. The summary is printed on exit, after every section.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${GPU_CHECK_BUILD_DIR:-$ROOT/build-gpu}"
JOBS="${GPU_CHECK_JOBS:-16}"
LOGS="$BUILD/logs"
rm -rf "$LOGS"
mkdir -p "$LOGS"
SUMMARY="$LOGS/summary.txt"
: >"$SUMMARY"

export PATH="/opt/torch/.venv/bin:/usr/local/cuda/bin:$PATH"
export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
# A private kernel cache, so that every run compiles what it tests.
export TILELANG_CACHE_DIR="${TILELANG_CACHE_DIR:-$(mktemp -d /tmp/tilejit-gpu-check.XXXXXX)}"

record() {  # record NAME STATUS DETAIL
  printf '%-24s %-6s %s\n' "$1" "$2" "$3" >>"$SUMMARY"
}

print_summary() {
  echo
  echo "==================== gpu-check summary ===================="
  cat "$SUMMARY"
  echo "logs: $LOGS"
  if [ -n "${OUT:-}" ]; then
    cp "$SUMMARY" "$OUT/summary.txt"
    tar -czf "$OUT/logs.tar.gz" -C "$LOGS" .
  fi
}
trap print_summary EXIT

run_step() {  # run_step NAME CMD...: logs to $LOGS/NAME.log; records ok/FAIL and the last line
  local name="$1"
  shift
  local start=$SECONDS
  "$@" >"$LOGS/$name.log" 2>&1
  local status=$?
  local last
  last="$(grep -v '^\s*$' "$LOGS/$name.log" | tail -n 1 | cut -c1-90)"
  if [ $status -eq 0 ]; then
    record "$name" ok "$((SECONDS - start))s  $last"
  else
    record "$name" FAIL "$((SECONDS - start))s  exit $status: $last"
  fi
  return $status
}

# ctest totals as "passed/total, N skipped".
ctest_result() {  # ctest_result LOG
  local line skipped
  line="$(grep -E '% tests passed' "$1" | tail -n 1)"
  skipped="$(grep -c -- '\*\*\*Skipped\|Skipped ' "$1" || true)"
  echo "${line:-no ctest result} (${skipped} skipped)"
}

echo "gpu-check: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
echo "gpu-check: cmake $(cmake --version | head -n 1), logs in $LOGS"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if ! run_step configure cmake -S "$ROOT" -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE="${GPU_CHECK_BUILD_TYPE:-Release}" \
  -DTILEJIT_WERROR=OFF; then
  tail -n 30 "$LOGS/configure.log"
  exit 1
fi
# Keep going past a broken target (ninja -k 0, make -k), so that one part's build error does
# not hide every other part's results; the summary shows the build as FAIL.
keep_going=(-k 0)
[ "${#generator[@]}" -eq 0 ] && keep_going=(-k)
if ! run_step build cmake --build "$BUILD" -j "$JOBS" -- "${keep_going[@]}"; then
  grep -E 'error|FAILED' "$LOGS/build.log" | head -n 30
  if ! ls "$BUILD"/libtilejit.* >/dev/null 2>&1; then
    exit 1
  fi
fi

# The Python package, installed as a user would into the torch venv (the first python3 on
# PATH) with the build tools that venv already has; its build directory is kept, so a later
# call rebuilds only what changed.
python_install() {
  CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" run_step python-install \
    python3 -m pip install --no-build-isolation -v -C build-dir="$BUILD/python" "$ROOT"
}
if [ "${GPU_CHECK_BUILD_ONLY:-0}" = 1 ]; then
  python_install
  exit $?
fi
PART="${GPU_CHECK_PART:-all}"
part() {  # part tests|bench: whether this run includes that part
  [ "$PART" = all ] || [ "$PART" = "$1" ]
}
if ! python_install; then
  grep -E 'error|Error' "$LOGS/python-install.log" | head -n 20
fi
python_ok() { grep -q '^python-install *ok' "$SUMMARY"; }

if part tests; then
# ---- C++ GPU tests (label gpu): one process per test case, serially (one device) ----
(cd "$BUILD" && ctest -L gpu --output-on-failure --timeout 120) >"$LOGS/ctest-gpu.log" 2>&1
status=$?
record ctest-gpu "$([ $status -eq 0 ] && echo ok || echo FAIL)" "$(ctest_result "$LOGS/ctest-gpu.log")"
grep -E '^\s*[0-9]+/[0-9]+ Test' "$LOGS/ctest-gpu.log" | sed 's/^/  /'

# ---- C++ CPU tests (label cpu), now with a driver present ----
if [ "${GPU_CHECK_SKIP_CPU_TESTS:-0}" != 1 ]; then
  (cd "$BUILD" && ctest -L cpu -j "$JOBS" --output-on-failure --timeout 300) >"$LOGS/ctest-cpu.log" 2>&1
  status=$?
  record ctest-cpu "$([ $status -eq 0 ] && echo ok || echo FAIL)" "$(ctest_result "$LOGS/ctest-cpu.log")"
  grep -E 'Failed|\*\*\*' "$LOGS/ctest-cpu.log" | grep -v 'Skipped' | head -n 20 | sed 's/^/  /'
fi

# ---- What tilejit finds on this machine (NVRTC, driver, devices) ----
run_step info "$BUILD/tools/tilejit" info
sed 's/^/  /' "$LOGS/info.log" >>"$SUMMARY"

# ---- CUDA example programs through the CLI (every output element written, no NaN) ----
run_step example-vector_add "$BUILD/tools/tilejit" run "$ROOT/examples/cuda/vector_add.json" \
  --backend nvrtc --set n=1000003 --check
run_step example-row_softmax "$BUILD/tools/tilejit" run "$ROOT/examples/cuda/row_softmax.json" \
  --backend nvrtc --set M=333 --set N=1029 --set scale=0.75 --check

# ---- Python: the GPU tests (TileLang's among them: tests/python/test_tilelang_gpu.py, which
# need tilelang importable by python3, e.g. through PYTHONPATH), then the rest ----
if python_ok; then
  run_step pytest-gpu python3 -m pytest -m gpu -rs -p no:cacheprovider "$ROOT/tests/python"
  grep -E 'test_tilelang_gpu.py' "$LOGS/pytest-gpu.log" | head -n 20 | sed 's/^/  /' >>"$SUMMARY"
  if [ "${GPU_CHECK_SKIP_CPU_TESTS:-0}" != 1 ]; then
    run_step pytest-cpu python3 -m pytest -m "not gpu" -q -p no:cacheprovider "$ROOT/tests/python"
  fi
fi

# ---- nvcc backend: parity with nvrtc, then the whole GPU suite again through nvcc ----
run_step nvcc-parity "$BUILD/tests/cpp/gpu_test_nvcc_parity"
(cd "$BUILD" && TILEJIT_TEST_BACKEND=nvcc ctest -L gpu -E nvcc_parity --output-on-failure \
  --timeout 300) >"$LOGS/ctest-gpu-nvcc.log" 2>&1
status=$?
record ctest-gpu-nvcc "$([ $status -eq 0 ] && echo ok || echo FAIL)" \
  "$(ctest_result "$LOGS/ctest-gpu-nvcc.log")"

# ---- Kernels users bring: template instantiations, C++ linkage, namespaces, a macro-declared
# kernel with an explicit signature, struct scalars by value, module globals written before a
# launch, on nvrtc and nvcc; tests/cpp/gpu/test_user_kernels.cc, also part of ctest -L gpu ----
run_step user-kernels "$BUILD/tests/cpp/gpu_test_user_kernels"
fi

if part bench; then
# ---- The host the timings come from: its cores (threads per core bounds par_compile) and the
# size of the environment (a compile() memory hit reads every entry) ----
record host info "$(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Thread(s) per core: *//p') threads per core, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p'), $(env | wc -l) environment entries"
# ---- Launch overhead: tilejit vs raw cuLaunchKernelEx ----
run_step bench_launch "$BUILD/bench/cpp/bench_launch"
sed -n '/^bench_launch:/,$p' "$LOGS/bench_launch.log" | sed 's/^/  /' >>"$SUMMARY"
# The same call path's host steps up to the driver on this host (CPU time per step, no GPU used).
run_step bench_call_steps "$BUILD/bench/cpp/bench_call_steps" --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true
grep '_median' "$LOGS/bench_call_steps.log" | sed 's/^/  /' >>"$SUMMARY"
# The nvcc backend's call path.
run_step bench_nvcc "$BUILD/bench/cpp/bench_nvcc"
sed -n '/^bench_nvcc:/,$p' "$LOGS/bench_nvcc.log" | sed 's/^/  /' >>"$SUMMARY"

# ---- Python launch paths against the floor and the peers, torch ops ----
if python_ok; then
  run_step bench_launch_py python3 "$ROOT/bench/python/bench_launch.py"
  sed -n '/^device:/,$p' "$LOGS/bench_launch_py.log" | sed 's/^/  /' >>"$SUMMARY"
fi

# ---- Kernel cache: cold compile vs bare NVRTC / host compiler, disk hit in a fresh process,
# memory hit, par_compile of 64 kernels on every core vs one (bench/cpp/bench_cache.cc) ----
run_step bench_cache "$BUILD/bench/cpp/bench_cache" --kernels 64 --repeats 7
# Without par_compile's per-run lines (indented by four spaces; they stay in the log).
sed -n '/^bench_cache:/,$p' "$LOGS/bench_cache.log" | grep -v '^    ' | sed 's/^/  /' >>"$SUMMARY"
# NVRTC worker start-up: cold processes spawned at once vs forked from a warm zygote
# (bench/cpp/bench_nvrtc_startup.cc; docs/PERFORMANCE.md, "par_compile's NVRTC workers").
run_step bench_nvrtc_startup "$BUILD/bench/cpp/bench_nvrtc_startup" --kernels 4 --repeats 5
grep -E '\(medians\)$' "$LOGS/bench_nvrtc_startup.log" | sed 's/^/  /' >>"$SUMMARY"

# ---- TileLang front end: launch and cold compiles through tilejit and through TileLang
# itself (bench/python/bench_tilelang.py), and the cache hits of its GEMM, a Program with
# hundreds of headers (bench/python/bench_header_cache.py; docs/PERFORMANCE.md) ----
if python_ok && python3 -c "import tilelang" >/dev/null 2>&1; then
  run_step bench_tilelang python3 "$ROOT/bench/python/bench_tilelang.py"
  sed -n '/^device:/,$p' "$LOGS/bench_tilelang.log" | sed 's/^/  /' >>"$SUMMARY"
  run_step bench_header_cache python3 "$ROOT/bench/python/bench_header_cache.py"
  sed -n '/^bench_header_cache:/,$p' "$LOGS/bench_header_cache.log" | sed 's/^/  /' >>"$SUMMARY"
else
  record bench_tilelang skip "tilelang is not importable by python3 (PYTHONPATH?)"
fi
fi
