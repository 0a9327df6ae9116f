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
    Tensor,
    TmaDescriptor,
)
from ._compile import compile, par_compile
from .jit import JITImpl, jit
from .kernel import Kernel

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "CompileError",
    "CudaError",
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
    "Tensor",
    "TmaDescriptor",
    "compile",
    "jit",
    "par_compile",
]
