"""Kernel timing with torch's CUDA events or CUDA graph replay (TileLang's do_bench)."""

from __future__ import annotations

import statistics
from typing import Any, Callable, Sequence

from ._core import ArgumentError, NotAvailableError

# Larger than the L2 of any current GPU (H200: 60 MB), so zeroing it evicts the kernel's data.
_L2_FLUSH_BYTES = 256 * 1024 * 1024


def _torch_cuda() -> Any:
    try:
        import torch
    except ImportError:
        raise NotAvailableError("Kernel.benchmark needs torch with CUDA; torch is not installed") from None
    if not torch.cuda.is_available():
        raise NotAvailableError("Kernel.benchmark needs a CUDA device; torch sees none")
    return torch


def _device_of(torch: Any, args: Sequence[Any]) -> Any:
    for arg in args:
        if isinstance(arg, torch.Tensor) and arg.is_cuda:
            return arg.device
    return torch.device("cuda", torch.cuda.current_device())


def benchmark(kernel: Callable[..., Any], args: Sequence[Any], warmup: int = 25, rep: int = 100,
              flush_l2: bool = True, backend: str = "event") -> float:
    """Median milliseconds of one ``kernel(*args)`` on the current torch stream.

    backend="event": ``rep`` calls, each between two CUDA events, after ``warmup`` calls; with
    ``flush_l2`` the L2 cache is overwritten before each call (outside the events).
    backend="cudagraph": ``rep`` calls captured in one CUDA graph, which is replayed several
    times; the median replay divided by ``rep``. Host launch overhead is excluded. With
    ``flush_l2`` each call is preceded by a flush in the graph, and the time of a graph of the
    flushes alone is subtracted.
    """
    if warmup < 0 or rep < 1:
        raise ArgumentError(f"benchmark: warmup must be >= 0 and rep >= 1 (got {warmup}, {rep})")
    if backend not in ("event", "cudagraph"):
        raise ArgumentError(f"benchmark: backend must be 'event' or 'cudagraph', got {backend!r}")
    torch = _torch_cuda()
    device = _device_of(torch, args)
    with torch.cuda.device(device):
        flush = torch.empty(_L2_FLUSH_BYTES, dtype=torch.int8, device=device) if flush_l2 else None
        if backend == "event":
            return _bench_events(torch, kernel, args, warmup, rep, flush)
        return _bench_graph(torch, kernel, args, warmup, rep, flush)


def _bench_events(torch: Any, kernel: Callable[..., Any], args: Sequence[Any], warmup: int,
                  rep: int, flush: Any) -> float:
    for _ in range(warmup):
        kernel(*args)
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(rep)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(rep)]
    torch.cuda.synchronize()
    for start, end in zip(starts, ends):
        if flush is not None:
            flush.zero_()
        start.record()
        kernel(*args)
        end.record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in zip(starts, ends))


def _graph_replay_ms(torch: Any, body: Callable[[], None], replays: int) -> float:
    """Median milliseconds of one replay of a graph that runs ``body`` once."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # capture needs warmed-up work on a side stream
        body()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        body()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(replays):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _bench_graph(torch: Any, kernel: Callable[..., Any], args: Sequence[Any], warmup: int,
                 rep: int, flush: Any) -> float:
    for _ in range(warmup):
        kernel(*args)
    torch.cuda.synchronize()

    def calls() -> None:
        for _ in range(rep):
            if flush is not None:
                flush.zero_()
            kernel(*args)

    def flushes() -> None:
        for _ in range(rep):
            flush.zero_()

    replays = 10
    total = _graph_replay_ms(torch, calls, replays)
    if flush is not None:
        total -= _graph_replay_ms(torch, flushes, replays)
    return total / rep
