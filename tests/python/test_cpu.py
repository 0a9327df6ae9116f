"""Kernels on the CPU backend, called with numpy arrays: every output element is checked
against a numpy reference, on random data and odd sizes."""

import numpy as np
import pytest

import tilejit
from conftest import EXAMPLES, vector_add_program


@pytest.fixture(scope="module")
def vector_add():
    return tilejit.compile(vector_add_program(), out_idx=[-1])


@pytest.mark.parametrize("n", [1, 7, 1000, 4099])
def test_vector_add_out_idx_returns_numpy(vector_add, rng, n):
    a = rng.standard_normal(n, dtype=np.float32)
    b = rng.standard_normal(n, dtype=np.float32)
    c = vector_add(a, b)
    assert isinstance(c, np.ndarray)
    assert c.dtype == np.float32 and c.shape == (n,)
    np.testing.assert_array_equal(c, a + b)


def test_vector_add_into_caller_output(rng):
    kernel = tilejit.compile(vector_add_program(), out_idx=[])
    a = rng.standard_normal(333, dtype=np.float32)
    b = rng.standard_normal(333, dtype=np.float32)
    c = np.full(333, np.nan, dtype=np.float32)
    assert kernel(a, b, c) is None
    np.testing.assert_array_equal(c, a + b)


def test_out_idx_forms_agree(rng):
    a = rng.standard_normal(65, dtype=np.float32)
    b = rng.standard_normal(65, dtype=np.float32)
    for out_idx in (2, [2], -1, [-1]):
        kernel = tilejit.compile(vector_add_program(), out_idx=out_idx)
        assert kernel.out_idx == [2]
        np.testing.assert_array_equal(kernel(a, b), a + b)


@pytest.mark.parametrize("m", [1, 5, 64, 131])
def test_matmul_with_symbolic_m(rng, m):
    kernel = tilejit.compile(tilejit.Program.load(EXAMPLES / "matmul.json"))
    a = rng.standard_normal((m, 48), dtype=np.float32)
    b = rng.standard_normal((48, 40), dtype=np.float32)
    c = kernel(a, b)
    assert c.shape == (m, 40)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)


def test_strided_input_and_float_scalar(rng):
    kernel = tilejit.compile(tilejit.Program.load(EXAMPLES / "strided_scale.json"))
    wide = rng.standard_normal((9, 31), dtype=np.float32)
    x = wide[:, 3:20]  # rows 31 elements apart
    for alpha in (2.5, np.float32(-0.75), 3):  # a float, a numpy float, an int
        y = kernel(x, alpha)
        np.testing.assert_allclose(y, np.float32(alpha) * x, rtol=1e-6)


def test_several_outputs_come_back_as_a_list(rng):
    kernel = tilejit.compile(tilejit.Program.load(EXAMPLES / "two_pass.json"))
    x = rng.standard_normal(257, dtype=np.float32)
    t, y = kernel(x)
    np.testing.assert_allclose(t, x * x, rtol=1e-6)
    np.testing.assert_allclose(y, x * x + x, rtol=1e-6)


def test_numpy_integer_scalars():
    source = """
    void fill(int* out, int value, int n) { for (int i = 0; i < n; ++i) out[i] = value; }
    """
    program = tilejit.Program(
        "fill", source, params=[tilejit.Tensor("out", "int32", ["n"]), tilejit.Scalar("value", "int32")],
        launches=[tilejit.Launch("fill")], language="c")
    kernel = tilejit.compile(program)
    out = np.zeros(19, dtype=np.int32)
    kernel(out, np.int64(-42))
    np.testing.assert_array_equal(out, np.full(19, -42, dtype=np.int32))
    kernel(out, True)
    np.testing.assert_array_equal(out, np.ones(19, dtype=np.int32))


