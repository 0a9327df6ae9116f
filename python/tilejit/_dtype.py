"""tilejit.DataType: a KernelParam's element type, as the seed's ``KernelParam.dtype``.

It is the type's name (a ``str``: ``"float16"``, ``"int32"``, ``"float8_e4m3"``), so code that
compares it with a string or prints it keeps working, and it also compares equal to the torch
dtype and the numpy dtype of the same type::

    param.dtype == "float16" == torch.float16 == numpy.float16
    torch.empty(shape, dtype=param.dtype.torch_dtype())
    param.dtype.tilelang_dtype()           # T.dtype("float16"), where TileLang is installed
"""

from __future__ import annotations

import sys
from typing import Any

from . import _core

# tilejit names that TVM / TileLang spell differently (the "fn" types have no infinities).
_TVM_NAMES = {"float8_e4m3": "float8_e4m3fn", "float4_e2m1": "float4_e2m1fn"}


class DataType(str):
    """A dtype name that also equals the matching ``torch.dtype`` and ``numpy.dtype``."""

    __slots__ = ()

    def torch_dtype(self) -> Any:
        """The torch dtype (imports torch); ArgumentError for a handle or a vector type."""
        return _core._torch_dtype(str(self))

    def numpy_dtype(self) -> Any:
        """The numpy dtype; NotAvailableError for types numpy lacks (handle; bfloat16 and float8
        unless ml_dtypes has registered them)."""
        import numpy

        try:
            return numpy.dtype(str(self))
        except TypeError:
            raise _core.NotAvailableError(f"numpy has no dtype for {str(self)!r}") from None

    def tilelang_dtype(self) -> Any:
        """The TileLang dtype (``tilelang.language.dtype``), as the seed's KernelParam has."""
        try:
            import tilelang.language as T
        except ImportError as error:
            raise _core.NotAvailableError(
                f"tilelang_dtype() needs TileLang, which does not import here ({error})") from None
        return T.dtype(_TVM_NAMES.get(str(self), str(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return str.__eq__(self, other)
        # A torch or numpy dtype can only come from an imported module: never import one here.
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(other, torch.dtype):
            try:
                return self.torch_dtype() == other
            except _core.Error:
                return False
        numpy = sys.modules.get("numpy")
        if numpy is not None and (isinstance(other, numpy.dtype) or
                                  (isinstance(other, type) and issubclass(other, numpy.generic))):
            try:
                return self.numpy_dtype() == numpy.dtype(other)
            except _core.Error:
                return False
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    # Equal to its name, so it hashes as its name: dict and set lookups by string still work.
    __hash__ = str.__hash__

    def __repr__(self) -> str:
        return f"tilejit.DataType({str(self)!r})"
