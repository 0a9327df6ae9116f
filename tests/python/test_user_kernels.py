"""Kernels as CuPy users bring them: template instantiations and C++-linkage kernels named by
their C++ names, a macro-declared kernel with an explicit signature, complex tensors and
module globals (Kernel.get_global). The CPU parts run in CI (NVRTC compiles without a GPU);
launches on a GPU are marked gpu."""

import ctypes
import json

import numpy as np
import pytest

import tilejit
from conftest import cuda_torch

CUDA_SOURCE = """
template <typename T>
__global__ void my_sqrt(T* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = sqrt(x[i]);
}
__global__ void cxx_scale(float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= 2.0f;
}
#define UNARY(name, expr) extern "C" __global__ void name(float* x, int n) { \\
    int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) x[i] = (expr); }
UNARY(square, x[i] * x[i])
"""


def cuda_program(kernel, dtype="float32", signature=None):
    return tilejit.Program(
        "user_kernel", CUDA_SOURCE, params=[tilejit.Tensor("x", dtype, ["n"])],
        launches=[tilejit.Launch(kernel, grid=["ceildiv(n, 128)"], block=[128],
                                 signature=signature)])


def test_signature_round_trips_through_json():
    program = cuda_program("square", signature="float* x, int n")
    assert program.launches[0].signature == "float* x, int n"
    document = json.loads(program.to_json())
    assert document["launches"][0]["signature"] == "float* x, int n"
    assert tilejit.Program.from_json(program.to_json()) == program
    assert "signature" not in json.loads(cuda_program("cxx_scale").to_json())["launches"][0]


@pytest.mark.parametrize("kernel", ["my_sqrt<float>", "cxx_scale"])
def test_cxx_named_kernels_compile_with_their_lowered_names(kernel):
    compiled = tilejit.compile(cuda_program(kernel), execution_backend="nvrtc",
                               target="cuda -arch=sm_90")
    lowered = compiled._compiled.metadata["lowered_name:" + kernel]
    assert lowered.startswith("_Z") and lowered.encode() in compiled._compiled.binary


def test_template_named_without_arguments_is_refused_with_the_fix():
    with pytest.raises(tilejit.ProgramError, match=r'"my_sqrt<float>"'):
        tilejit.compile(cuda_program("my_sqrt"), execution_backend="nvrtc",
                        target="cuda -arch=sm_90")


def test_relocatable_device_code_is_refused():
    with pytest.raises(tilejit.ArgumentError, match="dynamic parallelism"):
        tilejit.compile(cuda_program("cxx_scale"), execution_backend="nvrtc",
                        target="cuda -arch=sm_90", compile_flags=["-rdc=true"])


GLOBALS_C = """
#include <stdint.h>
double coefficients[3];
void affine(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = coefficients[0] + coefficients[1] * x[i] + coefficients[2] * x[i] * x[i];
}
"""


def test_get_global_on_cpu_is_written_before_a_call(rng):
    program = tilejit.Program(
        "affine", GLOBALS_C,
        params=[tilejit.Tensor("x", "float64", ["n"]), tilejit.Tensor("y", "float64", ["n"])],
        launches=[tilejit.Launch("affine")], language="c")
    kernel = tilejit.compile(program, out_idx=[-1])
    symbol = kernel.get_global("coefficients")
    assert symbol.nbytes == 3 * 8
    for n in (1, 50):
        c = rng.standard_normal(3)
        ctypes.memmove(symbol.ptr, c.ctypes.data, symbol.nbytes)
        x = rng.standard_normal(n)
        np.testing.assert_allclose(kernel(x), c[0] + c[1] * x + c[2] * x * x, rtol=1e-14)
    with pytest.raises(tilejit.ArgumentError, match="'missing'"):
        kernel.get_global("missing")


COMPLEX_C = """
#include <complex.h>
#include <stdint.h>
void conj_scale(const float complex* z, float complex* w, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) w[i] = conjf(z[i]) * s;
}
"""


def complex_program():
    return tilejit.Program(
        "conj_scale", COMPLEX_C,
        params=[tilejit.Tensor("z", "complex64", ["n"]), tilejit.Tensor("w", "complex64", ["n"]),
                tilejit.Scalar("s", "float32")],
        launches=[tilejit.Launch("conj_scale")], language="c")


@pytest.mark.parametrize("n", [1, 13, 1000])
def test_complex64_numpy_and_torch_tensors_on_cpu(rng, n):
    kernel = tilejit.compile(complex_program(), out_idx=[1])
    z = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    w = kernel(z, 0.5)
    assert w.dtype == np.complex64
    np.testing.assert_array_equal(w, np.conj(z) * np.float32(0.5))
    torch = pytest.importorskip("torch")
    tz = torch.from_numpy(z)
    tw = kernel(tz, 0.5)
    assert tw.dtype == torch.complex64
    assert torch.equal(tw, torch.conj(tz).resolve_conj() * 0.5)
    with pytest.raises(tilejit.ArgumentError, match="complex64"):
        kernel(z.real.copy(), 0.5)


@pytest.mark.gpu
@pytest.mark.parametrize("kernel,dtype,signature,reference", [
    ("my_sqrt<float>", "float32", None, lambda t: t.sqrt()),
    ("my_sqrt<double>", "float64", None, lambda t: t.sqrt()),
    ("cxx_scale", "float32", None, lambda t: t * 2),
    ("square", "float32", "float* x, int n", lambda t: t * t),
])
def test_cxx_named_and_macro_kernels_run_on_the_gpu(kernel, dtype, signature, reference):
    torch = cuda_torch()
    compiled = tilejit.compile(cuda_program(kernel, dtype, signature))
    x = torch.rand(1000, dtype=getattr(torch, dtype), device="cuda") + 0.01
    want = reference(x.clone())
    compiled(x)
    torch.testing.assert_close(x, want)


@pytest.mark.gpu
def test_complex64_torch_tensor_on_the_gpu():
    torch = cuda_torch()
    program = tilejit.Program(
        "conj_scale", """
extern "C" __global__ void conj_scale(float2* z, float s, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) z[i] = make_float2(z[i].x * s, -z[i].y * s);
}""",
        params=[tilejit.Tensor("z", "complex64", ["n"]), tilejit.Scalar("s", "float32")],
        launches=[tilejit.Launch("conj_scale", grid=["ceildiv(n, 128)"], block=[128])])
    kernel = tilejit.compile(program)
    z = torch.randn(777, dtype=torch.complex64, device="cuda")
    want = torch.conj(z).resolve_conj() * 1.5
    kernel(z, 1.5)
    torch.testing.assert_close(z, want, rtol=0, atol=0)
