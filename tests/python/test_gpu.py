"""CUDA kernels driven from torch (and cupy where installed). Marked gpu: `pytest -m gpu`.
Each test skips with a reason where torch, a CUDA device or a second device is missing."""

import pytest

import tilejit
from conftest import cuda_torch

pytestmark = pytest.mark.gpu

ADD_SOURCE = """
extern "C" __global__ void vector_add(const float* A, const float* B, float* C, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) C[i] = A[i] + B[i];
}
"""


def add_program():
    return tilejit.Program(
        "vector_add", ADD_SOURCE,
        params=[tilejit.Tensor("A", "float32", ["n"]), tilejit.Tensor("B", "float32", ["n"]),
                tilejit.Tensor("C", "float32", ["n"])],
        launches=[tilejit.Launch("vector_add", grid=["ceildiv(n, 128)"], block=[128])])


@pytest.fixture(scope="module")
def torch():
    return cuda_torch()


@pytest.fixture(scope="module")
def add_out(torch):
    return tilejit.compile(add_program(), out_idx=[-1])


@pytest.fixture(scope="module")
def add_into(torch):
    return tilejit.compile(add_program(), out_idx=[])


def test_out_idx_returns_torch_tensors_on_the_inputs_device(torch, add_out):
    for n in (1, 1000, 40_001):
        a = torch.randn(n, device="cuda")
        b = torch.randn(n, device="cuda")
        c = add_out(a, b)
        assert isinstance(c, torch.Tensor)
        assert c.device == a.device and c.dtype == torch.float32 and c.shape == (n,)
        torch.testing.assert_close(c, a + b, rtol=0, atol=0)


def test_current_stream_is_honoured(torch, add_into):
    n = 1 << 20
    a = torch.zeros(n, device="cuda")
    b = torch.ones(n, device="cuda")
    c = torch.empty(n, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        # A long sleep, then a write of `a`: a kernel that ran on another stream would read
        # the old zeros before the write lands.
        torch.cuda._sleep(50_000_000)
        a.fill_(41.0)
        add_into(a, b, c)
        d = c * 2
    side.synchronize()
    assert torch.equal(c, torch.full_like(c, 42.0))
    assert torch.equal(d, torch.full_like(d, 84.0))


def test_explicit_stream_overrides_the_current_one(torch, add_into):
    n = 1 << 20
    a = torch.zeros(n, device="cuda")
    b = torch.ones(n, device="cuda")
    c = torch.empty(n, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(50_000_000)
        a.fill_(6.0)
    add_into(a, b, c, stream=side)  # outside the context: only stream= orders it after fill_
    with torch.cuda.stream(side):
        e = c + 0
    side.synchronize()
    assert torch.equal(e, torch.full_like(e, 7.0))
    add_into(a, b, c, stream=side.cuda_stream)  # a raw handle works too
    side.synchronize()
    assert torch.equal(c, torch.full_like(c, 7.0))


def test_cuda_graph_capture_replays(torch, add_out):
    n = 3000
    a = torch.randn(n, device="cuda")
    b = torch.randn(n, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        add_out(a, b)  # warm-up outside capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        c = add_out(a, b)
    for _ in range(3):
        a.copy_(torch.randn(n, device="cuda"))
        b.copy_(torch.randn(n, device="cuda"))
        graph.replay()
        torch.cuda.synchronize()
        torch.testing.assert_close(c, a + b, rtol=0, atol=0)


def test_device_index_comes_from_the_tensors(torch, add_out):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs at least 2 CUDA devices")
    torch.cuda.set_device(0)
    for index in range(torch.cuda.device_count()):
        a = torch.randn(777, device=f"cuda:{index}")
        b = torch.randn(777, device=f"cuda:{index}")
        c = add_out(a, b)
        assert c.device == a.device
        torch.testing.assert_close(c, a + b, rtol=0, atol=0)


def test_a_call_on_another_device_leaves_the_callers_context_current(torch, add_out):
    # Regression: a call on cuda:1 used to leave device 1's context current on the thread, so
    # torch's next graph capture on device 0 and cupy's curand failed.
    if torch.cuda.device_count() < 2:
        pytest.skip("needs at least 2 CUDA devices")
    runtime = pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed")
    torch.cuda.set_device(0)
    torch.ones(1, device="cuda:0").sum().item()  # device 0's context is current now
    a = torch.randn(99, device="cuda:1")
    b = torch.randn(99, device="cuda:1")
    c = add_out(a, b)
    torch.testing.assert_close(c, a + b, rtol=0, atol=0)
    error, device = runtime.cudaGetDevice()
    assert int(error) == 0 and device == 0


def test_tensors_on_two_devices_are_an_argument_error(torch, add_out):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs at least 2 CUDA devices")
    a = torch.randn(64, device="cuda:0")
    b = torch.randn(64, device="cuda:1")
    with pytest.raises(tilejit.ArgumentError) as info:
        add_out(a, b)
    assert "'B'" in str(info.value)


def test_host_tensor_to_a_cuda_kernel_is_an_argument_error(torch, add_into):
    a = torch.randn(8, device="cuda")
    b = torch.randn(8)  # host memory
    c = torch.full((8,), -7.0, device="cuda")
    with pytest.raises(tilejit.ArgumentError) as info:
        add_into(a, b, c)
    assert "'B'" in str(info.value)
    assert torch.equal(c, torch.full_like(c, -7.0))
    with pytest.raises(tilejit.ArgumentError) as info:
        add_into(a, a.double(), c)
    assert "'B'" in str(info.value) and "float64" in str(info.value)


def test_benchmark_returns_a_positive_median(torch, add_out):
    a = torch.randn(1 << 16, device="cuda")
    b = torch.randn(1 << 16, device="cuda")
    for backend in ("event", "cudagraph"):
        ms = add_out.benchmark(a, b, warmup=5, rep=20, backend=backend)
        assert ms > 0, backend
    assert add_out.benchmark(a, b, warmup=2, rep=5, flush_l2=False) > 0


def test_cupy_arrays_in_cupy_arrays_out(torch, add_out):
    cp = pytest.importorskip("cupy", reason="cupy is not installed")
    a = cp.random.standard_normal(513, dtype=cp.float32)
    b = cp.random.standard_normal(513, dtype=cp.float32)
    c = add_out(a, b)
    assert isinstance(c, cp.ndarray)
    cp.testing.assert_array_equal(c, a + b)