def test_integer_scalars_across_digit_boundaries(rng):
    # Python ints of one internal digit are read in place, others through the general
    # conversion: values on both sides of the 15- and 30-bit digit limits, zeros computed from
    # large ints, int subclasses and random values must all arrive unchanged, and an int64
    # that does not fit is refused.
    source = """
    #include <stdint.h>
    void put(int64_t* out, int64_t v, int32_t w) { out[0] = v; out[1] = w; }
    """
    program = tilejit.Program(
        "put", source,
        params=[tilejit.Tensor("out", "int64", [2]), tilejit.Scalar("v", "int64"),
                tilejit.Scalar("w", "int32")],
        launches=[tilejit.Launch("put")], language="c")
    put = tilejit.compile(program)

    class Int(int):
        pass

    big = 3**40
    values = [0, 1, -1, 2**15 - 1, 2**15, 2**30 - 1, 2**30, -(2**30) + 1, -(2**30), 2**31 - 1,
              -(2**31), 2**62 + 12345, -(2**63), 2**63 - 1, big - big, Int(-7), Int(2**40)]
    values += [int(x) for x in rng.integers(-(2**63), 2**63 - 1, size=20, dtype=np.int64)]
    values += [int(x) for x in rng.integers(-(2**31), 2**31 - 1, size=20)]
    out = np.zeros(2, np.int64)
    for v in values:
        w = max(-(2**31), min(2**31 - 1, v))
        put(out, v, w)
        assert out.tolist() == [v, w], v
    for bad in (2**63, -(2**63) - 1, 2**100):
        with pytest.raises(tilejit.ArgumentError, match="'v'"):
            put(out, bad, 0)
    with pytest.raises(tilejit.ArgumentError, match="'w'"):
        put(out, 0, 2**31)


def test_kernel_metadata_and_sources(vector_add):
    assert vector_add.backend == "cpu"
    assert [p.name for p in vector_add.params] == ["A", "B", "C"]
    assert vector_add.program.name == "vector_add"
    assert "C[i] = A[i] + B[i]" in vector_add.get_device_source()
    assert vector_add.get_kernel_source(kernel_only=True) == vector_add.get_device_source()
    host = vector_add.get_host_source()
    assert "call" in host
    assert host in vector_add.get_kernel_source()
    assert len(vector_add.cache_key) >= 32


def test_compile_is_memoized(vector_add):
    again = tilejit.compile(vector_add_program(), out_idx=[-1])
    assert again.cache_key == vector_add.cache_key


def test_kernel_cannot_be_made_directly():
    with pytest.raises(TypeError):
        tilejit.Kernel()


def test_kernel_calls_are_vectorcalls(vector_add):
    # Py_TPFLAGS_HAVE_VECTORCALL: a call goes straight to C++ with no argument tuple (on
    # Python < 3.12 tilejit sets it on the subclass itself).
    assert type(vector_add).__flags__ & (1 << 11)


def test_a_subclass_that_overrides_call_keeps_its_call(rng):
    from tilejit import _core

    seen = []

    class Counting(tilejit.Kernel):
        __slots__ = ()

        def __call__(self, *args, **kwargs):
            seen.append(len(args))
            return super().__call__(*args, **kwargs)

    kernel = _core.compile(Counting, vector_add_program(), out_idx=[-1])
    a = rng.standard_normal(77, dtype=np.float32)
    b = rng.standard_normal(77, dtype=np.float32)
    np.testing.assert_array_equal(kernel(a, b), a + b)
    np.testing.assert_array_equal(kernel(a, b, stream=None), a + b)
    assert seen == [2, 2]
    assert not type(kernel).__flags__ & (1 << 11)


def test_export_is_callable_without_tilejit(rng, tmp_path):
    import ctypes

    kernel = tilejit.compile(tilejit.Program.load(EXAMPLES / "matmul.json"))
    kernel.export(tmp_path)
    assert (tmp_path / "matmul.h").is_file()
    library = ctypes.CDLL(str(tmp_path / "libmatmul.so"))
    library.call.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64]
    assert library.init() == 0
    a = rng.standard_normal((13, 48), dtype=np.float32)
    b = rng.standard_normal((48, 40), dtype=np.float32)
    c = np.zeros((13, 40), np.float32)
    assert library.call(a.ctypes.data, b.ctypes.data, c.ctypes.data, 13) == 0
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
