"""par_compile of NVRTC Programs: compiled in worker processes (tilejit-nvrtc-worker, installed
beside the extension), the same binaries as compile(); run and checked where a GPU exists."""

import os
import pathlib
import uuid

import pytest

import tilejit
from conftest import cuda_torch

SOURCE = """
extern "C" __global__ void affine(const float* A, float* B, int n) {{
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) B[i] = A[i] * {scale}f + {offset}f;
}}
"""


def affine_program(index, salt):
    scale, offset = index + 1.5, -0.25 * index
    program = tilejit.Program(
        f"affine_{salt}_{index}", SOURCE.format(scale=scale, offset=offset),
        params=[tilejit.Tensor("A", "float32", ["n"]), tilejit.Tensor("B", "float32", ["n"])],
        launches=[tilejit.Launch("affine", grid=["ceildiv(n, 128)"], block=[128])])
    return program, scale, offset


def programs(count):
    salt = uuid.uuid4().hex[:8]  # new cache keys: the compiles really run
    return [affine_program(i, salt) for i in range(count)]


def require_nvrtc(error):
    if "nvrtc" in str(error).lower():
        pytest.skip(f"NVRTC is not available: {error}")
    raise error


def test_the_worker_is_installed_beside_the_extension():
    worker = pathlib.Path(tilejit._core.__file__).parent / "tilejit-nvrtc-worker"
    assert worker.is_file(), f"{worker} is missing from the package"
    assert os.access(worker, os.X_OK)


def test_par_compile_uses_worker_processes(capfd):
    built = programs(5)
    try:
        kernels = tilejit.par_compile([p for p, _, _ in built], execution_backend="nvrtc",
                                      target="cuda -arch=sm_90", num_workers=3)
    except tilejit.NotAvailableError as error:
        require_nvrtc(error)
    # With the installed worker nothing falls back in-process (which would warn).
    assert "tilejit: warning" not in capfd.readouterr().err
    binaries = set()
    for kernel, (program, _, _) in zip(kernels, built):
        assert kernel.program.name == program.name
        assert kernel.backend == "nvrtc" and kernel._compiled.binary_kind == "cubin"
        binary = kernel._compiled.binary
        assert binary.startswith(b"\x7fELF") and b"\0affine\0" in binary
        binaries.add(binary)
    assert len(binaries) == len(built), "distinct sources gave identical cubins"


def test_par_compile_routes_nvrtc_through_the_worker_pool(capfd, monkeypatch):
    # A missing worker executable makes the pool fall back in-process with a warning: seeing
    # the warning proves par_compile asked for a worker process (compile() never does).
    missing = f"/nonexistent-{uuid.uuid4().hex}/tilejit-nvrtc-worker"
    monkeypatch.setenv("TILEJIT_NVRTC_WORKER", missing)
    built = programs(2)
    try:
        tilejit.compile(built[0][0], execution_backend="nvrtc", target="cuda -arch=sm_90")
    except tilejit.NotAvailableError as error:
        require_nvrtc(error)
    assert missing not in capfd.readouterr().err
    kernels = tilejit.par_compile([built[1][0]], execution_backend="nvrtc",
                                  target="cuda -arch=sm_90")
    err = capfd.readouterr().err
    assert "tilejit: warning" in err and missing in err, err
    assert kernels[0]._compiled.binary_kind == "cubin"


@pytest.mark.gpu
def test_par_compiled_nvrtc_kernels_run_correctly():
    torch = cuda_torch()
    built = programs(6)
    kernels = tilejit.par_compile([p for p, _, _ in built], out_idx=[-1],
                                  execution_backend="nvrtc")
    for kernel, (_, scale, offset) in zip(kernels, built):
        a = torch.randn(1003, device="cuda")
        b = kernel(a)
        torch.testing.assert_close(b, a * scale + offset)
