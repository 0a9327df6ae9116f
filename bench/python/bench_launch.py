"""Host time per launch of one tiny kernel, from Python, against the raw driver floor.

    python bench/python/bench_launch.py [--burst 200] [--bursts 50] [--cpu] [--stat min]

Every row launches the same elementwise kernel over 3 tensors + 1 int (n = 1024, so the GPU
work is negligible and the host cost is what is measured): `burst` launches back to back,
timed on the host with the stream synchronized outside the timed region; the median over
`bursts` bursts (`--stat min`: the fastest burst, for a machine shared with other work), in
microseconds per launch. Ratios are to the floor measured in this run.

The floor is tilejit._core._bench_raw_launch: the kernel's own cubin launched by one
cuLaunchKernelEx per call from a prebuilt parameter array, in a C++ loop in this process (no
Python per launch, no argument checks). The floor and the tilejit call it is compared with are
timed in alternating bursts, so that drift of the host hits both alike. Peers that are not
installed print "n/a" and why. A section with no driver splits a Python call into its steps
(CPython's call, torch's DLPack exchange per tensor, the cpu-backend call). The last lines
compare the ratios with issue 13's goals.
"""

from __future__ import annotations

import argparse
import faulthandler
import statistics
import sys
import time
from typing import Any, Callable, Optional

import tilejit
from tilejit import _core

N = 1024
BLOCK = 256
# The statistic over bursts (--stat): the median, or the fastest burst.
STAT: Callable[[list[float]], float] = statistics.median

ADD3 = """
extern "C" __global__ void add3(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}
"""

INTS19 = [f"i{k}" for k in range(14)]
ADD19 = """
extern "C" __global__ void add19(const float* a, const float* b, const float* c, const float* d,
                                 float* e, {ints}) {{
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < i0) e[i] = a[i] + b[i] + c[i] + d[i] + (float)({sum});
}}
""".format(ints=", ".join(f"int {name}" for name in INTS19), sum=" + ".join(INTS19[1:]))


def add3_program(name: str = "add3") -> tilejit.Program:
    return tilejit.Program(
        name, ADD3,
        params=[tilejit.Tensor("a", "float32", ["n"]), tilejit.Tensor("b", "float32", ["n"]),
                tilejit.Tensor("c", "float32", ["n"]), tilejit.Scalar("n", "int32")],
        launches=[tilejit.Launch("add3", grid=[f"ceildiv(n, {BLOCK})"], block=[BLOCK])])


