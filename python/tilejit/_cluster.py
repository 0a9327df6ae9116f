"""par_compile on a cluster: compile tasks run on Ray workers or any concurrent.futures
executor, and their results come back as verified cache entries (docs/cluster.md).

Each task compiles a chunk of Programs with the worker's own thread pool (NVRTC compiles in
worker processes, as a local par_compile does), so the kernels land in the worker's disk
cache and, when TILEJIT_REMOTE_CACHE is set there, on the shared Redis server. The task
returns its entries as one archive (``tilejit cache pack`` format); the caller checks and
unpacks it into its own disk cache and loads every kernel from there.

A task that fails (a worker died, the executor raised) is submitted once more; if it fails
again, each of its Programs is reported as failed, the way a compile error is. A compile
error is a result, not a task failure: it is reported without a retry, since compiling the
same source again gives the same error.
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any, Optional

from . import _core
from ._core import Error, Program

logger = logging.getLogger("tilejit")


def compile_chunk(items: list[tuple[str, dict[str, Any]]],
                  num_workers: int) -> tuple[list[Optional[tuple[str, str, dict[str, Any]]]],
                                             bytes]:
    """The task body, run on a worker: compiles the Programs given as (JSON, compile options).

    Returns, per Program, None when it compiled or (error type name, message, attributes);
    and an archive of the entries that compiled.
    """
    from .kernel import Kernel

    programs = [Program.from_json(text) for text, _ in items]
    failures: list[Optional[tuple[str, str, dict[str, Any]]]] = [None] * len(programs)
    compiled = []
    with ThreadPoolExecutor(max_workers=max(1, min(num_workers, len(programs))),
                            thread_name_prefix="tilejit-compile") as pool:
        futures = [pool.submit(_core.compile, Kernel, program, _worker_process=True, **options)
                   for program, (_, options) in zip(programs, items)]
        for i, future in enumerate(futures):
            try:
                compiled.append(future.result()._compiled)
            except Error as error:
                attributes = {name: getattr(error, name) for name in ("log", "options",
                                                                     "source_name", "code")
                              if hasattr(error, name)}
                failures[i] = (type(error).__name__, str(error), attributes)
    # The artifacts themselves, not disk entries: a kernel may have come from any tier.
    return failures, _core._cache_pack_kernels(compiled) if compiled else b""


def _rebuild_error(kind: str, message: str, attributes: dict[str, Any]) -> Error:
    cls = getattr(_core, kind, Error)
    if not (isinstance(cls, type) and issubclass(cls, Error)):
        cls = Error
    error = cls(message)
    for name, value in attributes.items():
        setattr(error, name, value)
    return error


class _Progress:
    """A tqdm bar counting Programs when tqdm is installed; nothing otherwise."""

    def __init__(self, total: int) -> None:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self._bar = None
        else:
            self._bar = tqdm(total=total, desc="tilejit compile", unit="kernel")

    def update(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _ray_submitter(num_workers: int):
    """submit(fn, *args) -> Future for Ray tasks (ray.init() first when needed)."""
    try:
        import ray
    except ImportError as error:
        raise Error("par_compile(cluster='ray') needs Ray: pip install ray") from error
    if not ray.is_initialized():
        ray.init()
    # Ray's own retries are off: a failed task is retried once, here, for every executor alike.
    task = ray.remote(max_retries=0, num_cpus=1)(compile_chunk)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return (lambda fn, *args: task.remote(*args).future()), cpus


def par_compile_on_cluster(prepared: list[tuple[Program, dict[str, Any]]],
                           cluster: Optional[str], executor: Any, num_workers: Optional[int],
                           ignore_error: bool, chunk_size: Optional[int]) -> list[Any]:
    """par_compile of (Program, compile options) pairs through `cluster` or `executor`."""
    from .kernel import Kernel

    programs = [program for program, _ in prepared]
    if executor is not None and cluster is not None:
        raise _core.ArgumentError("par_compile: give cluster= or executor=, not both")
    if executor is not None:
        if not callable(getattr(executor, "submit", None)):
            raise _core.ArgumentError(
                f"par_compile: executor must have a submit(fn, *args) method returning a "
                f"concurrent.futures.Future, got {type(executor).__name__}")
        submit, parallelism = executor.submit, getattr(executor, "_max_workers", None) or 2
    elif cluster == "ray":
        submit, parallelism = _ray_submitter(num_workers or 0)
    else:
        raise _core.ArgumentError(f"par_compile: cluster must be 'ray' or None, got {cluster!r}")

    task_workers = num_workers or os.cpu_count() or 1
    # A few chunks per worker keeps them all busy to the end without a task per Program.
    size = chunk_size or max(1, math.ceil(len(programs) / (4 * parallelism)))
    chunks = [list(range(start, min(start + size, len(programs))))
              for start in range(0, len(programs), size)]
    items = [(program.to_json(0), options) for program, options in prepared]

    errors: list[Optional[Error]] = [None] * len(programs)
    compiled = [False] * len(programs)
    attempts = [0] * len(chunks)
    pending: dict[Future, int] = {}

    def launch(c: int) -> None:
        attempts[c] += 1
        pending[submit(compile_chunk, [items[i] for i in chunks[c]], task_workers)] = c

    progress = _Progress(len(programs))
    try:
        for c in range(len(chunks)):
            launch(c)
        while pending:
            future = next(as_completed(list(pending)))
            c = pending.pop(future)
            try:
                failures, archive = future.result()
            except Exception as failure:  # the task itself failed: any exception at all
                if attempts[c] < 2:
                    logger.warning("tilejit.par_compile: a compile task failed (%s); retrying it",
                                   failure)
                    launch(c)
                    continue
                for i in chunks[c]:
                    errors[i] = Error(f"par_compile: the compile task for Program '"
                                      f"{programs[i].name}' failed twice: {failure}")
            else:
                if archive:
                    _core._cache_unpack(archive)
                for i, failure in zip(chunks[c], failures):
                    if failure is None:
                        compiled[i] = True
                    else:
                        errors[i] = _rebuild_error(*failure)
            progress.update(len(chunks[c]))
    finally:
        progress.close()

    kernels: list[Optional[Kernel]] = [None] * len(programs)
    for i, program in enumerate(programs):
        if compiled[i]:
            # A disk hit on the entry just unpacked (or, should it have been evicted since,
            # a local compile).
            kernels[i] = _core.compile(Kernel, program, **prepared[i][1])
        elif ignore_error:
            logger.warning("tilejit.par_compile: program %d ('%s') failed: %s", i, program.name,
                           errors[i])
    if not ignore_error:
        for error in errors:
            if error is not None:
                raise error
    return kernels
