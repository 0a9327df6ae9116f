"""@tilejit.jit lazy and eager modes, JITImpl helpers, par_compile."""

import numpy as np
import pytest

import tilejit
from conftest import VECTOR_ADD_C, vector_add_program

SCALE_C = """
void scale_{tag}(const float* X, float* Y, int n) {{
  for (int i = 0; i < n; ++i) Y[i] = {factor} * X[i];
}}
"""


def scale_program(factor, tag=None):
    tag = tag or str(factor).replace(".", "_").replace("-", "m")
    return tilejit.Program(
        f"scale_{tag}", SCALE_C.format(tag=tag, factor=f"{float(factor)}f"),
        params=[tilejit.Tensor("X", "float32", ["n"]), tilejit.Tensor("Y", "float32", ["n"])],
        launches=[tilejit.Launch(f"scale_{tag}")], language="c")


def test_lazy_mode_returns_a_memoized_kernel(rng):
    built = []

    @tilejit.jit(out_idx=[-1])
    def scale(factor):
        built.append(factor)
        return scale_program(factor)

    k2 = scale(2)
    assert isinstance(k2, tilejit.Kernel)
    assert scale(2) is k2
    assert scale(factor=2) is not None
    k3 = scale(3)
    assert k3 is not k2
    assert built == [2, 2, 3]  # the keyword call is its own key
    assert scale(2) is k2 and built == [2, 2, 3]
    x = rng.standard_normal(101, dtype=np.float32)
    np.testing.assert_array_equal(k2(x), np.float32(2) * x)
    np.testing.assert_array_equal(k3(x), np.float32(3) * x)
    assert scale.mode == "auto"  # no annotations: each call decides (test_seed_compat.py)
    assert scale.parse_cache_key(2) == k2.cache_key
    assert "2.0f * X[i]" in scale.get_kernel_source(2)
    assert scale.__name__ == "scale" and "def scale" in scale.func_source


def test_a_memo_hit_is_answered_without_the_python_call_path(monkeypatch):
    slow_calls = []
    original = tilejit.JITImpl._call_slow

    def counting(self, *args, **kwargs):
        slow_calls.append((args, kwargs))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(tilejit.JITImpl, "_call_slow", counting)

    @tilejit.jit(out_idx=[-1])
    def scale(factor, tag=None):
        return scale_program(factor, tag)

    k = scale(1.5, "memo_c")
    assert slow_calls == [((1.5, "memo_c"), {})]
    assert scale(1.5, "memo_c") is k and len(slow_calls) == 1  # JitBase answered it
    assert scale(1.5, tag="memo_c") is not None and len(slow_calls) == 2  # keywords: slow path
    assert scale(1.5, tag="memo_c") is scale(1.5, tag="memo_c") and len(slow_calls) == 4
    assert scale._kernels[(1.5, "memo_c")] is k
    # Python 3.11 does not pass the vectorcall flag on to subclasses by itself.
    assert type(scale).__flags__ & (1 << 11)


def test_memo_keys_that_cannot_hash_are_named_and_other_hash_errors_propagate():
    @tilejit.jit(out_idx=[-1])
    def scale(factor):
        return scale_program(2.0, "memo_hash")

    with pytest.raises(tilejit.ArgumentError, match="must be hashable"):
        scale([2])  # a list: TypeError in the lookup, then the slow path's named error

    class BrokenHash:
        def __hash__(self):
            raise ValueError("hash failed on purpose")

    with pytest.raises(ValueError, match="hash failed on purpose"):
        scale(BrokenHash())


def test_lazy_mode_rejects_a_function_that_returns_no_program():
    @tilejit.jit
    def nothing(n):
        return n

    with pytest.raises(tilejit.ProgramError) as info:
        nothing(4)
    assert "nothing" in str(info.value)


def test_eager_mode_compiles_per_dtype_and_shape_and_runs(rng):
    built = []

    @tilejit.jit
    def add(A, B, C):
        built.append(A.shape)
        return vector_add_program()

    for n in (17, 17, 33):
        a = rng.standard_normal(n, dtype=np.float32)
        b = rng.standard_normal(n, dtype=np.float32)
        c = np.zeros(n, np.float32)
        assert add(a, b, c) is None
        np.testing.assert_array_equal(c, a + b)
    assert add.mode == "auto"
    assert built == [(17,), (33,)]


def test_eager_mode_with_out_idx_returns_the_outputs(rng):
    @tilejit.jit
    def add(A, B):
        return vector_add_program(out_idx=[-1])

    a = rng.standard_normal(40, dtype=np.float32)
    b = rng.standard_normal(40, dtype=np.float32)
    np.testing.assert_array_equal(add(a, b), a + b)


def test_eager_mode_names_a_missing_argument():
    @tilejit.jit
    def add(A, Bee, C):
        return vector_add_program()

    x = np.zeros(4, np.float32)
    with pytest.raises(tilejit.ArgumentError) as info:
        add(x, x, x)
    assert "'B'" in str(info.value)


def test_jit_par_compile_memoizes_every_config(rng):
    built = []

    @tilejit.jit(out_idx=-1)
    def scale(factor):
        built.append(factor)
        return scale_program(factor)

    kernels = scale.par_compile([(5,), {"factor": 6}, (7,)], num_workers=2)
    assert all(isinstance(k, tilejit.Kernel) for k in kernels)
    assert scale(5) is kernels[0] and scale(factor=6) is kernels[1] and scale(7) is kernels[2]
    assert sorted(built) == [5, 6, 7]
    x = rng.standard_normal(9, dtype=np.float32)
    for factor, kernel in zip((5, 6, 7), kernels):
        np.testing.assert_array_equal(kernel(x), np.float32(factor) * x)


def broken_program(name):
    return tilejit.Program(
        name, f"void {name}(const float* X, float* Y, int n) {{ Y[0] = ; }}",
        params=[tilejit.Tensor("X", "float32", ["n"]), tilejit.Tensor("Y", "float32", ["n"])],
        launches=[tilejit.Launch(name)], language="c")


def test_par_compile_results_in_order_and_ignore_error(rng, caplog):
    programs = [scale_program(1.5), broken_program("broken_a"), scale_program(-2)]
    kernels = tilejit.par_compile(programs, out_idx=[-1], num_workers=3, ignore_error=True)
    assert kernels[1] is None
    assert "broken_a" in caplog.text
    x = rng.standard_normal(50, dtype=np.float32)
    np.testing.assert_array_equal(kernels[0](x), np.float32(1.5) * x)
    np.testing.assert_array_equal(kernels[2](x), np.float32(-2) * x)


def test_par_compile_raises_the_first_error():
    programs = [scale_program(4), broken_program("broken_b")]
    with pytest.raises(tilejit.CompileError) as info:
        tilejit.par_compile(programs, out_idx=[-1])
    assert "error" in info.value.log


def test_par_compile_of_nothing():
    assert tilejit.par_compile([]) == []


def test_debug_root_path_receives_the_sources(tmp_path):
    @tilejit.jit(out_idx=[-1], debug_root_path=str(tmp_path))
    def add():
        return vector_add_program()

    add()
    written = sorted(p.name for p in tmp_path.iterdir())
    assert any(name.endswith(".device.txt") for name in written)
    device = next(p for p in tmp_path.iterdir() if p.name.endswith(".device.txt")).read_text()
    assert "A[i] + B[i]" in device and VECTOR_ADD_C.strip() in device
