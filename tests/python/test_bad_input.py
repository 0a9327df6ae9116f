"""The bad-input matrix from Python: each case raises the right tilejit.Error subclass with a
message that names the parameter, and nothing runs (the caller's output stays untouched)."""

import numpy as np
import pytest

import tilejit
from conftest import EXAMPLES, vector_add_program

SENTINEL = np.float32(-7.0)


@pytest.fixture(scope="module")
def kernel():
    # Outputs passed by the caller, so that a test sees whether anything was written.
    return tilejit.compile(vector_add_program(), out_idx=[])


def arrays(n=8):
    return (np.ones(n, np.float32), np.full(n, 2, np.float32), np.full(n, SENTINEL, np.float32))


def check(kernel, args, fragments, error=tilejit.ArgumentError, **kwargs):
    outputs = [a for a in args if isinstance(a, np.ndarray)]
    before = [o.copy() for o in outputs]
    with pytest.raises(error) as info:
        kernel(*args, **kwargs)
    assert type(info.value) is error
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    for o, b in zip(outputs, before):
        np.testing.assert_array_equal(o, b)  # nothing ran


def test_wrong_dtype(kernel):
    a, b, c = arrays()
    check(kernel, (a, b.astype(np.float64), c), ["'B'", "float32", "float64"])


def test_wrong_ndim(kernel):
    a, b, c = arrays()
    check(kernel, (a, b.reshape(2, 4), c), ["'B'"])


def test_conflicting_symbol(kernel):
    a, _, c = arrays()
    check(kernel, (a, np.ones(9, np.float32), c), ["'B'", "8", "9"])


def test_non_compact_where_compact_is_declared(kernel):
    a, _, c = arrays()
    check(kernel, (a, np.ones(16, np.float32)[::2], c), ["'B'"])


def test_wrong_argument_count(kernel):
    a, b, _ = arrays()
    check(kernel, (a, b), ["A, B, C", "got 2"])


def test_scalar_where_a_tensor_belongs(kernel):
    a, _, c = arrays()
    check(kernel, (a, 3, c), ["'B'", "tensor"])


def test_object_that_is_no_tensor(kernel):
    a, _, c = arrays()
    check(kernel, (a, "B", c), ["'B'", "str"])


def test_unknown_keyword(kernel):
    a, b, c = arrays()
    check(kernel, (a, b, c), ["'device'"], device=0)


def test_bad_stream_object(kernel):
    a, b, c = arrays()
    check(kernel, (a, b, c), ["stream"], stream="default")


def test_scalar_out_of_range():
    scale = tilejit.compile(tilejit.Program.load(EXAMPLES / "strided_scale.json"))
    x = np.ones((2, 3), np.float32)
    check(scale, (x, 1e39), ["'alpha'", "float32"])
    check(scale, (x, 2**70), ["'alpha'"])


def test_integer_scalar_range_and_kind():
    source = "void fill(signed char* out, signed char value, int n) { for (int i = 0; i < n; ++i) out[i] = value; }"
    program = tilejit.Program(
        "fill", source, params=[tilejit.Tensor("out", "int8", ["n"]), tilejit.Scalar("value", "int8")],
        launches=[tilejit.Launch("fill")], language="c")
    fill = tilejit.compile(program)
    out = np.zeros(4, np.int8)
    check(fill, (out, 200), ["'value'", "200", "int8"])
    check(fill, (out, 2.5), ["'value'"])


def test_compile_error_carries_the_log():
    broken = vector_add_program(source="void vector_add(const float* A, const float* B, float* C, int n) { C[0] = ; }")
    with pytest.raises(tilejit.CompileError) as info:
        tilejit.compile(broken, out_idx=[-1])
    error = info.value
    assert "error" in error.log
    assert isinstance(error.options, list)
    assert error.source_name
    assert isinstance(error, tilejit.Error)


def test_unknown_kernel_name_is_a_program_error():
    program = tilejit.Program(
        "missing", "void present(float* A, int n) {}",
        params=[tilejit.Tensor("A", "float32", ["n"])], launches=[tilejit.Launch("absent")],
        language="c")
    with pytest.raises(tilejit.ProgramError) as info:
        tilejit.compile(program)
    assert "absent" in str(info.value)


def test_unknown_backend_is_an_argument_error():
    with pytest.raises(tilejit.ArgumentError) as info:
        tilejit.compile(vector_add_program(), execution_backend="tpu")
    assert "tpu" in str(info.value)


def test_compile_rejects_non_programs():
    with pytest.raises(TypeError):
        tilejit.compile("vector_add")


def test_benchmark_without_torch_or_cuda_says_why(kernel):
    a, b, c = arrays()
    try:
        import torch
        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present; tests/python/test_gpu.py covers benchmark()")
    except ImportError:
        pass
    with pytest.raises(tilejit.NotAvailableError) as info:
        kernel.benchmark(a, b, c)
    assert "CUDA" in str(info.value) or "torch" in str(info.value)


def test_read_only_array_where_the_kernel_writes(kernel):
    # numpy exports a non-writeable array with DLPack's READ_ONLY flag; C is `float* C`.
    a, b, c = arrays(11)
    c.setflags(write=False)
    check(kernel, (a, b, c), ["argument 'C'", "read-only", "'float*'"])


def test_read_only_arrays_where_the_kernel_only_reads(kernel):
    # A and B are `const float*`: read-only inputs are fine, and the result is right.
    rng = np.random.default_rng(5)
    a = rng.standard_normal(13).astype(np.float32)
    b = rng.standard_normal(13).astype(np.float32)
    c = np.full(13, SENTINEL, np.float32)
    a.setflags(write=False)
    b.setflags(write=False)
    kernel(a, b, c)
    np.testing.assert_array_equal(c, a + b)


def test_long_flat_shape_expression_is_a_program_error_not_a_crash():
    # 50,000 terms used to overflow the stack (SIGSEGV) when the variables were collected.
    with pytest.raises(tilejit.ProgramError, match="nested deeper than 1000 levels"):
        tilejit.Tensor("C", "float32", ["n" + " + n - n" * 25000])
