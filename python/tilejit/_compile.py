"""compile() and par_compile(): the seed's tilelang.jit.compile / par_compile on a Program."""

from __future__ import annotations

import logging
import shlex
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Iterable, Optional, Sequence, Union

from . import _core
from ._core import Error, Program
from .kernel import Kernel

logger = logging.getLogger("tilejit")

OutIdx = Union[int, Sequence[int], None]


def _target_host_text(target_host: Any) -> str:
    """The seed's target_host as text: a string, or a tvm.target.Target (its kind's name)."""
    if not target_host:
        return ""
    kind = getattr(target_host, "kind", None)
    return str(getattr(kind, "name", kind)) if kind is not None else str(target_host)


def _options(out_idx: OutIdx, execution_backend: Optional[str], target: Optional[str],
             target_host: Optional[str], verbose: Optional[bool],
             pass_configs: Optional[dict[str, Any]],
             compile_flags: Union[Sequence[str], str, None],
             host_compiler: Optional[str] = None) -> dict[str, Any]:
    """Keyword arguments for _core.compile. None means: the environment, then 'auto'."""
    if isinstance(out_idx, int):
        out_idx = [out_idx]
    if isinstance(compile_flags, str):
        compile_flags = shlex.split(compile_flags)
    return dict(
        out_idx=None if out_idx is None else list(out_idx),
        execution_backend=execution_backend or "",
        target=str(target) if target else "",
        target_host=_target_host_text(target_host),
        host_compiler=host_compiler or "",
        verbose=verbose,
        # Recorded in the cache key as text.
        pass_configs={str(k): str(v) for k, v in (pass_configs or {}).items()},
        compile_flags=list(compile_flags or []),
    )


def compile(program: Program, out_idx: OutIdx = None, execution_backend: Optional[str] = None,
            target: Optional[str] = None, target_host: Optional[str] = None,
            verbose: Optional[bool] = None, pass_configs: Optional[dict[str, Any]] = None,
            compile_flags: Union[Sequence[str], str, None] = None,
            host_compiler: Optional[str] = None) -> Kernel:
    """Compiles ``program`` into a :class:`Kernel`.

    Looks the kernel up in the memory and disk caches first; builds it on a miss. Options left
    as None come from TILELANG_EXECUTION_BACKEND, TILELANG_TARGET and TILELANG_VERBOSE, else
    "auto". ``execution_backend`` also takes the seed's names ("tvm_ffi", "cython", "dlpack":
    the host-wrapper backend, nvcc for CUDA; "torch": metal; docs/seed-compat.md).
    ``target_host`` is the seed's host target: "llvm" or "c" (this machine) or None;
    ``host_compiler`` names the compiler of generated host code (default: CC/CXX, else c++).
    ``out_idx`` (an index or a list; negative counts from the end) overrides the Program's.
    ``compile_flags`` are appended to the Program's own. Raises CompileError (with ``.log``)
    when the compiler rejects the source, ProgramError for a malformed Program.
    """
    if not isinstance(program, Program):
        raise TypeError(f"tilejit.compile expects a tilejit.Program, got {type(program).__name__}")
    return _core.compile(Kernel, program, **_options(out_idx, execution_backend, target,
                                                    target_host, verbose, pass_configs,
                                                    compile_flags, host_compiler))


def cache_key(program: Program, out_idx: OutIdx = None, execution_backend: Optional[str] = None,
              target: Optional[str] = None, target_host: Optional[str] = None,
              verbose: Optional[bool] = None, pass_configs: Optional[dict[str, Any]] = None,
              compile_flags: Union[Sequence[str], str, None] = None,
              host_compiler: Optional[str] = None) -> str:
    """The key (SHA-256 hex) that :func:`compile` with these options files ``program`` under:
    ``compile(program, ...).cache_key``. Builds nothing, but for the first key of a Program
    with user include directories (its key covers the headers a build reads)."""
    if not isinstance(program, Program):
        raise TypeError(
            f"tilejit.cache_key expects a tilejit.Program, got {type(program).__name__}")
    return _core.cache_key(program, **_options(out_idx, execution_backend, target, target_host,
                                               verbose, pass_configs, compile_flags,
                                               host_compiler))


def _progress(items: Iterable[Any], total: int) -> Iterable[Any]:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return tqdm(items, total=total, desc="tilejit compile", unit="kernel")


def par_compile(programs: Iterable[Program], out_idx: OutIdx = None,
                execution_backend: Optional[str] = None, target: Optional[str] = None,
                target_host: Optional[str] = None, verbose: Optional[bool] = None,
                pass_configs: Optional[dict[str, Any]] = None,
                compile_flags: Union[Sequence[str], str, None] = None,
                num_workers: Optional[int] = None,
                ignore_error: bool = False,
                host_compiler: Optional[str] = None) -> list[Optional[Kernel]]:
    """Compiles several Programs in parallel; results are in input order.

    Each compile runs in a worker thread with the GIL released; NVRTC compiles run in worker
    processes (tilejit-nvrtc-worker, beside the extension module), since NVRTC barely overlaps
    compiles within one process. ``num_workers`` None (or <= 0) means the CPUs this process may
    run on (its affinity mask), never more than there are Programs: the C++ par_compile's rule.
    A progress bar is drawn when tqdm is installed. With ``ignore_error`` a failed Program
    yields None and its error is logged as a warning; otherwise the first failure (in input
    order) is raised once every compile has finished.
    """
    programs = list(programs)
    options = _options(out_idx, execution_backend, target, target_host, verbose, pass_configs,
                       compile_flags, host_compiler)
    if not programs:
        return []
    workers = _core.par_compile_workers(len(programs), num_workers or 0)
    kernels: list[Optional[Kernel]] = [None] * len(programs)
    errors: list[Optional[Error]] = [None] * len(programs)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tilejit-compile") as pool:
        futures = {pool.submit(_core.compile, Kernel, program, _worker_process=True, **options): i
                   for i, program in enumerate(programs)}
        for future in _progress(as_completed(futures), total=len(futures)):
            i = futures[future]
            try:
                kernels[i] = future.result()
            except Error as error:
                errors[i] = error
                if ignore_error:
                    logger.warning("tilejit.par_compile: program %d ('%s') failed: %s", i,
                                   programs[i].name, error)
    if not ignore_error:
        for error in errors:
            if error is not None:
                raise error
    return kernels
