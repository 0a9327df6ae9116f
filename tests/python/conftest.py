"""Shared fixtures: a private kernel cache, example Programs, the GPU skip."""

import os
import pathlib
import tempfile

import pytest

# Set before tilejit compiles anything, so the tests never touch the user's cache.
os.environ.setdefault("TILELANG_CACHE_DIR", tempfile.mkdtemp(prefix="tilejit-pytest-cache-"))

import tilejit  # noqa: E402

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"

VECTOR_ADD_C = """
void vector_add(const float* A, const float* B, float* C, int n) {
  for (int i = 0; i < n; ++i) C[i] = A[i] + B[i];
}
"""


def vector_add_program(name="vector_add", out_idx=None, source=VECTOR_ADD_C):
    return tilejit.Program(
        name, source,
        params=[tilejit.Tensor("A", "float32", ["n"]),
                tilejit.Tensor("B", "float32", ["n"]),
                tilejit.Tensor("C", "float32", ["n"])],
        launches=[tilejit.Launch(name if name == "vector_add" else "vector_add")],
        language="c", out_idx=out_idx)


@pytest.fixture(scope="session")
def rng():
    import numpy as np

    return np.random.default_rng(20261122)


def cuda_torch():
    """torch with a CUDA device, or a pytest skip naming what is missing."""
    try:
        import torch
    except ImportError:
        pytest.skip("torch is not installed")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    return torch