def add19_program() -> tilejit.Program:
    params = [tilejit.Tensor(x, "float32", [N]) for x in "abcde"]
    params += [tilejit.Scalar(name, "int32") for name in INTS19]
    return tilejit.Program("add19", ADD19, params=params,
                           launches=[tilejit.Launch("add19", grid=[N // BLOCK], block=[BLOCK])])


def per_launch_us(launch: Callable[[], Any], sync: Callable[[], None], burst: int,
                  bursts: int) -> float:
    for _ in range(burst):  # warm-up: first-call costs stay out of the numbers
        launch()
    sync()
    times = []
    for _ in range(bursts):
        sync()
        start = time.perf_counter_ns()
        for _ in range(burst):
            launch()
        times.append((time.perf_counter_ns() - start) / burst / 1000.0)
    sync()
    return STAT(times)


ADD3_C = """
void add3(const float* a, const float* b, float* c, int n) {
  for (int i = 0; i < n; ++i) c[i] = a[i] + b[i];
}
"""


def add3_c_program(name: str) -> tilejit.Program:
    """add3 for the cpu backend (--cpu): the same params, a C loop."""
    return tilejit.Program(
        name, ADD3_C,
        params=[tilejit.Tensor("a", "float32", ["n"]), tilejit.Tensor("b", "float32", ["n"]),
                tilejit.Tensor("c", "float32", ["n"]), tilejit.Scalar("n", "int32")],
        launches=[tilejit.Launch("add3")], language="c")


def python_path_rows(row: Callable[..., None], burst: int, bursts: int) -> None:
    """Where a Python call's host time goes, step by step, with no driver: CPython's call of a
    Python function of 4 arguments (in the same timing loop as every row), torch's DLPack C
    exchange API per tensor and its current-stream query (each in a C loop), and the whole
    tilejit call on the cpu backend with torch CPU tensors and empty C kernels (conversion,
    Binder, the C call, and the GIL released around it), for 3 tensors + 1 int and for 19
    arguments. Run on the GPU host, it splits the Python rows' gap to the floor into these
    parts and the driver's."""
    import torch

    print("-- where a Python call's host time goes (no driver; cpu backend, CPU tensors) --",
          flush=True)
    ints = ", ".join(f"int {name}" for name in INTS19)
    empty3 = tilejit.Program(
        "empty3", "void empty3(const float* a, const float* b, float* c, int n) {}",
        params=[tilejit.Tensor("a", "float32", ["n"]), tilejit.Tensor("b", "float32", ["n"]),
                tilejit.Tensor("c", "float32", ["n"]), tilejit.Scalar("n", "int32")],
        launches=[tilejit.Launch("empty3")], language="c")
    empty19 = tilejit.Program(
        "empty19", "void empty19(const float* a, const float* b, const float* c, const float* d, "
        f"float* e, {ints}) {{}}",
        params=[tilejit.Tensor(x, "float32", [N]) for x in "abcde"] +
        [tilejit.Scalar(name, "int32") for name in INTS19],
        launches=[tilejit.Launch("empty19")], language="c")
    a, b, c, d, e = (torch.randn(N) for _ in range(5))
    ints19 = [N] + list(range(1, 14))

    def python_function(a: Any, b: Any, c: Any, n: int) -> None:
        pass

    row("Python function of 4 args (CPython's call)",
        lambda: per_launch_us(lambda: python_function(a, b, c, N), lambda: None, burst, bursts),
        args=0)
    exchange: list[float] = []

    def exchange_us(which: int) -> float:
        if not exchange:
            runs = [_core._bench_dlpack_exchange(a, 200_000) for _ in range(5)]
            exchange.extend(min(run[k] for run in runs) for k in range(2))
        return exchange[which] / 1000.0

    row("torch DLPack exchange, per tensor (C loop)", lambda: exchange_us(0), args=0)
    row("torch current_work_stream, cpu (C loop)", lambda: exchange_us(1), args=0)
    if torch.cuda.is_available():  # what a CUDA call reads: a CUDA tensor and its stream
        cuda_exchange: list[float] = []

        def cuda_exchange_us(which: int) -> float:
            if not cuda_exchange:
                t = torch.randn(N, device="cuda")
                runs = [_core._bench_dlpack_exchange(t, 200_000) for _ in range(5)]
                cuda_exchange.extend(min(run[k] for run in runs) for k in range(2))
            return cuda_exchange[which] / 1000.0

        row("torch DLPack exchange, CUDA tensor (C loop)", lambda: cuda_exchange_us(0), args=0)
        row("torch current_work_stream, cuda (C loop)", lambda: cuda_exchange_us(1), args=0)
    try:
        k3, k19 = tilejit.compile(empty3, out_idx=[]), tilejit.compile(empty19, out_idx=[])
    except Exception as error:
        print(f"{'cpu-backend rows':46s} {'n/a':>10s} {'':>8s}  {type(error).__name__}: "
              f"{(str(error).splitlines() or [''])[0][:90]}", flush=True)
        return
    row("cpu-backend call, 3 tensors + 1 int (no driver)",
        lambda: per_launch_us(lambda: k3(a, b, c, N), lambda: None, burst, bursts), args=0)
    i0, i1, i2, i3, i4, i5, i6, i7, i8, i9, i10, i11, i12, i13 = ints19
    row("cpu-backend call, 19 args (no driver)",
        lambda: per_launch_us(lambda: k19(a, b, c, d, e, i0, i1, i2, i3, i4, i5, i6, i7, i8, i9,
                                          i10, i11, i12, i13), lambda: None, burst, bursts),
        args=0)


def paired_us(floor_burst: Callable[[], float], launch: Callable[[], Any],
              sync: Callable[[], None], burst: int, bursts: int) -> tuple[float, float]:
    """STAT (us per launch) of the floor and of `launch`, one burst of each per round."""
    for _ in range(burst):
        launch()
    floor_burst()
    sync()
    floors, ours = [], []
    for _ in range(bursts):
        floors.append(floor_burst())
        sync()
        start = time.perf_counter_ns()
        for _ in range(burst):
            launch()
        ours.append((time.perf_counter_ns() - start) / burst / 1000.0)
        sync()
    return STAT(floors), STAT(ours)


def torch_op_rows(row: Callable[..., None], measured: dict[str, float], a: Any, b: Any, c: Any,
                  sync: Callable[[], None], burst: int, bursts: int, cpu: bool = False) -> None:
    """The kernel as a torch operator (docs/torch.md): through torch.ops in eager mode against a
    direct call and against torch's own dispatch of an empty op from Python (the floor), and
    inside a torch.compile'd function of one op against torch.add there. Ends with issue 12's
    two numbers: the eager op's cost over a direct call (goal <= 1 us) and the compiled ratio
    (goal <= 1.2)."""
    import torch

    print("-- torch operators --", flush=True)
    program = add3_c_program if cpu else add3_program
    try:
        into = tilejit.compile(program("add3_op_into"), out_idx=[])
        returning = tilejit.compile(program("add3_op_out"), out_idx=[2])
        op_into = into.as_torch_op("tilejit_bench::add3_into", mutates_args=["c"])
        op_out = returning.as_torch_op("tilejit_bench::add3_out")
    except Exception as error:
        print(f"{'torch operators':46s} {'n/a':>10s} {'':>8s}  {type(error).__name__}: "
              f"{(str(error).splitlines() or [''])[0][:90]}", flush=True)
        return
    # The floor: torch.ops calls that do nothing, an aten op and a Python-implemented one.
    alias = torch.ops.aten.alias.default
    lib = torch.library.Library("tilejit_bench", "FRAGMENT")
    lib.define("empty(Tensor a, Tensor b, Tensor(a0!) c, int n) -> ()")
    lib.impl("empty", lambda *args: None, "CompositeExplicitAutograd")
    empty = torch.ops.tilejit_bench.empty

    rows = (("torch.ops.aten.alias (empty aten op)", lambda: alias(a)),
            ("torch.ops empty Python op (Library impl)", lambda: empty(a, b, c, N)),
            ("tilejit Kernel, in place", lambda: into(a, b, c, N)),
            ("torch.ops op, in place (eager)", lambda: op_into(a, b, c, N)),
            ("tilejit Kernel, out_idx output", lambda: returning(a, b, N)),
            ("torch.ops op, out_idx output (eager)", lambda: op_out(a, b, N)))
    for name, call in rows:
        row(name, lambda call=call: per_launch_us(call, sync, burst, bursts))

    def compiled_row(body: Callable[[Any, Any], Any]) -> float:
        compiled = torch.compile(body, fullgraph=True)
        return per_launch_us(lambda: compiled(a, b), sync, burst, bursts)

    row("torch.compile'd fn: the tilejit op", lambda: compiled_row(lambda x, y: op_out(x, y, N)))
    row("torch.compile'd fn: torch.add", lambda: compiled_row(lambda x, y: torch.add(x, y)))
    over = [measured[op] - measured[direct] for op, direct in (
        ("torch.ops op, in place (eager)", "tilejit Kernel, in place"),
        ("torch.ops op, out_idx output (eager)", "tilejit Kernel, out_idx output"))
        if op in measured and direct in measured]
    if over and "torch.ops.aten.alias (empty aten op)" in measured:
        print(f"  issue 12, eager: the op adds {over[0]:+.2f} us (in place) / "
              f"{over[-1]:+.2f} us (out_idx) over a direct call (goal <= 1 us); torch.ops of an "
              f"empty aten op alone costs {measured['torch.ops.aten.alias (empty aten op)']:.2f} "
              f"us", flush=True)
    ours, theirs = (measured.get("torch.compile'd fn: the tilejit op"),
                    measured.get("torch.compile'd fn: torch.add"))
    if ours and theirs:
        print(f"  issue 12, compiled: the tilejit op / torch.add = {ours / theirs:.2f} "
              f"(goal <= 1.2)", flush=True)


def goals(measured: dict[str, float], floors: dict[int, float]) -> None:
    """Issue 13's launch goals, each a ratio (or difference) of rows of this run."""
    print("-- issue 13 goals, this run --", flush=True)

    def line(what: str, value: Optional[float], unit: str, goal: str, met: Optional[bool]) -> None:
        shown = "n/a" if value is None else f"{value:.2f}{unit}"
        verdict = "" if met is None else ("met" if met else "MISSED")
        print(f"  {what:44s} {shown:>9s}  goal {goal:8s} {verdict}", flush=True)

    ours = measured.get("tilejit Kernel (torch tensors)")
    ratio = ours / floors[4] if ours and 4 in floors else None
    line("torch tensors, 3 tensors + 1 int, x floor", ratio, "x", "<= 1.15",
         None if ratio is None else ratio <= 1.15)
    ours19 = measured.get("tilejit Kernel, 19 args (torch tensors)")
    ratio19 = ours19 / floors[19] if ours19 and 19 in floors else None
    line("torch tensors, 19 arguments, x their floor", ratio19, "x", "<= 1.25",
         None if ratio19 is None else ratio19 <= 1.25)
    peer = measured.get("cuda.core launch")
    lead = (1.0 - ours / peer) * 100.0 if ours and peer else None
    line("ahead of cuda.core (1 - ours / its time)", lead, " %", ">= 10 %",
         None if lead is None else lead >= 10.0)
    memo = measured.get("tilejit @jit memo hit + call")
    extra = memo - ours if memo and ours else None
    line("@tilejit.jit memo hit over a direct call", extra, " us", "<= 0.3",
         None if extra is None else extra <= 0.3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--bursts", type=int, default=50)
    parser.add_argument("--cpu", action="store_true",
                        help="only the rows that need no GPU: the Python call's steps and the "
                        "torch-operator rows, on the cpu backend")
    parser.add_argument("--stat", choices=["median", "min"], default="median",
                        help="statistic over bursts; min for a machine shared with other work")
    options = parser.parse_args()
    burst, bursts = options.burst, options.bursts
    global STAT
    STAT = min if options.stat == "min" else statistics.median
    # Four CUDA frameworks share this process; should one of them crash (at exit too), the
    # Python stack says which, and every row already printed stays printed.
    faulthandler.enable()

    try:
        import torch
    except ImportError:
        print("bench_launch: torch is not installed; nothing to measure")
        return 0
    floors: dict[int, float] = {}  # argument count -> its raw floor
    measured: dict[str, float] = {}

    def row(name: str, measure: Callable[[], float], args: int = 4, is_floor: bool = False) -> None:
        try:
            us = measure()
        except Exception as error:  # a missing or broken peer must not stop the others
            note = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:90]}"
            print(f"{name:46s} {'n/a':>10s} {'':>8s}  {note}", flush=True)
            return
        if is_floor:
            floors[args] = us
        measured[name] = us
        ratio = f"{us / floors[args]:8.2f}" if args in floors else f"{'':>8s}"
        print(f"{name:46s} {us:10.2f} {ratio}", flush=True)

    if options.cpu:
        # The dispatcher's cost is the same on any device: the torch-op rows on CPU tensors.
        print(f"cpu backend, CPU tensors; torch {torch.__version__}; python "
              f"{sys.version.split()[0]}; burst {burst} x {bursts}, {options.stat}", flush=True)
        print(f"{'launch path':46s} {'us/launch':>10s}", flush=True)
        # One thread: inductor's CPU kernel for torch.add would otherwise time its OpenMP pool.
        torch.set_num_threads(1)
        a, b, c = (torch.randn(N) for _ in range(3))
        python_path_rows(row, burst, bursts)
        torch_op_rows(row, measured, a, b, c, lambda: None, burst, bursts, cpu=True)
        print("bench_launch: done", flush=True)
        return 0
    if not torch.cuda.is_available():
        print("bench_launch: no CUDA device; nothing to measure")
        return 0
    device = torch.cuda.current_device()
    sync = torch.cuda.synchronize
    stream = torch.cuda.current_stream().cuda_stream
    a, b, c = (torch.randn(N, device="cuda") for _ in range(3))
    grid = ((N + BLOCK - 1) // BLOCK, 1, 1)

    print(f"device: {torch.cuda.get_device_name(device)}; torch {torch.__version__}; "
          f"python {sys.version.split()[0]}; burst {burst} x {bursts}, {options.stat}", flush=True)
    print(f"{'launch path':46s} {'us/launch':>10s} {'x floor':>8s}", flush=True)

    def raw_floor_burst(compiled: tilejit.Kernel, pointers: list[int],
                        ints: list[int]) -> Callable[[], float]:
        # One timed burst per call; the untimed burst before it takes the library's first
        # (lazily loading) launch.
        def one_burst() -> float:
            ns = _core._bench_raw_launch(compiled._compiled.binary,
                                         compiled.program.launches[0].kernel, grid, (BLOCK, 1, 1),
                                         pointers, ints, stream, device, burst, 2)
            return ns[1] / 1000.0
        return one_burst

    def paired_rows(floor_name: str, name: str, floor_burst: Callable[[], float],
                    launch: Callable[[], Any], args: int) -> None:
        pair: list[tuple[float, float]] = []

        def measure_pair() -> float:
            pair.append(paired_us(floor_burst, launch, sync, burst, bursts))
            return pair[0][0]

        row(floor_name, measure_pair, args=args, is_floor=True)  # prints n/a should it fail
        if pair:
            row(name, lambda: pair[0][1], args=args)

    # tilejit's rows first (both argument counts), so that a peer's failure cannot hide them.
    kernel = tilejit.compile(add3_program(), out_idx=[])
    paired_rows("raw cuLaunchKernelEx (C++ floor)", "tilejit Kernel (torch tensors)",
                raw_floor_burst(kernel, [a.data_ptr(), b.data_ptr(), c.data_ptr()], [N]),
                lambda: kernel(a, b, c, N), args=4)

    @tilejit.jit
    def make_add3(block: int) -> tilejit.Program:
        return add3_program()

    make_add3(BLOCK)
    row("tilejit @jit memo hit + call",
        lambda: per_launch_us(lambda: make_add3(BLOCK)(a, b, c, N), sync, burst, bursts))
    direct = measured.get("tilejit Kernel (torch tensors)")
    memo = measured.get("tilejit @jit memo hit + call")
    if direct and memo:
        print(f"  @tilejit.jit dispatch on a memo hit: {memo - direct:+.2f} us over a direct call",
              flush=True)
    # The tritonbench shape: 5 tensors + 14 ints, against its own floor.
    print("-- 19 arguments (5 tensors + 14 ints) --", flush=True)
    kernel19 = tilejit.compile(add19_program(), out_idx=[])
    t19 = [torch.randn(N, device="cuda") for _ in range(5)]
    ints19 = [N] + list(range(1, 14))
    # The arguments written out, as a call site writes them: `kernel19(*t19, *ints19)` would
    # also time CPython building a list and a tuple of 19 per call (the next row).
    a19, b19, c19, d19, e19 = t19
    i0, i1, i2, i3, i4, i5, i6, i7, i8, i9, i10, i11, i12, i13 = ints19
    paired_rows("raw cuLaunchKernelEx, 19 args (C++ floor)",
                "tilejit Kernel, 19 args (torch tensors)",
                raw_floor_burst(kernel19, [t.data_ptr() for t in t19], ints19),
                lambda: kernel19(a19, b19, c19, d19, e19, i0, i1, i2, i3, i4, i5, i6, i7, i8, i9,
                                 i10, i11, i12, i13), args=19)
    row("tilejit Kernel, 19 args, *-unpacked call",
        lambda: per_launch_us(lambda: kernel19(*t19, *ints19), sync, burst, bursts), args=19)
    python_path_rows(row, burst, bursts)
    torch_op_rows(row, measured, a, b, c, sync, burst, bursts)
    print("-- peers, same 3-tensor + 1-int kernel (x the first floor) --", flush=True)
    row("torch.add(out=)", lambda: per_launch_us(lambda: torch.add(a, b, out=c), sync, burst, bursts))

    def triton_row() -> float:
        import triton
        import triton.language as tl

        @triton.jit
        def add3_triton(a_ptr, b_ptr, c_ptr, n, BLOCK_SIZE: tl.constexpr):
            offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
            mask = offsets < n
            tl.store(c_ptr + offsets, tl.load(a_ptr + offsets, mask=mask) +
                     tl.load(b_ptr + offsets, mask=mask), mask=mask)

        return per_launch_us(lambda: add3_triton[grid](a, b, c, N, BLOCK_SIZE=BLOCK), sync, burst,
                             bursts)

    row("Triton", triton_row)

    def cupy_kernel() -> tuple[Any, Any]:
        import cupy as cp
        import numpy as np

        return cp.RawKernel(ADD3, "add3"), np.int32(N)

    def cupy_row(with_torch_tensors: bool) -> float:
        import cupy as cp

        raw, n32 = cupy_kernel()
        args = (a, b, c) if with_torch_tensors else tuple(cp.asarray(t) for t in (a, b, c))
        return per_launch_us(lambda: raw(grid, (BLOCK,), (*args, n32)), sync, burst, bursts)

    row("CuPy RawKernel (cupy arrays)", lambda: cupy_row(False))
    row("CuPy RawKernel (torch tensors)", lambda: cupy_row(True))

    def cuda_core_row() -> float:
        import numpy as np

        try:
            from cuda.core import Device, LaunchConfig, Program, ProgramOptions, launch
        except ImportError:
            from cuda.core.experimental import Device, LaunchConfig, Program, ProgramOptions, launch
        dev = Device(device)
        dev.set_current()
        arch = "sm_" + "".join(str(x) for x in dev.compute_capability)
        code = Program(ADD3, code_type="c++", options=ProgramOptions(arch=arch)).compile("cubin")
        function = code.get_kernel("add3")
        config = LaunchConfig(grid=grid[0], block=BLOCK)
        cstream = dev.default_stream  # torch's current stream here is the legacy default stream
        pa, pb, pc, n32 = a.data_ptr(), b.data_ptr(), c.data_ptr(), np.int32(N)
        return per_launch_us(lambda: launch(cstream, config, function, pa, pb, pc, n32), sync,
                             burst, bursts)

    row("cuda.core launch", cuda_core_row)

    goals(measured, floors)
    print("bench_launch: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
