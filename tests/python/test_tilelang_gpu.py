"""TileLang's example kernels on a GPU: each is lowered by TileLang and run through tilejit (nvrtc
and nvcc backends) and through TileLang itself (tilelang.compile, its default execution
backend) on the same random inputs. Both compile the same CUDA source with the same NVVM
front end, so tilejit's outputs must be bit-identical to TileLang's; both must match a torch
reference within the kernel's tolerance.

Needs torch with a CUDA device and TileLang (pytest -m gpu; scripts/gpu-check.sh).
"""

import math

import pytest

tilelang = pytest.importorskip(
    "tilelang", reason="TileLang is not installed (pip install tilelang==0.1.15)")

import tilejit  # noqa: E402

import tilelang_kernels as kernels  # noqa: E402
from conftest import cuda_torch  # noqa: E402

pytestmark = pytest.mark.gpu

BACKENDS = ["nvrtc", "nvcc"]


@pytest.fixture(scope="module")
def torch():
    return cuda_torch()


@pytest.fixture(scope="module")
def arch(torch):
    major, minor = torch.cuda.get_device_capability()
    return f"sm_{major}{minor}{'a' if major >= 9 else ''}"


@pytest.fixture(scope="module")
def tilelang_kernel(arch):
    """TileLang's own compile of a PrimFunc for this device, once per kernel."""
    compiled = {}

    def get(name, func, out_idx):
        if name not in compiled:
            compiled[name] = tilelang.compile(func, out_idx=out_idx,
                                              target={"kind": "cuda", "arch": arch})
        return compiled[name]

    return get


def run_both(name, func, out_idx, inputs, backend, arch, tilelang_kernel):
    """(tilejit's output, TileLang's output) for the same inputs."""
    kernel = tilejit.compile(func, out_idx=out_idx, target=arch, execution_backend=backend)
    assert kernel.backend == backend
    ours = kernel(*inputs)
    theirs = tilelang_kernel(name, func, out_idx)(*inputs)
    return ours, theirs


