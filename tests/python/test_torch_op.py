"""tilejit kernels as torch operators: schema, opcheck, fake tensors with symbolic sizes,
torch.compile(dynamic=True), autograd, the capture guard, warm-up and bad input. CPU backend
in CI; the CUDA half (CUDA graphs, reduce-overhead) is marked gpu."""

import subprocess
import sys

import numpy as np
import pytest

import tilejit
from conftest import cuda_torch, vector_add_program

torch = pytest.importorskip("torch", reason="torch is not installed")

SCALE_C = """
void scale(const float* X, float* Y, float alpha, int n) {
  for (int i = 0; i < n; ++i) Y[i] = alpha * X[i];
}
"""

# Y[i] = X[2i] + X[2i+1], the last element alone when n is odd: Y has ceildiv(n, 2) elements.
PAIR_SUM_C = """
void pair_sum(const float* X, float* Y, int n) {
  for (int i = 0; 2 * i < n; ++i) Y[i] = X[2 * i] + (2 * i + 1 < n ? X[2 * i + 1] : 0.0f);
}
"""

# The gradient of vector_add: both inputs get the output's gradient.
ADD_BACKWARD_C = """
void add_backward(const float* A, const float* B, const float* G, float* GA, float* GB, int n) {
  for (int i = 0; i < n; ++i) { GA[i] = G[i]; GB[i] = G[i]; }
}
"""

IOTA_C = """
void iota(float* out, int n) { for (int i = 0; i < n; ++i) out[i] = (float)i; }
"""


def scale_program():
    return tilejit.Program(
        "scale", SCALE_C,
        params=[tilejit.Tensor("X", "float32", ["n"]), tilejit.Tensor("Y", "float32", ["n"]),
                tilejit.Scalar("alpha", "float32")],
        launches=[tilejit.Launch("scale")], language="c", out_idx=[1])


def pair_sum_program():
    return tilejit.Program(
        "pair_sum", PAIR_SUM_C,
        params=[tilejit.Tensor("X", "float32", ["n"]),
                tilejit.Tensor("Y", "float32", ["ceildiv(n, 2)"])],
        launches=[tilejit.Launch("pair_sum")], language="c", out_idx=[1])


def pair_sum_reference(x):
    padded = torch.cat([x, x.new_zeros(x.shape[0] % 2)])
    return padded.view(-1, 2).sum(1)


@pytest.fixture(scope="module")
def ops():
    """One op per kind, registered once (an operator name cannot be registered twice)."""
    add = tilejit.compile(vector_add_program(), out_idx=[-1], torch_op="tilejit_test::add")
    scale = tilejit.compile(scale_program())
    pair_sum = tilejit.compile(pair_sum_program())
    add_into = tilejit.compile(vector_add_program(), out_idx=[])
    return {
        "add": torch.ops.tilejit_test.add,
        "add_kernel": add,
        "scale": scale.as_torch_op("tilejit_test::scale"),
        "pair_sum": pair_sum.as_torch_op("tilejit_test::pair_sum"),
        "add_into": add_into.as_torch_op("tilejit_test::add_into", mutates_args=["C"]),
    }


def test_schemas_follow_the_program(ops):
    assert str(torch.ops.tilejit_test.add.default._schema) == \
        "tilejit_test::add(Tensor A, Tensor B) -> Tensor"
    assert str(torch.ops.tilejit_test.scale.default._schema) == \
        "tilejit_test::scale(Tensor X, float alpha) -> Tensor"
    assert str(torch.ops.tilejit_test.add_into.default._schema) == \
        "tilejit_test::add_into(Tensor A, Tensor B, Tensor(a0!) C) -> ()"


@pytest.mark.parametrize("n", [1, 7, 1000])
def test_eager_results(ops, n):
    a, b = torch.randn(n), torch.randn(n)
    torch.testing.assert_close(ops["add"](a, b), a + b, rtol=0, atol=0)
    torch.testing.assert_close(torch.ops.tilejit_test.scale(a, -1.5), -1.5 * a)
    torch.testing.assert_close(ops["pair_sum"](a), pair_sum_reference(a))
    c = torch.full((n,), float("nan"))
    assert ops["add_into"](a, b, c) is None
    torch.testing.assert_close(c, a + b, rtol=0, atol=0)


