"""tilejit.Kernel: a compiled, loaded kernel you call like a function."""

from __future__ import annotations

import os
from typing import Any

from . import _core


class Kernel(_core.KernelBase):
    """A compiled kernel. Made by :func:`tilejit.compile`, never directly.

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

    def __repr__(self) -> str:
        return (f"<tilejit.Kernel '{self.program.name}' backend={self.backend} "
                f"target='{self.target}'>")
