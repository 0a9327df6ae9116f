"""tilejit.Kernel: a compiled, loaded kernel you call like a function."""

from __future__ import annotations

import os
from typing import Any

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
        (``$TILELANG_CACHE_DIR/v1/<key[:2]>/<key>``, verified against its manifest; the kernel's
        ``cache_key`` is then its key, else ""). Nothing is compiled. A missing, incomplete or
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
