"""tilejit: compile CUDA and C kernels at run time, cache them, and call them with low overhead.

The Python face of tilejit's C++ core, mirroring TileLang's JIT API::

    import tilejit

    program = tilejit.Program(
        "vector_add", source,
        params=[tilejit.Tensor("A", "float32", ["n"]),
                tilejit.Tensor("B", "float32", ["n"]),
                tilejit.Tensor("C", "float32", ["n"])],
        launches=[tilejit.Launch("vector_add_kernel", grid=["ceildiv(n, 256)"], block=[256])])
    kernel = tilejit.compile(program, out_idx=[-1])
    c = kernel(a, b)          # torch in, torch out, on torch's current stream

Any object with ``__dlpack__`` is a tensor: torch (through the DLPack C exchange API), numpy,
cupy, jax.

TileLang kernels go in as they are: ``tilejit.compile(prim_func, out_idx=[-1], target="sm_90a")``
lowers them with TileLang and converts the result (``tilejit.Program.from_tilelang``, module
``tilejit.tilelang``); importing tilejit never imports TileLang.
"""

from ._core import (
    ArgumentError,
    CompileError,
    CudaError,
    Error,
    GlobalSymbol,
    KernelParam,
    L2Window,
    Launch,
    NotAvailableError,
    Program,
    ProgramError,
    Scalar,
    Struct,
    Tensor,
    TmaDescriptor,
)
from ._capture import CaptureError
from ._compile import cache_key, compile, par_compile
from ._dtype import DataType
from .jit import JITImpl, jit
from .kernel import Kernel


def from_database(path):
    """The seed adapter's ``from_database``: :meth:`Kernel.load` of a saved artifact directory."""
    return Kernel.load(path)


__version__ = "0.1.0"


def _program_from_tilelang(func, target=None, pass_configs=None, out_idx=None, compile_flags=None,
                           name=None):
    """Lowers a TileLang PrimFunc (or @tilelang.jit function) with TileLang and converts it into
    a Program; see :func:`tilejit.tilelang.from_tilelang`. Imports TileLang."""
    try:
        from .tilelang import from_tilelang
    except ImportError as error:
        raise NotAvailableError(f"Program.from_tilelang needs TileLang ({error}); "
                                f"pip install tilejit[tilelang]") from error
    return from_tilelang(func, target=target, pass_configs=pass_configs, out_idx=out_idx,
                         compile_flags=compile_flags, name=name)


Program.from_tilelang = staticmethod(_program_from_tilelang)

__all__ = [
    "ArgumentError",
    "CaptureError",
    "CompileError",
    "CudaError",
    "DataType",
    "Error",
    "GlobalSymbol",
    "JITImpl",
    "Kernel",
    "KernelParam",
    "L2Window",
    "Launch",
    "NotAvailableError",
    "Program",
    "ProgramError",
    "Scalar",
    "Struct",
    "Tensor",
    "TmaDescriptor",
    "cache_key",
    "compile",
    "from_database",
    "jit",
    "par_compile",
]