def test_opcheck_passes(ops):
    x = torch.randn(9)
    cases = [("add", (x, torch.randn(9))), ("scale", (x, 0.25)), ("pair_sum", (x,)),
             ("add_into", (x, torch.randn(9), torch.empty(9)))]
    for name, args in cases:
        result = torch.library.opcheck(ops[name], args)
        assert all(v == "SUCCESS" for v in result.values()), (name, result)


def test_fake_tensors_give_symbolic_output_shapes(ops):
    from torch.fx.experimental.proxy_tensor import make_fx

    # Symbolic tracing runs the fake implementations on fake tensors with SymInt sizes.
    graph = make_fx(lambda x: (ops["pair_sum"](x), ops["add"](x, x)),
                    tracing_mode="symbolic")(torch.empty(10)).graph
    (x,) = [node.meta["val"] for node in graph.nodes if node.op == "placeholder"]
    (outputs,) = [node.args[0] for node in graph.nodes if node.op == "output"]
    y, z = (node.meta["val"] for node in outputs)
    n = x.shape[0]
    assert isinstance(n, torch.SymInt) and isinstance(y.shape[0], torch.SymInt)
    symbol = n.node.expr
    assert z.shape[0].node.expr == symbol
    for size in (1, 2, 7, 10, 1001):
        assert int(y.shape[0].node.expr.subs(symbol, size)) == (size + 1) // 2
    assert y.dtype == torch.float32 and y.device.type == "cpu"


