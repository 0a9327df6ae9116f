"""Struct scalars passed by value (tilejit.Struct): from a tuple or list in field order, a dict
by field name, a ctypes.Structure with the same fields, or a complex for a struct of two float
fields; every wrong value is an ArgumentError naming the argument and the field. The CPU parts
run in CI; the launch on a GPU is marked gpu."""

import ctypes
import json

import numpy as np
import pytest

import tilejit
from conftest import cuda_torch

SOURCE_C = """
#include <stdbool.h>
#include <stdint.h>
struct Odd { char c; double d; short s; };
typedef struct {
  int n;
  float alpha;
  double beta;
  float v[3];
  unsigned char flag;
  bool on;
  uint64_t big;
} Params;
typedef struct { double re, im; } Cplx;
void unpack(struct Odd o, Params p, Cplx z, double* out) {
  out[0] = o.c; out[1] = o.d; out[2] = o.s;
  out[3] = p.n; out[4] = p.alpha; out[5] = p.beta;
  out[6] = p.v[0]; out[7] = p.v[1]; out[8] = p.v[2];
  out[9] = p.flag; out[10] = p.on; out[11] = (double)p.big;
  out[12] = z.re; out[13] = z.im;
}
"""

ODD = [("c", "int8"), ("d", "float64"), ("s", "int16")]
PARAMS = [("n", "int32"), ("alpha", "float32"), ("beta", "float64"), ("v", "float32", 3),
          ("flag", "uint8"), ("on", "bool"), ("big", "uint64")]
CPLX = [("re", "float64"), ("im", "float64")]


class OddStruct(ctypes.Structure):
    _fields_ = [("c", ctypes.c_int8), ("d", ctypes.c_double), ("s", ctypes.c_int16)]


def program():
    return tilejit.Program(
        "unpack", SOURCE_C,
        params=[tilejit.Struct("o", ODD), tilejit.Struct("p", PARAMS), tilejit.Struct("z", CPLX),
                tilejit.Tensor("out", "float64", [14])],
        launches=[tilejit.Launch("unpack")], language="c")


@pytest.fixture(scope="module")
def kernel():
    return tilejit.compile(program(), out_idx=[-1])


def random_values(rng):
    o = (int(rng.integers(-128, 128)), float(rng.standard_normal() * 1e3),
         int(rng.integers(-32768, 32768)))
    p = {"n": int(rng.integers(-2**31, 2**31)), "alpha": float(np.float32(rng.standard_normal())),
         "beta": float(rng.standard_normal()), "v": [float(np.float32(x)) for x in rng.random(3)],
         "flag": int(rng.integers(0, 256)), "on": bool(rng.integers(0, 2)),
         "big": int(rng.integers(0, 2**53))}
    z = complex(rng.standard_normal(), rng.standard_normal())
    return o, p, z


def expected(o, p, z):
    return [o[0], o[1], o[2], p["n"], p["alpha"], p["beta"], *p["v"], p["flag"], p["on"],
            p["big"], z.real, z.imag]


def test_the_description_is_part_of_the_program():
    p = program().params[1]
    assert p.is_struct() and p.is_scalar() and p.dtype == "struct"
    assert p.fields[3] == ("v", "float32", 3)
    assert p.struct_size == 40  # 4 + 4 + 8 + 12 + 1 + 1, 2 bytes of padding, then 8
    assert repr(program().params[0]) == "Struct('o', [('c', 'int8'), ('d', 'float64'), ('s', 'int16')])"
    document = json.loads(program().to_json())
    assert document["params"][1]["fields"][3] == {"name": "v", "dtype": "float32", "count": 3}
    assert tilejit.Program.from_json(program().to_json()) == program()
    assert tilejit.Scalar("a", "int32").fields == [] and tilejit.Scalar("a", "int32").struct_size == 0


def test_every_form_of_value_reaches_the_kernel(kernel, rng):
    for _ in range(5):
        o, p, z = random_values(rng)
        want = expected(o, p, z)
        as_tuple = tuple(p[name] for name, *_ in PARAMS)
        np.testing.assert_array_equal(kernel(o, p, z), want)
        np.testing.assert_array_equal(kernel(list(o), as_tuple, (z.real, z.imag)), want)
        np.testing.assert_array_equal(
            kernel(OddStruct(*o), p, {"re": z.real, "im": z.imag}), want)
        # numpy scalars and arrays for the array field
        numpy_p = dict(p, n=np.int32(p["n"]), v=np.array(p["v"], dtype=np.float32))
        np.testing.assert_array_equal(kernel(o, numpy_p, z), want)


def test_padding_is_zeroed_and_a_ctypes_array_fills_an_array_field(kernel, rng):
    class ParamsStruct(ctypes.Structure):
        _fields_ = [("n", ctypes.c_int32), ("alpha", ctypes.c_float), ("beta", ctypes.c_double),
                    ("v", ctypes.c_float * 3), ("flag", ctypes.c_uint8), ("on", ctypes.c_bool),
                    ("big", ctypes.c_uint64)]
    o, p, z = random_values(rng)
    value = ParamsStruct(p["n"], p["alpha"], p["beta"], (ctypes.c_float * 3)(*p["v"]), p["flag"],
                         p["on"], p["big"])
    np.testing.assert_array_equal(kernel(o, value, z), expected(o, p, z))


