"""@tilejit.jit: the seed's tilelang.jit decorator on functions that return a Program, a TileLang
PrimFunc, or on a ``@tilelang.jit`` function (whose PrimFuncs TileLang lowers and tilejit runs).

Lazy mode (the function takes configuration values)::

    @tilejit.jit(out_idx=[-1])
    def matmul(block_m, block_n):
        return tilejit.Program(...)

    kernel = matmul(128, 64)      # compiled once per argument key, then memoized
    c = kernel(a, b)

Eager mode (the function takes tensors and reads their shapes and dtypes)::

    @tilejit.jit
    def add(A: torch.Tensor, B: torch.Tensor, C: torch.Tensor):
        return tilejit.Program(...)

    add(a, b, c)                  # builds, compiles (memoized on dtypes/shapes) and runs

The mode is the decorated function's (``JITImpl.mode``), fixed when it is decorated: ``mode=``
when given; else "eager" when a parameter is annotated with a tensor type (a class with
``__dlpack__``, or a name ending in Tensor/ndarray/Array), "lazy" when parameters are annotated
with other types; a function with no annotations is "auto": each call on its own is eager when
one of its arguments is a tensor, lazy otherwise. No call changes it.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
import typing
from typing import Any, Callable, Iterable, Literal, Optional, Sequence, Union

from ._compile import OutIdx, cache_key, compile, is_tilelang_function, par_compile
from ._core import ArgumentError, JitBase, Program, ProgramError
from .kernel import Kernel

Mode = Literal["auto", "lazy", "eager"]


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "__dlpack__")


_TENSOR_TYPE_NAMES = ("Tensor", "ndarray", "Array")


def _is_tensor_annotation(annotation: Any) -> bool:
    if isinstance(annotation, str):  # postponed (from __future__ import annotations)
        return annotation.rsplit(".", 1)[-1].strip("'\" ]") in _TENSOR_TYPE_NAMES
    if any(_is_tensor_annotation(a) for a in typing.get_args(annotation)):
        return True  # Optional[torch.Tensor], torch.Tensor | None
    return isinstance(annotation, type) and hasattr(annotation, "__dlpack__")


def _infer_mode(signature: inspect.Signature) -> Mode:
    """The mode a signature implies: see the module docstring."""
    annotations = [p.annotation for p in signature.parameters.values()
                   if p.annotation is not inspect.Parameter.empty]
    if not annotations:
        return "auto"
    return "eager" if any(_is_tensor_annotation(a) for a in annotations) else "lazy"


def _eager_key_of(value: Any) -> Any:
    """What a compiled kernel depends on: a tensor's dtype, shape and device; other values."""
    if _is_tensor(value):
        return ("tensor", str(value.dtype), tuple(value.shape), tuple(value.__dlpack_device__()))
    return value


