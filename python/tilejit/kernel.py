"""tilejit.Kernel: a compiled, loaded kernel you call like a function."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Mapping, Optional

from . import _core


class Kernel(_core.KernelBase):
    """A compiled kernel. Made by :func:`tilejit.compile`, or from a saved artifact directory by
    :meth:`Kernel.load` (the seed adapter's ``from_database``); never directly.

    ``kernel(*args, stream=None)`` checks every argument against the Program's params, launches
    and returns the ``out_idx`` outputs: ``None`` when there are none, the tensor when there is
    one, a list otherwise. Pass the params that are not outputs, in order: tensors (anything
    with ``__dlpack__``) and Python numbers for scalars. The kernel runs on the current stream
    of the tensors' framework (torch's ``torch.cuda.current_stream()``, read at every call) or
    on ``stream`` (an int handle, a ``torch.cuda.Stream``, anything with ``__cuda_stream__``).
    Outputs come back as the inputs' framework's tensors: torch in, torch out; numpy in, numpy
    out.
    """

    # No per-instance dict: the object stays the C struct that the call path reads.
    __slots__ = ()

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Kernel":
        """The kernel in a directory written by :meth:`save`, or a disk-cache entry
        (``$TILELANG_CACHE_DIR/v1/<key[:2]>/<key>``, every file verified against its recorded
        SHA-256; the kernel's ``cache_key`` is then its key, else ""). Nothing is compiled. A missing, incomplete or
        corrupted directory raises :class:`tilejit.Error` naming it."""
        return _core.load_kernel(cls, os.fspath(path))

    def save(self, path: str | os.PathLike) -> None:
        """Writes the compiled artifact (binary, sources, Program) to ``path`` for :meth:`load`."""
        self._compiled.save(os.fspath(path))

    @property
    def params(self) -> list[_core.KernelParam]:
        """Every parameter of the Program, outputs included (the seed's ``params``)."""
        return self._compiled.params

    @property
    def out_idx(self) -> list[int]:
        """Indices of the params that calls allocate and return (non-negative, ascending)."""
        return self._compiled.out_idx

    @property
    def program(self) -> _core.Program:
        return self._compiled.program

    @property
    def cache_key(self) -> str:
        return self._compiled.cache_key

    @property
    def backend(self) -> str:
        """The execution backend that built it: 'nvrtc', 'nvcc', 'cpu', ..."""
        return self._compiled.backend

    @property
    def target(self) -> str:
        return self._compiled.target

    def get_kernel_source(self, kernel_only: bool = False) -> str:
        """The device source, followed by the generated host source unless ``kernel_only``."""
        return self._compiled.get_kernel_source(kernel_only)

    def get_host_source(self) -> str:
        return self._compiled.get_host_source()

    def get_device_source(self) -> str:
        return self._compiled.get_device_source()

    def get_global(self, name: str, device: int = 0) -> _core.GlobalSymbol:
        """A module global, as CuPy's ``RawModule.get_global``: a ``__constant__`` or
        ``__device__`` variable of a CUDA module (nvrtc backend; ``ptr`` is a device address
        on CUDA device ``device``), or a global variable of a cpu kernel's C library. Write it
        (``cuMemcpyHtoD``, ``ctypes.memmove`` for cpu) before the calls that read it. Raises
        ``tilejit.ArgumentError`` naming it when the module has none."""
        return self._compiled.get_global(name, device)

    def export(self, path: str | os.PathLike) -> None:
        """Writes a self-contained library (shared library, C header, sources) to ``path``."""
        self._compiled.export(os.fspath(path))

    def benchmark(self, *args: Any, warmup: int = 25, rep: int = 100, flush_l2: bool = True,
                  backend: str = "event") -> float:
        """Median time of one call in milliseconds; see :func:`tilejit.profiler.benchmark`."""
        from .profiler import benchmark

        return benchmark(self, args, warmup=warmup, rep=rep, flush_l2=flush_l2, backend=backend)

    def as_torch_op(self, name: str, *, mutates_args: Optional[Iterable[str]] = None,
                    backward: Any = None,
                    setup_context: Optional[Callable[..., Any]] = None) -> Any:
        """Registers this kernel as the PyTorch operator ``name`` ("namespace::op"), callable as
        ``torch.ops.namespace.op``; returns that op (a ``torch._ops.OpOverloadPacket``).

        The schema takes the params that are not outputs, in order (tensors; scalars as int,
        float or bool) and returns the ``out_idx`` outputs. A kernel that returns nothing names
        the tensors it writes in ``mutates_args``. The fake implementation computes output
        shapes from the Program's shape expressions, so ``torch.compile(dynamic=True)`` traces
        the op once for every size. ``backward`` (a function ``(ctx, *grads)``, or a Kernel
        called with the inputs then the output gradients and returning one gradient per tensor
        input) registers an autograd formula; without it a backward through the op raises
        "no autograd formula was registered". A kernel with ``mutates_args`` takes no
        ``backward``. See docs/torch.md.
        """
        from .torch_op import register_kernel

        return register_kernel(self, name, mutates_args=mutates_args, backward=backward,
                               setup_context=setup_context)

    def warmup(self, shapes: Iterable[Mapping[str, Any]], device: Any = None) -> None:
        """Calls the kernel once per entry of ``shapes`` on zero-filled torch tensors, outside any
        CUDA graph, so that a later capture finds nothing to compile or load.

        Each entry binds the Program's shape symbols and scalar params by name (``{"n": 4096}``;
        a scalar left out is 0). ``device`` (default: torch's current CUDA device, or the CPU for
        the cpu backend) also selects, for a kernel registered with :meth:`as_torch_op`, the
        variant built for that device's architecture, compiling it now if needed.
        """
        import torch

        from .torch_op import evaluate, variants_of
        from ._core import expr_tree

        if device is None:
            device = "cpu" if self.backend == "cpu" else torch.device("cuda",
                                                                      torch.cuda.current_device())
        device = torch.device(device)
        variants = variants_of(self)
        kernel = variants.for_device(device) if variants is not None else self
        outputs = set(self.out_idx)
        for entry in shapes:
            args = []
            for i, param in enumerate(self.params):
                if i in outputs:
                    continue
                if param.is_scalar():
                    args.append(entry.get(param.name, 0))
                    continue
                try:
                    shape = [evaluate(expr_tree(e), entry) for e in param.shape]
                except KeyError as error:
                    raise _core.ArgumentError(
                        f"{self.program.name}.warmup: shape symbol {error} of '{param.name}' is "
                        f"not given (entry {dict(entry)})") from None
                args.append(torch.zeros(shape, dtype=param.torch_dtype(), device=device))
            kernel(*args)

    def __repr__(self) -> str:
        return (f"<tilejit.Kernel '{self.program.name}' backend={self.backend} "
                f"target='{self.target}'>")
