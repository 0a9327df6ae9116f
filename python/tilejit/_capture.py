"""The CUDA-graph capture guard: no compiling, loading or JIT specialization during capture.

Building or loading a kernel calls the driver (module loads, memory allocations) in ways that a
stream capture forbids; in the default capture mode such a call invalidates the user's
capture, and the failure surfaces later, far from its cause. tilejit therefore refuses, before
touching the driver, to compile while torch's current stream is capturing. Launching an
already compiled kernel is an ordinary stream operation and is captured like any other.
"""

from __future__ import annotations

import sys

from ._core import Error


class CaptureError(Error):
    """tilejit was asked to compile, load from disk or JIT-specialize a kernel while the current
    CUDA stream is capturing a CUDA graph. Warm up first: call the kernel (or ``warmup()``) once
    before the capture."""


def refuse_during_capture(what: str) -> None:
    """Raises CaptureError when torch's current CUDA stream is capturing; ``what`` names the step.

    Reads torch only when something has imported it and initialized CUDA: a process without
    torch, or without a CUDA context, cannot be capturing (through torch).
    """
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return
    if torch.cuda.is_current_stream_capturing():
        raise CaptureError(
            f"tilejit: {what} while the current CUDA stream is capturing a CUDA graph; compiling, "
            f"loading from disk and JIT specialization cannot run inside a capture. Warm up "
            f"first: call the kernel once (or kernel.warmup(shapes=[...]) / jit.warmup(...)) "
            f"with every shape and device the graph will use, before the capture begins. The "
            f"capture itself is untouched and can be ended normally.")
