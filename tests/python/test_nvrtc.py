"""NVRTC from Python: a CUDA Program that does not compile raises CompileError with NVRTC's
log, and one that does compiles without a GPU (loading it needs the driver)."""

import pytest

import tilejit

GOOD = """
extern "C" __global__ void vector_add(const float* A, const float* B, float* C, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) C[i] = A[i] + B[i];
}
"""

BAD = """
extern "C" __global__ void vector_add(const float* A, const float* B, float* C, int n) {
  C[0] = undeclared_name;
}
"""


def cuda_program(source):
    return tilejit.Program(
        "vector_add", source,
        params=[tilejit.Tensor("A", "float32", ["n"]), tilejit.Tensor("B", "float32", ["n"]),
                tilejit.Tensor("C", "float32", ["n"])],
        launches=[tilejit.Launch("vector_add", grid=["ceildiv(n, 256)"], block=[256])])


def compile_or_skip(source):
    try:
        return tilejit.compile(cuda_program(source), out_idx=[-1], execution_backend="nvrtc",
                               target="cuda -arch=sm_90")
    except tilejit.NotAvailableError as error:
        if "nvrtc" in str(error).lower() and "driver" not in str(error).lower():
            pytest.skip(f"NVRTC is not available: {error}")
        raise


def test_nvrtc_compile_error_carries_the_log():
    with pytest.raises(tilejit.CompileError) as info:
        compile_or_skip(BAD)
    error = info.value
    assert "undeclared_name" in error.log
    assert "undeclared_name" in str(error)
    assert any("sm_90" in option for option in error.options)
    assert error.source_name


def test_nvrtc_compile_of_a_good_kernel():
    try:
        kernel = compile_or_skip(GOOD)
    except tilejit.NotAvailableError as error:
        # Built by NVRTC; loading the cubin needs a CUDA driver this machine lacks.
        assert "driver" in str(error).lower() or "cuda" in str(error).lower()
        return
    assert kernel.backend == "nvrtc"
    assert "vector_add" in kernel.get_device_source()
