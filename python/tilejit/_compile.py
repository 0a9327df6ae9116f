"""compile() and par_compile(): the seed's tilelang.jit.compile / par_compile on a Program."""

from __future__ import annotations

import logging
import os
import shlex
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Iterable, Optional, Sequence, Union

from . import _core, _pass_configs
from ._capture import refuse_during_capture
from ._core import Error, Program
from .kernel import Kernel

logger = logging.getLogger("tilejit")

OutIdx = Union[int, Sequence[int], None]


def is_tilelang_function(value: Any) -> bool:
    """A TileLang PrimFunc or @tilelang.jit function, told apart without importing TileLang."""
    module = type(value).__module__
    return module.startswith(("tvm.", "tilelang."))


def _target_text(target: Any) -> str:
    """The seed's target forms as tilejit's text: a string as is, a tvm Target or a Target
    dict by its CUDA arch (else its kind)."""
    if not target:
        return ""
    if isinstance(target, str):
        return target
    if isinstance(target, dict):
        return str(target.get("arch") or target.get("kind") or "")
    kind = getattr(target, "kind", None)
    if kind is not None:
        return str(target.attrs.get("arch", "") or kind.name)
    return str(target)


def _target_host_text(target_host: Any) -> str:
    """The seed's target_host as text: a string, or a tvm.target.Target (its kind's name)."""
    if not target_host:
        return ""
    kind = getattr(target_host, "kind", None)
    return str(getattr(kind, "name", kind)) if kind is not None else str(target_host)


def _options(out_idx: OutIdx, execution_backend: Optional[str], target: Any,
             target_host: Optional[str], verbose: Optional[bool],
             pass_configs: Optional[dict[str, Any]],
             compile_flags: Union[Sequence[str], str, None],
             host_compiler: Optional[str] = None) -> dict[str, Any]:
    """Keyword arguments for _core.compile of a hand-written Program. None means: the
    environment, then 'auto'."""
    if isinstance(out_idx, int):
        out_idx = [out_idx]
    if isinstance(compile_flags, str):
        compile_flags = shlex.split(compile_flags)
    return dict(
        out_idx=None if out_idx is None else list(out_idx),
        execution_backend=execution_backend or "",
        target=_target_text(target),
        target_host=_target_host_text(target_host),
        host_compiler=host_compiler or "",
        verbose=verbose,
        # The keys tilejit honours become flags (and so part of the cache key); the others
        # are warned about, never silently hashed.
        pass_configs={},
        compile_flags=_pass_configs.for_program(pass_configs) + list(compile_flags or []),
    )


def _program_and_options(program: Any, out_idx: OutIdx, execution_backend: Optional[str],
                         target: Any, target_host: Optional[str], verbose: Optional[bool],
                         pass_configs: Optional[dict[str, Any]],
                         compile_flags: Union[Sequence[str], str, None],
                         host_compiler: Optional[str] = None
                         ) -> tuple[Program, dict[str, Any]]:
    """A Program and its compile options; a TileLang function is lowered by TileLang and
    converted first (tilejit.tilelang), taking out_idx, pass_configs and flags into the
    Program."""
    if isinstance(program, Program):
        return program, _options(out_idx, execution_backend, target, target_host, verbose,
                                 pass_configs, compile_flags, host_compiler)
    if not is_tilelang_function(program):
        raise TypeError(f"tilejit.compile expects a tilejit.Program or a TileLang PrimFunc, got "
                        f"{type(program).__name__}")
    from .tilelang import from_tilelang, resolve_target

    _, arch = resolve_target(target)
    converted = from_tilelang(program, target=target, pass_configs=pass_configs,
                              out_idx=out_idx, compile_flags=compile_flags)
    return converted, _options(None, execution_backend, arch, target_host, verbose, None, None,
                               host_compiler)