def assert_same_bits(torch, ours, theirs):
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert torch.equal(ours, theirs), (
        f"tilejit and TileLang differ in {(ours != theirs).sum().item()} of {ours.numel()} "
        f"elements; max difference {(ours.float() - theirs.float()).abs().max().item()}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_elementwise_add(torch, arch, tilelang_kernel, backend):
    torch.manual_seed(1)
    a, b = (torch.randn(1024, 768, device="cuda") for _ in range(2))
    func = kernels.elementwise_add(1024, 768)
    ours, theirs = run_both("add", func, [2], (a, b), backend, arch, tilelang_kernel)
    assert_same_bits(torch, ours, theirs)
    assert torch.equal(ours, a + b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hopper_gemm_with_tma(torch, arch, tilelang_kernel, backend):
    torch.manual_seed(2)
    M, N, K = 1024, 768, 512
    a = torch.randn(M, K, device="cuda", dtype=torch.float16)
    b = torch.randn(K, N, device="cuda", dtype=torch.float16)
    func = kernels.matmul(M, N, K)
    if arch.startswith("sm_90"):
        # The case that failed to launch before: two TMA descriptors, 48 KiB of dynamic
        # shared memory next to static shared memory, warp specialization.
        program = tilejit.Program.from_tilelang(func, target=arch)
        assert len(program.tma_descriptors) == 2
        assert program.launches[0].dynamic_smem == 49152
    ours, theirs = run_both("gemm", func, [2], (a, b), backend, arch, tilelang_kernel)
    assert_same_bits(torch, ours, theirs)
    reference = a.float() @ b.float()
    torch.testing.assert_close(ours.float(), reference, rtol=1e-2, atol=1e-1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hopper_gemm_with_a_dynamic_m(torch, arch, tilelang_kernel, backend):
    torch.manual_seed(8)
    func = kernels.matmul(tilelang.language.dynamic("M"), 768, 256)
    kernel = tilejit.compile(func, out_idx=[2], target=arch, execution_backend=backend)
    theirs_kernel = tilelang_kernel("gemm_dynamic_m", func, [2])
    # One kernel, TMA descriptors re-encoded for each M.
    for m in (640, 256):
        a = torch.randn(m, 256, device="cuda", dtype=torch.float16)
        b = torch.randn(256, 768, device="cuda", dtype=torch.float16)
        ours = kernel(a, b)
        assert_same_bits(torch, ours, theirs_kernel(a, b))
        torch.testing.assert_close(ours.float(), a.float() @ b.float(), rtol=1e-2, atol=1e-1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_row_sum(torch, arch, tilelang_kernel, backend):
    torch.manual_seed(3)
    a = torch.randn(1024, 128, device="cuda")
    func = kernels.row_sum(1024, 128)
    ours, theirs = run_both("row_sum", func, [1], (a,), backend, arch, tilelang_kernel)
    assert_same_bits(torch, ours, theirs)
    torch.testing.assert_close(ours, a.sum(dim=1), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dynamic_length(torch, arch, tilelang_kernel, backend):
    torch.manual_seed(4)
    func = kernels.scaled_add_dynamic()
    kernel = tilejit.compile(func, out_idx=[2], target=arch, execution_backend=backend)
    theirs_kernel = tilelang_kernel("scaled_add", func, [2])
    # One compiled kernel, several lengths: N is bound from the tensors at each call.
    for n in (1000003, 4097, 1):
        a, b = (torch.randn(n, device="cuda") for _ in range(2))
        ours = kernel(a, b, 0.75)
        assert_same_bits(torch, ours, theirs_kernel(a, b, 0.75))
        torch.testing.assert_close(ours, a + 0.75 * b, rtol=1e-6, atol=1e-6)
    with pytest.raises(tilejit.ArgumentError, match="'B'"):
        kernel(torch.randn(10, device="cuda"), torch.randn(11, device="cuda"), 1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_flash_attention_forward(torch, arch, tilelang_kernel, backend):
    torch.manual_seed(5)
    batch, heads, seq_len, dim = 2, 4, 512, 64
    q, k, v = (torch.randn(batch, seq_len, heads, dim, device="cuda", dtype=torch.float16)
               for _ in range(3))
    func = kernels.flash_attention(batch, heads, seq_len, dim)
    ours, theirs = run_both("mha_fwd", func, [3], (q, k, v), backend, arch, tilelang_kernel)
    assert_same_bits(torch, ours, theirs)
    scores = torch.einsum("bqhd,bkhd->bhqk", q.float(), k.float()) / math.sqrt(dim)
    reference = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(dim=-1), v.float())
    torch.testing.assert_close(ours.float(), reference, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_im2col_convolution(torch, arch, tilelang_kernel, backend):
    torch.manual_seed(6)
    n, c, h, w, f, k = 2, 64, 16, 16, 128, 3
    data = torch.randn(n, h, w, c, device="cuda", dtype=torch.float16)
    weights = torch.randn(k, k, c, f, device="cuda", dtype=torch.float16)
    func = kernels.convolution(n, c, h, w, f, k, S=1, D=1, P=1)
    ours, theirs = run_both("convolution", func, [2], (data, weights), backend, arch,
                            tilelang_kernel)
    assert_same_bits(torch, ours, theirs)
    reference = torch.nn.functional.conv2d(data.permute(0, 3, 1, 2).float(),
                                           weights.permute(3, 2, 0, 1).float(), stride=1,
                                           padding=1, dilation=1).permute(0, 2, 3, 1)
    torch.testing.assert_close(ours.float(), reference, rtol=1e-2, atol=1e-1)


# 384 x 512: a grid of 4 x 3 blocks, whose x extent the cluster of 2 divides.
@pytest.mark.parametrize("make", [lambda: kernels.add_l2_persistent(384, 512, 0.5),
                                  lambda: kernels.add_in_clusters(384, 512, (2, 1, 1)),
                                  lambda: kernels.add_with_pdl(384, 512)],
                         ids=["l2_persistent", "cluster", "pdl"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_launch_attributes(torch, arch, tilelang_kernel, backend, make):
    torch.manual_seed(7)
    a, b = (torch.randn(384, 512, device="cuda") for _ in range(2))
    func = make()
    name = str(func.attrs["global_symbol"])
    ours, theirs = run_both(name, func, [2], (a, b), backend, arch, tilelang_kernel)
    assert_same_bits(torch, ours, theirs)
    assert torch.equal(ours, a + b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gemm_with_a_register_usage_level(torch, arch, backend):
    # The level reaches ptxas on both backends (test_tilelang.py shows the cubins differ); the
    # kernel it builds must still compute the product, as TileLang's nvcc build with it does.
    torch.manual_seed(9)
    M, N, K = 768, 512, 256
    a = torch.randn(M, K, device="cuda", dtype=torch.float16)
    b = torch.randn(K, N, device="cuda", dtype=torch.float16)
    func = kernels.matmul(M, N, K)
    configs = {"tl.ptxas_register_usage_level": 10}
    kernel = tilejit.compile(func, out_idx=[2], target=arch, execution_backend=backend,
                             pass_configs=configs)
    assert "--ptxas-options=--register-usage-level=10" in kernel.program.compile_flags
    theirs = tilelang.compile(func, out_idx=[2], target={"kind": "cuda", "arch": arch},
                              pass_configs=configs)
    ours = kernel(a, b)
    assert_same_bits(torch, ours, theirs(a, b))
    torch.testing.assert_close(ours.float(), a.float() @ b.float(), rtol=1e-2, atol=1e-1)