class JITImpl(JitBase):
    """A function that returns a :class:`tilejit.Program`, compiled on demand and memoized.

    Attributes mirror the seed: ``out_idx``, ``execution_backend``, ``target``,
    ``target_host``, ``verbose``, ``pass_configs``, ``debug_root_path``, ``compile_flags``,
    ``func``, ``func_source``, ``signature``; ``host_compiler`` is tilejit's; ``mode`` is
    "lazy", "eager" or "auto" (per call), fixed at decoration (see the module docstring);
    ``torch_op`` is the registered torch operator when ``torch_op=`` named one.
    """

    def __init__(self, func: Callable[..., Program], *, out_idx: OutIdx = None,
                 execution_backend: Optional[str] = None, target: Optional[str] = None,
                 target_host: Optional[str] = None, verbose: Optional[bool] = None,
                 pass_configs: Optional[dict[str, Any]] = None,
                 debug_root_path: Optional[str] = None,
                 compile_flags: Union[Sequence[str], str, None] = None,
                 mode: Optional[Mode] = None, host_compiler: Optional[str] = None,
                 torch_op: Optional[str] = None) -> None:
        if mode is not None and mode not in ("auto", "lazy", "eager"):
            raise ArgumentError(f"@tilejit.jit: mode must be 'auto', 'lazy' or 'eager', got {mode!r}")
        functools.update_wrapper(self, func)
        if is_tilelang_function(func) and hasattr(func, "get_tir"):
            # A @tilelang.jit function: its get_tir(*args) makes the PrimFunc for a config,
            # and its out_idx stands unless this decorator gives one.
            if out_idx is None:
                out_idx = getattr(func, "out_idx", None)
            func = func.get_tir
        self.func = func
        self.out_idx = out_idx
        self.execution_backend = execution_backend
        self.target = target
        self.target_host = target_host
        self.verbose = verbose
        self.pass_configs = pass_configs
        self.debug_root_path = debug_root_path
        self.compile_flags = compile_flags
        self.host_compiler = host_compiler
        self.signature = inspect.signature(func)
        self.mode: Mode = mode if mode is not None else _infer_mode(self.signature)
        try:
            self.func_source = inspect.getsource(func)
        except (OSError, TypeError):
            self.func_source = ""
        # The lazy memo, keyed by the call's arguments, is JitBase's `_kernels` dict: read
        # without the lock (dict reads are atomic), written under it so that concurrent first
        # calls compile once.
        self._eager: dict[Any, Kernel] = {}
        self._lock = threading.Lock()
        # The registered torch op (torch.ops.ns.op), when torch_op= names one.
        self.torch_op = self.as_torch_op(torch_op) if torch_op is not None else None

    # A call: JitBase answers a memo hit on positional arguments in C (one tuple, one dict
    # lookup) and hands every other call to this method.
    def _call_slow(self, *args: Any, **kwargs: Any) -> Any:
        key = (args, frozenset(kwargs.items())) if kwargs else args
        try:
            kernel = self._kernels.get(key)
        except TypeError:
            kernel = None  # unhashable arguments: tensors in eager mode, or a lazy-mode error
        if kernel is not None:
            return kernel
        if self._resolve_mode(args, kwargs) == "eager":
            return self._run_eager(args, kwargs)
        return self._lazy_kernel(args, kwargs)

    def parse_cache_key(self, *args: Any, **kwargs: Any) -> str:
        """The cache key (SHA-256 hex) of the kernel a call with these arguments gets: equal to
        its ``Kernel.cache_key``, as the C++ ``Jit::parse_cache_key``. Compiles nothing (but
        for the first key of a Program with user include directories, see tilejit.cache_key)."""
        if self._resolve_mode(args, kwargs) == "lazy":
            kernel = self._kernels.get(self._memo_key(args, kwargs))
            if kernel is not None:
                return kernel.cache_key
        return cache_key(self.get_tir(*args, **kwargs), **self._compile_options())

    def _memo_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The lazy-mode memo key of a call: its arguments."""
        key = (args, frozenset(kwargs.items())) if kwargs else args
        try:
            hash(key)
        except TypeError as error:
            raise ArgumentError(f"@tilejit.jit '{self.__name__}': lazy-mode arguments key the "
                                f"kernel memo and must be hashable ({error})") from None
        return key

    def get_tir(self, *args: Any, **kwargs: Any) -> Any:
        """Calls the decorated function; checks that it returned a Program or a TileLang
        PrimFunc (which compiling lowers and converts)."""
        program = self.func(*args, **kwargs)
        if not isinstance(program, Program) and not is_tilelang_function(program):
            raise ProgramError(f"@tilejit.jit '{self.__name__}' must return a tilejit.Program or "
                               f"a TileLang PrimFunc, got {type(program).__name__}")
        return program

    def compile(self, *args: Any, **kwargs: Any) -> Kernel:
        """Builds the Program for these arguments and compiles it (no memo)."""
        return self._compile_program(self.get_tir(*args, **kwargs))

    def get_kernel_source(self, *args: Any, **kwargs: Any) -> str:
        kernel = self._lazy_kernel(args, kwargs) if self._resolve_mode(args, kwargs) == "lazy" \
            else self._eager_kernel(args, kwargs)[0]
        return kernel.get_kernel_source()

    def par_compile(self, configs: Iterable[Union[dict[str, Any], tuple[Any, ...]]],
                    num_workers: Optional[int] = None,
                    ignore_error: bool = False) -> list[Optional[Kernel]]:
        """Compiles one kernel per config (a dict of keyword arguments or a tuple of positional
        ones) in parallel and memoizes them; failed configs give None with ``ignore_error``."""
        calls = [((), dict(c)) if isinstance(c, dict) else (tuple(c), {}) for c in configs]
        programs: list[Any] = []
        for args, kwargs in calls:
            try:
                programs.append(self.get_tir(*args, **kwargs))
            except Exception:
                if not ignore_error:
                    raise
                programs.append(None)
        built = [p for p in programs if p is not None]
        kernels = iter(par_compile(built, **self._compile_options(), num_workers=num_workers,
                                   ignore_error=ignore_error))
        results: list[Optional[Kernel]] = []
        for (args, kwargs), program in zip(calls, programs):
            kernel = next(kernels) if program is not None else None
            if kernel is not None:
                self._write_debug_sources(kernel)
                with self._lock:
                    self._kernels.setdefault(self._memo_key(args, kwargs), kernel)
            results.append(kernel)
        return results

    def as_torch_op(self, name: str, *, mutates_args: Optional[Iterable[str]] = None,
                    backward: Any = None,
                    setup_context: Optional[Callable[..., Any]] = None) -> Any:
        """Registers the function, in eager mode, as the PyTorch operator ``name``: each call
        specializes (compiles per dtype, shape and device, memoized) and runs. The function's
        parameters and return need type annotations (torch.Tensor, int, float, bool); see
        :meth:`tilejit.Kernel.as_torch_op` and docs/torch.md."""
        from .torch_op import register_jit

        return register_jit(self, name, mutates_args=mutates_args, backward=backward,
                            setup_context=setup_context)

    def warmup(self, configs: Iterable[Union[dict[str, Any], tuple[Any, ...]]]) -> list[Kernel]:
        """Compiles and memoizes the kernel of each config before a CUDA graph capture needs it.

        A config is a tuple of positional arguments or a dict of keyword ones: configuration
        values in lazy mode, example tensors (the shapes, dtypes and devices the graph will use)
        in eager mode. Returns the kernels; nothing is launched.
        """
        kernels = []
        for config in configs:
            args, kwargs = ((), dict(config)) if isinstance(config, dict) else (tuple(config), {})
            if self._resolve_mode(args, kwargs) == "eager":
                kernels.append(self._eager_kernel(args, kwargs)[0])
            else:
                kernels.append(self._lazy_kernel(args, kwargs))
        return kernels

    def _compile_options(self) -> dict[str, Any]:
        return dict(out_idx=self.out_idx, execution_backend=self.execution_backend,
                    target=self.target, target_host=self.target_host, verbose=self.verbose,
                    pass_configs=self.pass_configs, compile_flags=self.compile_flags,
                    host_compiler=self.host_compiler)

    def _compile_program(self, program: Any) -> Kernel:
        kernel = compile(program, **self._compile_options())
        self._write_debug_sources(kernel)
        return kernel

    def _write_debug_sources(self, kernel: Kernel) -> None:
        """debug_root_path: each compiled kernel's device and host sources, by name and key."""
        if not self.debug_root_path:
            return
        os.makedirs(self.debug_root_path, exist_ok=True)
        path = os.path.join(self.debug_root_path,
                            f"{kernel.program.name}.{kernel.cache_key[:16]}")
        with open(path + ".device.txt", "w") as f:
            f.write(kernel.get_device_source())
        with open(path + ".host.txt", "w") as f:
            f.write(kernel.get_host_source())

    def _resolve_mode(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """This call's mode: the function's, or for "auto" whether the call passes a tensor."""
        if self.mode != "auto":
            return self.mode
        tensors = any(_is_tensor(v) for v in args) or any(_is_tensor(v) for v in kwargs.values())
        return "eager" if tensors else "lazy"

    def _lazy_kernel(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Kernel:
        key = self._memo_key(args, kwargs)
        with self._lock:
            kernel = self._kernels.get(key)
            if kernel is None:
                kernel = self.compile(*args, **kwargs)
                self._kernels[key] = kernel
        return kernel

    def _eager_kernel(self, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> tuple[Kernel, inspect.BoundArguments]:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        key = tuple((name, _eager_key_of(v)) for name, v in bound.arguments.items())
        with self._lock:
            kernel = self._eager.get(key)
            if kernel is None:
                kernel = self.compile(*args, **kwargs)
                self._eager[key] = kernel
        return kernel, bound

    def _run_eager(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        kernel, bound = self._eager_kernel(args, kwargs)
        # The kernel's inputs are taken from the function's arguments by name.
        outputs = set(kernel.out_idx)
        call_args = []
        for i, param in enumerate(kernel.params):
            if i in outputs:
                continue
            if param.name not in bound.arguments:
                raise ArgumentError(
                    f"@tilejit.jit '{self.__name__}' (eager): the Program's parameter "
                    f"'{param.name}' is not an argument of the function; eager mode passes "
                    f"arguments to the kernel by name ({', '.join(bound.arguments)})")
            call_args.append(bound.arguments[param.name])
        return kernel(*call_args)

    def __repr__(self) -> str:
        return f"<tilejit.JITImpl '{self.__name__}' mode={self.mode}>"


def jit(func: Optional[Callable[..., Program]] = None, *, out_idx: OutIdx = None,
        target: Optional[str] = None, target_host: Optional[str] = None,
        execution_backend: Optional[str] = None, verbose: Optional[bool] = None,
        pass_configs: Optional[dict[str, Any]] = None, debug_root_path: Optional[str] = None,
        compile_flags: Union[Sequence[str], str, None] = None,
        mode: Optional[Mode] = None, host_compiler: Optional[str] = None,
        torch_op: Optional[str] = None) -> Any:
    """Decorator: ``@tilejit.jit`` or ``@tilejit.jit(out_idx=[-1], target="cuda", ...)``.

    The options are those of :func:`tilejit.compile`; ``debug_root_path`` also writes each
    compiled kernel's sources there (``compile`` and ``par_compile`` alike). ``mode`` ("lazy",
    "eager", "auto") overrides the mode inferred from the signature (module docstring).
    ``torch_op="ns::op"`` registers the function as a PyTorch operator
    (:meth:`JITImpl.as_torch_op`).
    """
    def decorate(f: Callable[..., Program]) -> JITImpl:
        return JITImpl(f, out_idx=out_idx, execution_backend=execution_backend, target=target,
                       target_host=target_host, verbose=verbose, pass_configs=pass_configs,
                       debug_root_path=debug_root_path, compile_flags=compile_flags, mode=mode,
                       host_compiler=host_compiler, torch_op=torch_op)

    return decorate(func) if func is not None else decorate