def test_shape_expressions_evaluate_as_tilejit_defines_them():
    from tilejit.torch_op import evaluate

    assert tilejit._core.expr_tree("ceildiv(n, 128)") == ("ceildiv", "n", 128)
    assert tilejit._core.expr_tree(7) == 7 and tilejit._core.expr_tree("m") == "m"
    tree = tilejit._core.expr_tree("max(ceildiv(n, 4) * 2 - m, n % 3) + min(n / 5, m)")
    for n in (-9, -1, 0, 1, 5, 17, 1000):
        for m in (-4, 0, 3, 250):
            ceil = -(-n // 4)
            assert evaluate(tree, {"n": n, "m": m}) == max(ceil * 2 - m, n % 3) + min(n // 5, m)


def _compile_counting(fn, backend="aot_eager"):
    from torch._dynamo.testing import CompileCounterWithBackend

    counter = CompileCounterWithBackend(backend)
    return torch.compile(fn, backend=counter, fullgraph=True, dynamic=True), counter


def test_torch_compile_dynamic_traces_once_and_matches_eager(ops):
    torch._dynamo.reset()

    def f(a, b):
        return ops["pair_sum"](ops["add"](a, b) * 2.0) + 1.0

    compiled, counter = _compile_counting(f)
    for n in (13, 40, 41):
        a, b = torch.randn(n), torch.randn(n)
        torch.testing.assert_close(compiled(a, b), f(a, b))
    assert counter.frame_count == 1


def test_torch_compile_with_inductor(ops):
    torch._dynamo.reset()

    def f(x):
        return torch.ops.tilejit_test.scale(x.sin(), -2.5) - x

    compiled, counter = _compile_counting(f, backend="inductor")
    for n in (17, 64):
        x = torch.randn(n)
        torch.testing.assert_close(compiled(x), f(x))
    assert counter.frame_count == 1


def test_bad_inputs_give_the_argument_error_text(ops):
    with pytest.raises(tilejit.ArgumentError, match=r"argument 'B' \(#1\): dim 0: expected n = 5"):
        ops["add"](torch.randn(5), torch.randn(6))
    with pytest.raises(tilejit.ArgumentError, match="expected dtype float32, got float64"):
        ops["add"](torch.randn(5), torch.randn(5, dtype=torch.float64))
    # The same text when torch.compile meets it while tracing (the fake implementation).
    torch._dynamo.reset()
    compiled = torch.compile(lambda a, b: ops["add"](a, b), backend="aot_eager", fullgraph=True)
    with pytest.raises(Exception, match="argument 'B' \\(#1\\): expected 1 dimensions, got 2"):
        compiled(torch.randn(4), torch.randn(4, 1))
    torch._dynamo.reset()
    static = torch.compile(lambda a, b: ops["add"](a, b), backend="aot_eager", fullgraph=True,
                           dynamic=False)
    with pytest.raises(Exception, match=r"argument 'B' \(#1\): dim 0: expected n = 4 "
                                        r"\(bound from 'A' dim 0\), got 5"):
        static(torch.randn(4), torch.randn(5))


def test_registration_errors(ops):
    kernel = ops["add_kernel"]
    with pytest.raises(tilejit.ArgumentError, match="already registered"):
        kernel.as_torch_op("tilejit_test::add")
    with pytest.raises(tilejit.ArgumentError, match="namespace::op"):
        kernel.as_torch_op("no_namespace")
    into = tilejit.compile(vector_add_program(), out_idx=[])
    with pytest.raises(tilejit.ArgumentError, match=r"mutates_args=\[\.\.\.\]"):
        into.as_torch_op("tilejit_test::unnamed_writes")
    with pytest.raises(tilejit.ArgumentError, match="'D', which is not a tensor input"):
        into.as_torch_op("tilejit_test::bad_writes", mutates_args=["D"])


def test_autograd_with_a_function_backward():
    kernel = tilejit.compile(scale_program())

    def backward(ctx, grad):
        return grad * ctx.inputs[1], None

    op = kernel.as_torch_op("tilejit_test::scale_fn_grad", backward=backward)
    x = torch.randn(11, requires_grad=True)
    (grad,) = torch.autograd.grad(op(x, 3.0).sum(), x)
    torch.testing.assert_close(grad, torch.full((11,), 3.0))


def test_autograd_with_a_kernel_backward():
    forward = tilejit.compile(vector_add_program(), out_idx=[-1])
    backward = tilejit.compile(tilejit.Program(
        "add_backward", ADD_BACKWARD_C,
        params=[tilejit.Tensor(name, "float32", ["n"]) for name in ("A", "B", "G", "GA", "GB")],
        launches=[tilejit.Launch("add_backward")], language="c", out_idx=[3, 4]))
    op = forward.as_torch_op("tilejit_test::add_kernel_grad", backward=backward)
    a = torch.randn(6, requires_grad=True)
    b = torch.randn(6, requires_grad=True)
    weights = torch.randn(6)
    ga, gb = torch.autograd.grad((op(a, b) * weights).sum(), (a, b))
    torch.testing.assert_close(ga, weights)
    torch.testing.assert_close(gb, weights)
    assert torch.library.opcheck(op, (a, b))["test_aot_dispatch_dynamic"] == "SUCCESS"


def test_backward_without_a_formula_is_an_error(ops):
    a = torch.randn(3, requires_grad=True)
    out = ops["add"](a, torch.randn(3))
    with pytest.raises(RuntimeError, match="autograd"):
        out.sum().backward()


def test_every_dispatch_path_gives_the_kernels_results(ops):
    """The autograd kernel calls the impl itself for plain tensors and redispatches otherwise
    (a __torch_dispatch__ mode, inference mode skips autograd): the same results either way."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Recording(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.seen.append(str(func))
            return func(*args, **(kwargs or {}))

    a, b = torch.randn(33), torch.randn(33)
    assert isinstance(ops["add"], torch._ops.OpOverloadPacket)
    with Recording() as mode:
        torch.testing.assert_close(ops["add"](a, b), a + b, rtol=0, atol=0)
    assert "tilejit_test.add.default" in mode.seen
    with torch.inference_mode():
        x, y = torch.randn(5), torch.randn(5)
        torch.testing.assert_close(ops["add"](x, y), x + y, rtol=0, atol=0)
        c = torch.empty(5)
        ops["add_into"](x, y, c)
        torch.testing.assert_close(c, x + y, rtol=0, atol=0)
    with torch.no_grad():
        a.requires_grad_(True)
        out = ops["add"](a, b)
        assert not out.requires_grad
        torch.testing.assert_close(out, a.detach() + b, rtol=0, atol=0)


def plain_call_keyset(device):
    """The dispatch key set an autograd kernel receives for a call on ordinary tensors of
    ``device``, read by a probe op registered here."""
    from tilejit.torch_op import _library

    name = f"keyset_probe_{device}"
    lib = _library("tilejit_test")
    lib.define(f"{name}(Tensor x) -> Tensor")
    lib.impl(name, lambda x: x.clone(), "CompositeExplicitAutograd")
    seen = []

    def autograd(keyset, x):
        seen.append(keyset)
        return x.clone()

    lib.impl(name, autograd, "Autograd", with_keyset=True)
    getattr(torch.ops.tilejit_test, name)(torch.randn(3, device=device))
    return seen[0]


def test_plain_cpu_calls_take_the_fast_path():
    from tilejit.torch_op import _FAST_KEYSETS

    assert plain_call_keyset("cpu").raw_repr() in _FAST_KEYSETS


def test_in_place_op_bumps_the_version_of_what_it_writes(ops):
    a, b, c = torch.randn(8), torch.randn(8), torch.zeros(8)
    before = (a._version, b._version, c._version)
    ops["add_into"](a, b, c)
    assert (a._version, b._version, c._version) == (before[0], before[1], before[2] + 1)
    # Autograd sees the write: a tensor saved for backward and then overwritten is an error.
    w = torch.randn(8, requires_grad=True)
    y = w * c  # saves c
    ops["add_into"](a, b, c)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    # No outputs, no graph: an input that requires grad changes nothing.
    a.requires_grad_(True)
    ops["add_into"](a, b, c)
    torch.testing.assert_close(c, a.detach() + b, rtol=0, atol=0)
    assert c.grad_fn is None and not c.requires_grad


def test_in_place_op_refuses_autograd_it_cannot_record():
    kernel = tilejit.compile(scale_program())
    with pytest.raises(tilejit.ArgumentError, match="cannot have a backward formula"):
        kernel.as_torch_op("tilejit_test::scale_writes", mutates_args=["X"],
                           backward=lambda ctx, g: (g, None))
    # The refusal came before registering: the name is still free.
    op = kernel.as_torch_op("tilejit_test::scale_writes", mutates_args=["X"])
    x = torch.randn(4)
    torch.testing.assert_close(op(x, 2.0), 2.0 * x)
    with pytest.raises(tilejit.ArgumentError, match="cannot record an autograd graph"):
        op(torch.randn(4, requires_grad=True), 2.0)


def test_ops_work_without_torch_library_get_kernel(monkeypatch):
    """torch before 2.9 has no torch.library.get_kernel: torch's autograd kernel then serves
    every call (slower, same results)."""
    monkeypatch.delattr(torch.library, "get_kernel")

    def backward(ctx, grad):
        return grad * ctx.inputs[1], None

    op = tilejit.compile(scale_program()).as_torch_op("tilejit_test::scale_old_torch",
                                                      backward=backward)
    x = torch.randn(6, requires_grad=True)
    torch.testing.assert_close(op(x.detach(), -3.0), -3.0 * x.detach())
    (grad,) = torch.autograd.grad(op(x, -3.0).sum(), x)
    torch.testing.assert_close(grad, torch.full((6,), -3.0))


def test_compile_during_capture_raises_capture_error(monkeypatch):
    # CI has no GPU: stand in for torch's capture state (the GPU test below captures for real).
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    with pytest.raises(tilejit.CaptureError, match="Warm up first") as info:
        tilejit.compile(vector_add_program(), out_idx=[-1])
    assert isinstance(info.value, tilejit.Error)
    built = []

    @tilejit.jit(out_idx=[-1])
    def add(A, B):
        built.append(A.shape)
        return vector_add_program()

    with pytest.raises(tilejit.CaptureError, match="capturing a CUDA graph"):
        add(np.zeros(3, np.float32), np.zeros(3, np.float32))


def test_jit_warmup_memoizes_so_calls_do_not_compile(rng, monkeypatch):
    built = []

    @tilejit.jit(out_idx=[-1])
    def add(A, B):
        built.append(tuple(A.shape))
        return vector_add_program()

    kernels = add.warmup([(torch.empty(5), torch.empty(5)), {"A": torch.empty(8),
                                                              "B": torch.empty(8)}])
    assert all(isinstance(k, tilejit.Kernel) for k in kernels) and built == [(5,), (8,)]
    # Calls after a warm-up compile nothing, even while "capturing".
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    a, b = torch.randn(8), torch.randn(8)
    torch.testing.assert_close(add(a, b), a + b)
    assert built == [(5,), (8,)]


def test_kernel_warmup_binds_shapes_by_name(ops):
    ops["add_kernel"].warmup(shapes=[{"n": 3}, {"n": 1000}])
    with pytest.raises(tilejit.ArgumentError, match="shape symbol 'n' of 'A' is not given"):
        ops["add_kernel"].warmup(shapes=[{"m": 3}])


def test_jit_torch_op_traces_once_for_every_size():
    @tilejit.jit(out_idx=[-1], torch_op="tilejit_test::jit_add")
    def add(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return vector_add_program()

    assert add.torch_op is not None
    torch._dynamo.reset()
    compiled, counter = _compile_counting(lambda a, b: torch.ops.tilejit_test.jit_add(a, b) * a)
    for n in (5, 12, 31):
        a, b = torch.randn(n), torch.randn(n)
        torch.testing.assert_close(compiled(a, b), (a + b) * a)
    assert counter.frame_count == 1
    a = torch.randn(7)
    result = torch.library.opcheck(torch.ops.tilejit_test.jit_add, (a, torch.randn(7)))
    assert all(v == "SUCCESS" for v in result.values()), result


def test_one_kernel_per_device_architecture(monkeypatch):
    """The op's device-to-kernel choice, with torch's CUDA device queries stood in for: CI has
    no GPU (test_gpu_one_variant_per_device_architecture runs it on real devices)."""
    import contextlib

    from tilejit.torch_op import DeviceVariants

    capabilities = {0: (9, 0), 1: (8, 0), 2: (9, 0), 3: (8, 0)}
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: capabilities[index])
    current = []
    monkeypatch.setattr(torch.cuda, "device",
                        lambda index: contextlib.nullcontext(current.append(index)))

    class Built:  # what DeviceVariants reads of a Kernel
        def __init__(self, target):
            self.backend, self.target = "nvrtc", target
            self.program = vector_add_program()

    given = Built("cuda -arch=sm_90a")
    rebuilt = []

    def recompile():
        rebuilt.append(Built(f"built under device {current[-1]}"))
        return rebuilt[-1]

    variants = DeviceVariants(given, recompile)
    kernels = [variants.for_device(torch.device("cuda", i)) for i in (0, 1, 2, 3, 1)]
    assert kernels[0] is given and kernels[2] is given  # sm_90 devices: the kernel given
    assert len(rebuilt) == 1 and current == [1]  # sm_80: built once, under its own device
    assert kernels[1] is rebuilt[0] and kernels[3] is rebuilt[0] and kernels[4] is rebuilt[0]
    assert variants.for_device(torch.device("cpu")) is given
    assert DeviceVariants(given, None).for_device(torch.device("cuda", 1)) is given


def test_an_explicit_architecture_serves_every_device_as_it_is():
    """compile(..., target="cuda -arch=sm_90a", torch_op=) keeps that kernel for every device
    (docs/torch.md); target "auto" (here: the same Program through as_torch_op) builds one per
    architecture. NVRTC compiles without a GPU; only registration is checked here."""
    from tilejit.torch_op import _VARIANTS

    explicit = tilejit.compile(cuda_add_program("explicit_arch_add"), out_idx=[-1],
                               execution_backend="nvrtc", target="cuda -arch=sm_90a",
                               torch_op="tilejit_test::explicit_arch_add")
    assert _VARIANTS[explicit.cache_key].recompile is None
    assert hasattr(torch.ops.tilejit_test, "explicit_arch_add")
    derived = tilejit.compile(cuda_add_program("derived_arch_add"), out_idx=[-1],
                              execution_backend="nvrtc", target="cuda -arch=sm_90a")
    derived.as_torch_op("tilejit_test::derived_arch_add")
    assert _VARIANTS[derived.cache_key].recompile is not None


def test_outputs_only_kernel_returns_torch_when_torch_is_imported():
    program = tilejit.Program(
        "iota", IOTA_C,
        params=[tilejit.Scalar("n", "int32"), tilejit.Tensor("out", "float32", ["n"])],
        launches=[tilejit.Launch("iota")], language="c", out_idx=[1])
    out = tilejit.compile(program)(9)
    assert isinstance(out, torch.Tensor) and out.device.type == "cpu"
    torch.testing.assert_close(out, torch.arange(9, dtype=torch.float32))
    # Without torch in the process, the same kernel returns numpy (host memory).
    script = (
        "import sys, tilejit, numpy as np\n"
        f"program = tilejit.Program.from_json({program.to_json()!r})\n"
        "out = tilejit.compile(program)(5)\n"
        "assert 'torch' not in sys.modules, 'tilejit imported torch'\n"
        "assert isinstance(out, np.ndarray), type(out)\n"
        "assert out.tolist() == [0, 1, 2, 3, 4]\n")
    subprocess.run([sys.executable, "-c", script], check=True)


# ---- CUDA: the same op on the GPU, CUDA graphs -------------------------------------------------

ADD_CUDA = """
extern "C" __global__ void vector_add(const float* A, const float* B, float* C, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) C[i] = A[i] + B[i];
}
"""


def cuda_add_program(name="vector_add"):
    return tilejit.Program(
        name, ADD_CUDA,
        params=[tilejit.Tensor("A", "float32", ["n"]), tilejit.Tensor("B", "float32", ["n"]),
                tilejit.Tensor("C", "float32", ["n"])],
        launches=[tilejit.Launch("vector_add", grid=["ceildiv(n, 128)"], block=[128])])


@pytest.fixture(scope="module")
def cuda_add():
    cuda_torch()
    return tilejit.compile(cuda_add_program(), out_idx=[-1], torch_op="tilejit_gpu::add")


def inductor_on_cuda():
    """torch.compile's default backend generates Triton kernels for CUDA tensors."""
    pytest.importorskip("triton", reason="inductor on CUDA needs triton, which is not installed")


@pytest.mark.gpu
def test_gpu_eager_opcheck_and_compile(cuda_add):
    inductor_on_cuda()
    op = torch.ops.tilejit_gpu.add
    for n in (1, 1000, 40_001):
        a, b = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
        c = op(a, b)
        assert c.device == a.device
        torch.testing.assert_close(c, a + b, rtol=0, atol=0)
    a, b = torch.randn(77, device="cuda"), torch.randn(77, device="cuda")
    result = torch.library.opcheck(op, (a, b))
    assert all(v == "SUCCESS" for v in result.values()), result
    torch._dynamo.reset()
    compiled, counter = _compile_counting(lambda x, y: op(x, y).relu() * y, backend="inductor")
    for n in (300, 4099):
        x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
        torch.testing.assert_close(compiled(x, y), (x + y).relu() * y)
    assert counter.frame_count == 1
    with pytest.raises(tilejit.ArgumentError, match="expected dtype float32, got float16"):
        op(a, b.half())


@pytest.mark.gpu
def test_gpu_plain_cuda_calls_take_the_fast_path():
    from tilejit.torch_op import _FAST_KEYSETS

    cuda_torch()
    assert plain_call_keyset("cuda").raw_repr() in _FAST_KEYSETS


@pytest.mark.gpu
def test_gpu_reduce_overhead_replays(cuda_add):
    inductor_on_cuda()
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    op = torch.ops.tilejit_gpu.add
    compiled = torch.compile(lambda x, y: op(x, y) * 2.0, mode="reduce-overhead", fullgraph=True)
    for step in range(4):  # the first calls record the CUDA graph, later ones replay it
        x, y = torch.randn(512, device="cuda"), torch.randn(512, device="cuda")
        out = compiled(x, y)
        torch.testing.assert_close(out, (x + y) * 2.0, rtol=0, atol=0)
    # Inductor did not fall back to running without CUDA graphs.
    assert counters["inductor"]["cudagraph_skips"] == 0


@pytest.mark.gpu
def test_gpu_launch_inside_a_captured_graph_replays(cuda_add):
    a, b = torch.randn(2048, device="cuda"), torch.randn(2048, device="cuda")
    cuda_add.warmup(shapes=[{"n": 2048}])  # first-use work, outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        c = torch.ops.tilejit_gpu.add(a, b)
    for _ in range(2):
        a.copy_(torch.randn_like(a))
        graph.replay()
        torch.cuda.synchronize()
        torch.testing.assert_close(c, a + b, rtol=0, atol=0)


@pytest.mark.gpu
def test_gpu_compile_inside_capture_raises_and_the_capture_still_ends(cuda_add):
    a, b = torch.randn(256, device="cuda"), torch.randn(256, device="cuda")
    torch.ops.tilejit_gpu.add(a, b)  # warm-up outside the capture
    graph = torch.cuda.CUDAGraph()
    with pytest.raises(tilejit.CaptureError, match="Warm up first"):
        with torch.cuda.graph(graph):
            c = torch.ops.tilejit_gpu.add(a, b)
            # Never built before: this compile must be refused, not attempted.
            tilejit.compile(cuda_add_program("vector_add_in_capture"), out_idx=[-1])
    # The exception left the `with` block, which ended the capture; the graph works.
    graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(c, a + b, rtol=0, atol=0)


@pytest.mark.gpu
def test_gpu_warmup_then_capture_of_a_jit_op():
    cuda_torch()

    @tilejit.jit(out_idx=[-1], torch_op="tilejit_gpu::jit_add")
    def add(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return cuda_add_program("vector_add_jit")

    a, b = torch.randn(1000, device="cuda"), torch.randn(1000, device="cuda")
    add.warmup([(a, b)])
    torch.ops.tilejit_gpu.jit_add(a, b)  # torch's own first-call work, outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        c = torch.ops.tilejit_gpu.jit_add(a, b)
    b.copy_(torch.randn_like(b))
    graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(c, a + b, rtol=0, atol=0)


@pytest.mark.gpu
def test_gpu_outputs_only_kernel_returns_a_torch_cuda_tensor():
    cuda_torch()
    source = """
    extern "C" __global__ void iota(float* out, int n) {
      int i = blockIdx.x * blockDim.x + threadIdx.x;
      if (i < n) out[i] = (float)i;
    }
    """
    program = tilejit.Program(
        "iota_cuda", source,
        params=[tilejit.Scalar("n", "int32"), tilejit.Tensor("out", "float32", ["n"])],
        launches=[tilejit.Launch("iota", grid=["ceildiv(n, 128)"], block=[128])], out_idx=[1])
    kernel = tilejit.compile(program)
    out = kernel(1000)
    assert isinstance(out, torch.Tensor)
    assert out.device == torch.device("cuda", torch.cuda.current_device())
    torch.testing.assert_close(out, torch.arange(1000, dtype=torch.float32, device="cuda"))
    if torch.cuda.device_count() > 1:  # the current device, not device 0
        with torch.cuda.device(1):
            out = kernel(77)
        assert out.device == torch.device("cuda", 1)
        torch.testing.assert_close(out, torch.arange(77, dtype=torch.float32, device="cuda:1"))


@pytest.mark.gpu
def test_gpu_one_variant_per_device_architecture(cuda_add):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices")
    for index in range(torch.cuda.device_count()):
        a = torch.randn(333, device=f"cuda:{index}")
        c = torch.ops.tilejit_gpu.add(a, a)
        assert c.device == a.device
        torch.testing.assert_close(c, 2 * a)
