"""The Program model from Python: construction, JSON round trip, params, malformed input."""

import pytest

import tilejit
from conftest import EXAMPLES, vector_add_program


def test_construction_reads_back():
    p = tilejit.Program(
        "scale", "void scale(float* X, float a, int n) {}",
        params=[tilejit.Tensor("X", "float16", ["M", "ceildiv(N, 2)"], strides=["ldx", 1]),
                tilejit.Tensor("Y", "float16", ["N"]),
                tilejit.Scalar("a", "float32")],
        launches=[tilejit.Launch("scale", grid=["ceildiv(M, 128)", 4], block=[128],
                                 dynamic_smem="M * 4", cluster=(2, 1, 1), pdl=True,
                                 args=["X", "a", "M"])],
        language="c", defines={"TILE": "4"}, out_idx=1, compile_flags=["-O2"])
    x, _, a = p.params
    assert (x.name, x.dtype, x.shape, x.strides) == ("X", "float16", ["M", "ceildiv(N, 2)"], ["ldx", 1])
    assert not x.is_scalar() and a.is_scalar() and a.shape == []
    launch = p.launches[0]
    assert launch.grid == ["ceildiv(M, 128)", 4, 1]
    assert launch.block == [128, 1, 1]
    assert launch.dynamic_smem == "M * 4"
    assert tuple(launch.cluster) == (2, 1, 1)
    assert launch.pdl and not launch.cooperative
    assert launch.args == ["X", "a", "M"]
    assert p.language == "c" and p.defines == {"TILE": "4"} and p.out_idx == [1]
    assert set(p.shape_variables()) == {"M", "N", "ldx"}


def test_json_round_trip_is_identity():
    p = vector_add_program(out_idx=[-1])
    text = p.to_json()
    q = tilejit.Program.from_json(text)
    assert q == p
    assert q.to_json() == text


def test_load_example():
    p = tilejit.Program.load(EXAMPLES / "matmul.json")
    assert p.name == "matmul"
    assert [param.name for param in p.params] == ["A", "B", "C"]
    assert p.params[0].shape == ["M", 48]


@pytest.mark.parametrize("dtype, unsigned, float8, float4, boolean", [
    ("uint8", True, False, False, False),
    ("int32", False, False, False, False),
    ("float8_e4m3", False, True, False, False),
    ("float8_e5m2", False, True, False, False),
    ("float4_e2m1", False, False, True, False),
    ("bool", False, False, False, True),
])
def test_kernel_param_predicates(dtype, unsigned, float8, float4, boolean):
    param = tilejit.Tensor("X", dtype, [8])
    assert (param.is_unsigned(), param.is_float8(), param.is_float4(), param.is_boolean()) == \
        (unsigned, float8, float4, boolean)


def test_torch_dtype():
    try:
        import torch
    except ImportError:
        with pytest.raises(ImportError):
            tilejit.Tensor("X", "float32", [8]).torch_dtype()
    else:
        assert tilejit.Tensor("X", "bfloat16", [8]).torch_dtype() is torch.bfloat16
        assert tilejit.Tensor("X", "float8_e4m3", [8]).torch_dtype() is torch.float8_e4m3fn


@pytest.mark.parametrize("build, fragment", [
    (lambda: tilejit.Tensor("X", "float32", ["ceildiv(M, "]), "X"),
    (lambda: tilejit.Tensor("X", "float33", [4]), "float33"),
    (lambda: tilejit.Tensor("X", "float32", [4.5]), "X"),
    (lambda: tilejit.Launch("k", grid=["M +* 2"]), "grid"),
    (lambda: tilejit.Program.from_json('{"format": "tilejit.program/1", '), ""),
    (lambda: tilejit.Program.from_json('{"format": "tilejit.program/9"}'), ""),
    (lambda: tilejit.TmaDescriptor("d", "X", kind="tiles"), "tiles"),
    (lambda: tilejit.Program("p", "", params=[tilejit.Tensor("A", "float32", ["n"]),
                                              tilejit.Tensor("A", "float32", ["n"])],
                             launches=[tilejit.Launch("p")], language="c"), "A"),
])
def test_malformed_programs_raise_program_error(build, fragment):
    with pytest.raises(tilejit.ProgramError) as info:
        build()
    assert fragment in str(info.value)
    assert isinstance(info.value, tilejit.Error)