def compile(program: Any, out_idx: OutIdx = None, execution_backend: Optional[str] = None,
            target: Any = None, target_host: Optional[str] = None,
            verbose: Optional[bool] = None, pass_configs: Optional[dict[str, Any]] = None,
            compile_flags: Union[Sequence[str], str, None] = None,
            host_compiler: Optional[str] = None, torch_op: Optional[str] = None,
            remote_cache: Optional[str] = None) -> Kernel:
    """Compiles ``program`` into a :class:`Kernel`.

    ``program`` is a :class:`Program`, or a TileLang PrimFunc / ``@tilelang.jit`` function:
    TileLang lowers it and :func:`tilejit.tilelang.from_tilelang` converts it (``target``
    then takes TileLang's forms too: a tvm Target or dict; ``pass_configs`` go to TileLang's
    lowering).

    Looks the kernel up in the memory and disk caches first; builds it on a miss. Options left
    as None come from TILELANG_EXECUTION_BACKEND, TILELANG_TARGET and TILELANG_VERBOSE, else
    "auto". ``execution_backend`` also takes the seed's names ("tvm_ffi", "cython", "dlpack":
    the host-wrapper backend, nvcc for CUDA; "torch": metal; docs/seed-compat.md).
    ``target_host`` is the seed's host target: "llvm" or "c" (this machine) or None;
    ``host_compiler`` names the compiler of generated host code (default: CC/CXX, else c++).
    ``out_idx`` (an index or a list; negative counts from the end) overrides the Program's.
    ``compile_flags`` are appended to the Program's own. Raises CompileError (with ``.log``)
    when the compiler rejects the source, ProgramError for a malformed Program, and
    CaptureError when torch's current CUDA stream is capturing a graph. ``torch_op="ns::op"``
    also registers the kernel as ``torch.ops.ns.op`` (:meth:`Kernel.as_torch_op`; with target
    "auto", one variant per device architecture). ``remote_cache`` ("redis://host:port/db" or
    "off"; None: TILEJIT_REMOTE_CACHE) is the shared cache tier behind the disk cache
    (docs/cluster.md).
    """
    refuse_during_capture(f"compile of '{program.name}'" if isinstance(program, Program)
                          else f"compile of a {type(program).__name__}")
    program, options = _program_and_options(program, out_idx, execution_backend, target,
                                            target_host, verbose, pass_configs, compile_flags,
                                            host_compiler)
    if remote_cache:
        options["remote_cache"] = remote_cache
    kernel = _core.compile(Kernel, program, **options)
    if torch_op is not None:
        from .torch_op import register_kernel

        # An architecture left to "auto" is resolved again for each device the op meets.
        target_text = options["target"] or os.environ.get("TILELANG_TARGET") or "auto"
        per_device = "sm_" not in target_text
        register_kernel(kernel, torch_op,
                        recompile=lambda: _core.compile(Kernel, program, **options),
                        per_device=per_device)
    return kernel


def cache_key(program: Any, out_idx: OutIdx = None, execution_backend: Optional[str] = None,
              target: Any = None, target_host: Optional[str] = None,
              verbose: Optional[bool] = None, pass_configs: Optional[dict[str, Any]] = None,
              compile_flags: Union[Sequence[str], str, None] = None,
              host_compiler: Optional[str] = None) -> str:
    """The key (SHA-256 hex) that :func:`compile` with these options files ``program`` (a
    Program or a TileLang function) under: ``compile(program, ...).cache_key``. Builds nothing,
    but for the first key of a Program with user include directories (its key covers the
    headers a build reads)."""
    program, options = _program_and_options(program, out_idx, execution_backend, target,
                                            target_host, verbose, pass_configs, compile_flags,
                                            host_compiler)
    return _core.cache_key(program, **options)


def _progress(items: Iterable[Any], total: int) -> Iterable[Any]:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return tqdm(items, total=total, desc="tilejit compile", unit="kernel")


def par_compile(programs: Iterable[Any], out_idx: OutIdx = None,
                execution_backend: Optional[str] = None, target: Optional[str] = None,
                target_host: Optional[str] = None, verbose: Optional[bool] = None,
                pass_configs: Optional[dict[str, Any]] = None,
                compile_flags: Union[Sequence[str], str, None] = None,
                num_workers: Optional[int] = None,
                ignore_error: bool = False, host_compiler: Optional[str] = None,
                cluster: Optional[str] = None, executor: Any = None,
                chunk_size: Optional[int] = None,
                remote_cache: Optional[str] = None) -> list[Optional[Kernel]]:
    """Compiles several Programs in parallel; results are in input order.

    Each compile runs in a worker thread with the GIL released; NVRTC compiles run in worker
    processes (tilejit-nvrtc-worker, beside the extension module), since NVRTC barely overlaps
    compiles within one process. ``num_workers`` None (or <= 0) means the CPUs this process may
    run on (its affinity mask), never more than there are Programs: the C++ par_compile's rule.
    A progress bar is drawn when tqdm is installed. With ``ignore_error`` a failed Program
    yields None and its error is logged as a warning; otherwise the first failure (in input
    order) is raised once every compile has finished.

    ``cluster="ray"`` (or ``executor=``, any object whose ``submit`` returns a
    concurrent.futures.Future) compiles on other machines instead, in tasks of ``chunk_size``
    Programs, and loads the kernels they send back (docs/cluster.md). ``remote_cache`` is
    compile()'s.
    """
    programs = list(programs)
    refuse_during_capture(f"par_compile of {len(programs)} programs")
    # TileLang functions are lowered here, one after another: TileLang's lowering is not
    # meant to run in several threads at once.
    prepared = [_program_and_options(p, out_idx, execution_backend, target, target_host, verbose,
                                     pass_configs, compile_flags, host_compiler)
                for p in programs]
    programs = [program for program, _ in prepared]
    if not programs:
        return []
    if remote_cache:
        for _, options in prepared:
            options["remote_cache"] = remote_cache
    if cluster is not None or executor is not None:
        from ._cluster import par_compile_on_cluster
        return par_compile_on_cluster(prepared, cluster, executor, num_workers, ignore_error,
                                      chunk_size)
    workers = _core.par_compile_workers(len(programs), num_workers or 0)
    kernels: list[Optional[Kernel]] = [None] * len(programs)
    errors: list[Optional[Error]] = [None] * len(programs)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tilejit-compile") as pool:
        futures = {pool.submit(_core.compile, Kernel, program, _worker_process=True, **options): i
                   for i, (program, options) in enumerate(prepared)}
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
