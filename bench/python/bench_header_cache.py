"""Cache hits of a Program with include directories: TileLang's TMA GEMM, whose compile reads
hundreds of headers (tilelang/src and CUTLASS).

    python bench/python/bench_header_cache.py [--processes 5] [--hits 200]

Lowers the GEMM (1024^3 fp16, 128x128x32 tiles) and a variant (128x256x64 tiles, the same
headers) for sm_90a, builds both once with the nvrtc backend (no GPU needed: the build stops
at the cubin), then, in each of --processes fresh processes, times the first compile() of
the GEMM (a disk hit that also pays the process's one-time costs: loading NVRTC for the
toolchain fingerprint, ...), the variant's compile() after it (a disk hit: dependency record,
header signatures, verified entry) and the median of --hits repeated compile() calls of the
GEMM (memory hits). Prints the median over processes and how many headers each dependency
record lists.
"""

import argparse
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "python"))

# One fresh process: the first disk hit, a second one, then the memory hits, in microseconds.
HITS = """
import statistics, sys, time
import tilejit
first, second = tilejit.Program.load(sys.argv[1]), tilejit.Program.load(sys.argv[2])
hits = int(sys.argv[3])
def timed_compile(program):
    start = time.perf_counter()
    tilejit.compile(program, target="sm_90a", execution_backend="nvrtc")
    return (time.perf_counter() - start) * 1e6
disk_first, disk_second = timed_compile(first), timed_compile(second)
memory = statistics.median(timed_compile(first) for _ in range(hits)) if hits else 0.0
print(disk_first, disk_second, memory)
"""


def run(programs: list[str], hits: int, cache: str) -> list[float]:
    env = dict(os.environ, TILELANG_CACHE_DIR=cache)
    result = subprocess.run([sys.executable, "-c", HITS, *programs, str(hits)],
                            capture_output=True, text=True, timeout=900, env=env)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip()[-2000:] or "no output")
    return [float(value) for value in result.stdout.split()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--hits", type=int, default=200)
    options = parser.parse_args()
    try:
        import tilelang  # noqa: F401
    except ImportError as error:
        print(f"bench_header_cache: {error}; nothing to measure")
        return 0
    import tilejit
    import tilelang_kernels as kernels

    work = tempfile.mkdtemp(prefix="bench-header-cache-")
    cache = os.path.join(work, "cache")
    programs = []
    for name, func in [("gemm", kernels.matmul(1024, 1024, 1024)),
                       ("variant", kernels.matmul(1024, 1024, 1024, block_M=128, block_N=256,
                                                  block_K=64, num_stages=2))]:
        program = tilejit.Program.from_tilelang(func, target="sm_90a")
        programs.append(os.path.join(work, f"{name}.json"))
        with open(programs[-1], "w") as f:
            f.write(program.to_json())
    start = time.perf_counter()
    run(programs, 0, cache)  # the builds
    print(f"bench_header_cache: both GEMMs built in {time.perf_counter() - start:.1f} s "
          f"(include dirs: {len(program.include_dirs)})", flush=True)
    # A dependency record is two lines (format, base key), then one line per header.
    headers = [len(open(path).read().splitlines()) - 2
               for path in glob.glob(os.path.join(cache, "v1", "deps", "*.deps"))]
    results = [run(programs, options.hits, cache) for _ in range(options.processes)]

    def report(name: str, column: int, scale: float, unit: str) -> None:
        values = [r[column] / scale for r in results]
        print(f"{name:52s} {statistics.median(values):10.3f} {unit} "
              f"(per process: {', '.join(f'{v:.3f}' for v in values)})")

    print(f"{'headers in the dependency records':52s} {headers}")
    report("disk hit, fresh process, first compile()", 0, 1e3, "ms")
    report("disk hit, same process, second kernel", 1, 1e3, "ms")
    report(f"memory hit (median of {options.hits})", 2, 1.0, "us")
    print("bench_header_cache: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