def failure(kernel, *args):
    with pytest.raises(tilejit.ArgumentError) as info:
        kernel(*args)
    return str(info.value)


def test_wrong_values_name_the_argument_and_the_field(kernel, rng):
    o, p, z = random_values(rng)
    m = failure(kernel, o, {k: v for k, v in p.items() if k != "beta"}, z)
    assert "argument 'p' (#1)" in m and "no field 'beta'" in m
    m = failure(kernel, o, dict(p, gamma=1.0), z)
    assert "'gamma'" in m and "not a field" in m
    m = failure(kernel, o[:2], p, z)
    assert "argument 'o' (#0)" in m and "expected 3 values" in m and "(c, d, s)" in m
    m = failure(kernel, (200, 1.0, 2), p, z)
    assert "field 'c'" in m and "200 is out of range for int8 [-128, 127]" in m
    m = failure(kernel, o, dict(p, alpha="fast"), z)
    assert "field 'alpha'" in m and "expected a number (float32), got str" in m
    m = failure(kernel, o, dict(p, alpha=1e39), z)
    assert "field 'alpha'" in m and "out of range for float32" in m
    m = failure(kernel, o, dict(p, n=1.5), z)
    assert "field 'n'" in m and "expected an integer (int32), got float" in m
    m = failure(kernel, o, dict(p, v=[1.0, 2.0]), z)
    assert "field 'v'" in m and "expected 3 values, got 2" in m
    m = failure(kernel, o, dict(p, flag=-1), z)
    assert "field 'flag'" in m and "-1 is out of range for uint8 [0, 255]" in m
    m = failure(kernel, o, dict(p, big=2**64), z)
    assert "field 'big'" in m and "out of range for uint64" in m
    m = failure(kernel, o, dict(p, on=2), z)
    assert "field 'on'" in m and "out of range for bool" in m
    m = failure(kernel, 1j, p, z)
    assert "argument 'o'" in m and "a complex fills a struct of two float32 or two float64" in m
    m = failure(kernel, o, p, "z")
    assert "argument 'z' (#2)" in m and "a tuple or list" in m and "or a complex" in m

    class Swapped(ctypes.Structure):
        _fields_ = [("d", ctypes.c_double), ("c", ctypes.c_int8), ("s", ctypes.c_int16)]
    m = failure(kernel, Swapped(), p, z)
    assert "has the fields (d, c, s): expected (c, d, s)" in m


def test_bad_descriptions_are_program_errors():
    with pytest.raises(tilejit.ProgramError, match=r"\('h'\) has dtype float16"):
        tilejit.Program("s", "void k(struct S s) {}", params=[tilejit.Struct("s", [("h", "float16")])],
                        launches=[tilejit.Launch("k")], language="c")
    with pytest.raises(tilejit.ProgramError, match="count must be an int"):
        tilejit.Struct("s", [("v", "float32", "3")])
    with pytest.raises(tilejit.ProgramError, match=r"expected \(name, dtype\)"):
        tilejit.Struct("s", ["v"])


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["nvrtc", "nvcc"])
def test_structs_by_value_on_the_gpu(backend, rng):
    torch = cuda_torch()
    source = """
struct Odd { char c; double d; short s; float v[3]; };
extern "C" __global__ void mix(float2 z, const Odd o, const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = z.x * x[i] + z.y + (float)o.c + (float)o.d + (float)o.s + o.v[i % 3];
}"""
    program = tilejit.Program(
        "mix", source,
        params=[tilejit.Struct("z", [("re", "float32"), ("im", "float32")]),
                tilejit.Struct("o", [("c", "int8"), ("d", "float64"), ("s", "int16"),
                                     ("v", "float32", 3)]),
                tilejit.Tensor("x", "float32", ["n"]), tilejit.Tensor("y", "float32", ["n"])],
        launches=[tilejit.Launch("mix", grid=["ceildiv(n, 128)"], block=[128])])
    try:
        kernel = tilejit.compile(program, out_idx=[-1], execution_backend=backend)
    except tilejit.NotAvailableError as e:
        pytest.skip(str(e))
    for _ in range(3):
        z = complex(np.float32(rng.standard_normal()), np.float32(rng.standard_normal()))
        o = {"c": int(rng.integers(-128, 128)), "d": float(rng.standard_normal() * 10),
             "s": int(rng.integers(-32768, 32768)), "v": [float(x) for x in rng.random(3)]}
        x = torch.rand(1000, device="cuda")
        v = torch.tensor(o["v"], dtype=torch.float32, device="cuda").repeat(334)[:1000]
        want = (z.real * x + z.imag + float(o["c"]) + float(np.float32(o["d"])) + float(o["s"])
                + v)
        torch.testing.assert_close(kernel(z, o, x), want)
