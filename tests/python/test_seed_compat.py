"""The seed's API as a TileLang user writes it (docs/seed-compat.md): execution_backend names,
target_host, parse_cache_key, @jit's mode, KernelParam.dtype, from_database, par_compile's
workers and debug_root_path, handle scalars."""

import ctypes
import os
import subprocess
import sys
from typing import Optional

import numpy as np
import pytest

import tilejit
from conftest import cuda_torch, vector_add_program

SCALE_C = """
void scale_{tag}(const float* X, float* Y, int n) {{
  for (int i = 0; i < n; ++i) Y[i] = {factor}f * X[i];
}}
"""


def scale_program(factor):
    tag = str(factor).replace(".", "_").replace("-", "m")
    return tilejit.Program(
        f"scale_{tag}", SCALE_C.format(tag=tag, factor=float(factor)),
        params=[tilejit.Tensor("X", "float32", ["n"]), tilejit.Tensor("Y", "float32", ["n"])],
        launches=[tilejit.Launch(f"scale_{tag}")], language="c", out_idx=[-1])


# --- execution_backend: the seed's names -------------------------------------------------

@pytest.mark.parametrize("name", ["tvm_ffi", "cython", "dlpack"])
def test_seed_host_wrapper_backends_map_to_the_host_wrapper_backend(name, rng):
    kernel = tilejit.compile(vector_add_program(out_idx=[-1]), execution_backend=name)
    assert kernel.backend == "cpu"  # a C Program's host-wrapper backend
    a, b = (rng.standard_normal(37, dtype=np.float32) for _ in range(2))
    np.testing.assert_array_equal(kernel(a, b), a + b)
    # The same binary as the native name: the same cache entry.
    assert kernel.cache_key == tilejit.compile(vector_add_program(out_idx=[-1]),
                                               execution_backend="cpu").cache_key


def test_seed_auto_backend_is_accepted():
    assert tilejit.compile(vector_add_program(), execution_backend="auto").backend == "cpu"


@pytest.mark.parametrize("name,words", [("cutedsl", ["CuTe DSL", "nvrtc", "nvcc"]),
                                        ("torch", ["Metal", "cpu"]),
                                        ("triton", ["known", "tvm_ffi"])])
def test_seed_backends_without_a_counterpart_say_what_to_use(name, words):
    with pytest.raises(tilejit.ArgumentError) as info:
        tilejit.compile(vector_add_program(), execution_backend=name)
    message = str(info.value)
    assert f'"{name}"' in message
    for word in words:
        assert word in message


def test_seed_backend_names_from_the_environment(monkeypatch):
    monkeypatch.setenv("TILELANG_EXECUTION_BACKEND", "cython")
    assert tilejit.compile(vector_add_program()).backend == "cpu"


# --- target_host / host_compiler -----------------------------------------------------------

@pytest.mark.parametrize("host", ["llvm", "c"])
def test_target_host_takes_the_seeds_host_targets(host, rng):
    kernel = tilejit.compile(vector_add_program(out_idx=[-1]), target_host=host)
    a, b = (rng.standard_normal(11, dtype=np.float32) for _ in range(2))
    np.testing.assert_array_equal(kernel(a, b), a + b)
    assert kernel.cache_key == tilejit.compile(vector_add_program(out_idx=[-1])).cache_key


def test_target_host_naming_a_compiler_is_refused_with_the_new_option():
    with pytest.raises(tilejit.ArgumentError) as info:
        tilejit.compile(vector_add_program(), target_host="cc")
    assert '"cc"' in str(info.value) and "host_compiler" in str(info.value)


def test_host_compiler_chooses_the_compiler_and_the_key(tmp_path, rng):
    # A wrapper script that records its use, then runs cc.
    log = tmp_path / "used"
    wrapper = tmp_path / "my-cc"
    wrapper.write_text(f'#!/bin/sh\necho used >> "{log}"\nexec cc "$@"\n')
    wrapper.chmod(0o755)
    program = scale_program(3.5)
    plain = tilejit.compile(program)
    kernel = tilejit.compile(program, host_compiler=str(wrapper))
    assert log.exists()
    assert kernel.cache_key != plain.cache_key
    x = rng.standard_normal(29, dtype=np.float32)
    np.testing.assert_array_equal(kernel(x), np.float32(3.5) * x)

    @tilejit.jit(host_compiler=str(wrapper))
    def scaled(factor):
        return scale_program(factor)

    assert scaled(3.5).cache_key == kernel.cache_key


# --- parse_cache_key -----------------------------------------------------------------------

def test_parse_cache_key_is_the_kernels_cache_key():
    @tilejit.jit
    def scaled(factor):
        return scale_program(factor)

    before = scaled.parse_cache_key(1.25)  # before anything is compiled
    assert isinstance(before, str) and len(before) == 64
    kernel = scaled(1.25)
    assert before == kernel.cache_key == scaled.parse_cache_key(1.25)
    assert scaled.parse_cache_key(2.5) != before
    assert tilejit.cache_key(scale_program(1.25)) == before


def test_parse_cache_key_in_eager_mode(rng):
    @tilejit.jit
    def add(A, B, C):
        return vector_add_program()

    x = np.zeros(8, np.float32)
    assert add.parse_cache_key(x, x, x) == tilejit.compile(vector_add_program()).cache_key


# --- @jit's mode ---------------------------------------------------------------------------

def test_mode_is_inferred_from_annotations_before_any_call():
    @tilejit.jit
    def lazy(factor: float):
        return scale_program(factor)

    @tilejit.jit
    def eager(A: np.ndarray, B: np.ndarray, C: np.ndarray):
        return vector_add_program()

    @tilejit.jit
    def eager_postponed(A: "torch.Tensor", B: "torch.Tensor", C: "torch.Tensor"):
        return vector_add_program()

    @tilejit.jit
    def eager_optional(A: Optional[np.ndarray], n: int):
        return vector_add_program()

    @tilejit.jit
    def unannotated(A, B, C):
        return vector_add_program()

    assert lazy.mode == "lazy"
    assert eager.mode == "eager"
    assert eager_postponed.mode == "eager"
    assert eager_optional.mode == "eager"
    assert unannotated.mode == "auto"
    assert tilejit.jit(mode="eager")(lambda factor: None).mode == "eager"


def test_the_first_call_does_not_decide_the_mode(rng):
    @tilejit.jit
    def add(A, B, C):
        return vector_add_program()

    kernel = add(1, 2, 3)  # no tensors: this call is lazy and returns the kernel
    assert isinstance(kernel, tilejit.Kernel)
    a, b = (rng.standard_normal(23, dtype=np.float32) for _ in range(2))
    c = np.zeros(23, np.float32)
    assert add(a, b, c) is None  # tensors: this call runs, whatever came before
    np.testing.assert_array_equal(c, a + b)
    assert add.mode == "auto"


def test_explicit_eager_mode_runs_without_tensor_arguments():
    fill = tilejit.Program(
        "fill_seven", "void fill_seven(int* X, int n) { for (int i = 0; i < n; ++i) X[i] = 7; }",
        params=[tilejit.Tensor("X", "int32", [5]), tilejit.Scalar("n", "int32")],
        launches=[tilejit.Launch("fill_seven")], language="c", out_idx=[0])

    @tilejit.jit(mode="eager")
    def sevens(n):
        return fill

    np.testing.assert_array_equal(sevens(5), np.full(5, 7, np.int32))


# --- KernelParam.dtype ---------------------------------------------------------------------

def dtype_params():
    return tilejit.Program(
        "dtypes", "void dtypes(void) {}",
        params=[tilejit.Tensor("H", "float16", [4]), tilejit.Tensor("B", "bfloat16", [4]),
                tilejit.Tensor("U", "uint8", [4]), tilejit.Scalar("p", "handle"),
                tilejit.Tensor("F", "float8_e4m3", [4])],
        launches=[tilejit.Launch("dtypes", args=[])], language="c").params


def test_kernel_param_dtype_equals_its_name_and_numpy():
    half, brain, byte, handle, _ = (p.dtype for p in dtype_params())
    assert isinstance(half, tilejit.DataType) and isinstance(half, str)
    assert half == "float16" and str(half) == "float16" and {"float16": 1}[half] == 1
    assert half != "float32" and repr(half) == "tilejit.DataType('float16')"
    assert half == np.float16 and half == np.dtype("float16") and np.dtype("float16") == half
    assert half != np.float32 and brain != np.float16 and handle != np.int64
    assert byte == np.uint8 and byte.numpy_dtype() == np.dtype(np.uint8)
    with pytest.raises(tilejit.NotAvailableError):  # (bfloat16 exists once ml_dtypes loads)
        handle.numpy_dtype()


def test_kernel_param_dtype_equals_the_torch_dtype():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    half, brain, byte, handle, fp8 = (p.dtype for p in dtype_params())
    assert half == torch.float16 and torch.float16 == half
    assert half != torch.float32 and torch.float32 != half
    assert brain == torch.bfloat16 and fp8 == torch.float8_e4m3fn
    assert byte == torch.uint8 and byte != torch.int8
    assert half.torch_dtype() is torch.float16
    assert handle == "handle" and handle != torch.int64


def test_kernel_param_tilelang_dtype():
    half, _, _, _, fp8 = dtype_params()
    try:
        import tilelang.language as T
    except ImportError:
        with pytest.raises(tilejit.NotAvailableError, match="TileLang"):
            half.tilelang_dtype()
    else:
        assert half.tilelang_dtype() == T.float16
        assert fp8.dtype.tilelang_dtype() == T.float8_e4m3fn


# --- from_database / Kernel.load -----------------------------------------------------------

def test_kernel_load_from_a_saved_directory_and_a_cache_entry(tmp_path, rng):
    kernel = tilejit.compile(scale_program(-1.5))
    kernel.save(tmp_path / "saved")
    x = rng.standard_normal(31, dtype=np.float32)
    for loaded in (tilejit.Kernel.load(tmp_path / "saved"),
                   tilejit.from_database(str(tmp_path / "saved"))):
        assert isinstance(loaded, tilejit.Kernel)
        np.testing.assert_array_equal(loaded(x), np.float32(-1.5) * x)
        assert loaded.cache_key == "" and loaded.get_host_source() == kernel.get_host_source()
    entry = os.path.join(os.environ["TILELANG_CACHE_DIR"], "v1", kernel.cache_key[:2],
                         kernel.cache_key)
    from_entry = tilejit.Kernel.load(entry)
    assert from_entry.cache_key == kernel.cache_key
    np.testing.assert_array_equal(from_entry(x), np.float32(-1.5) * x)


def test_kernel_load_of_missing_or_corrupted_directories(tmp_path):
    with pytest.raises(tilejit.Error, match="not a directory"):
        tilejit.Kernel.load(tmp_path / "missing")
    kernel = tilejit.compile(scale_program(0.25))
    saved = tmp_path / "saved"
    kernel.save(saved)
    (saved / "program.json").write_text('{"format": "tilejit.program/1", "name": ')
    with pytest.raises(tilejit.Error) as info:
        tilejit.Kernel.load(saved)
    assert str(saved) in str(info.value)
    kernel.save(saved)
    (saved / "kernel.so").write_bytes(b"\x7fELF truncated")
    with pytest.raises(tilejit.Error, match="cannot load library"):
        tilejit.Kernel.load(saved)


# --- par_compile: worker count and debug_root_path -----------------------------------------

def test_par_compile_default_workers_follow_the_affinity_mask():
    # A child pinned to one CPU: the default is 1 worker however many CPUs the machine has.
    code = (
        "import os, concurrent.futures as cf, tilejit, tilejit._compile as c\n"
        "os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})\n"
        "seen = []\n"
        "class Pool(cf.ThreadPoolExecutor):\n"
        "    def __init__(self, max_workers=None, **kw):\n"
        "        seen.append(max_workers); super().__init__(max_workers, **kw)\n"
        "c.ThreadPoolExecutor = Pool\n"
        "from conftest import vector_add_program\n"
        "tilejit.par_compile([vector_add_program(f'v{i}') for i in range(4)])\n"
        "tilejit.par_compile([vector_add_program(f'v{i}') for i in range(4)], num_workers=3)\n"
        "print(seen, tilejit._core.par_compile_workers(4, 0))\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "[1, 3] 1"


def test_par_compile_default_workers_are_the_cpp_rule():
    usable = len(os.sched_getaffinity(0))
    assert tilejit._core.par_compile_workers(1000, 0) == usable
    assert tilejit._core.par_compile_workers(2, 0) == min(2, usable)
    assert tilejit._core.par_compile_workers(5, 3) == 3


def test_jit_par_compile_writes_debug_sources(tmp_path):
    @tilejit.jit(debug_root_path=str(tmp_path))
    def scaled(factor):
        return scale_program(factor)

    kernels = scaled.par_compile([(4.5,), (5.5,)], num_workers=2)
    for factor, kernel in zip((4.5, 5.5), kernels):
        stem = tmp_path / f"{kernel.program.name}.{kernel.cache_key[:16]}"
        assert f"{factor}f * X[i]" in (stem.parent / (stem.name + ".device.txt")).read_text()
        assert (stem.parent / (stem.name + ".host.txt")).read_text() == kernel.get_host_source()


# --- handle (void*) scalars ----------------------------------------------------------------

FILL_HANDLE_C = """
void fill_handle(void* dst, int n) {
  float* d = (float*)dst;
  for (int i = 0; i < n; ++i) d[i] = 0.5f * (float)i + 1.0f;
}
"""


@pytest.fixture(scope="module")
def fill_handle():
    return tilejit.compile(tilejit.Program(
        "fill_handle", FILL_HANDLE_C,
        params=[tilejit.Scalar("dst", "handle"), tilejit.Scalar("n", "int32")],
        launches=[tilejit.Launch("fill_handle")], language="c"))


class Buffer:
    """The data_ptr() protocol without torch."""

    def __init__(self, array):
        self.array = array

    def data_ptr(self):
        return self.array.ctypes.data


POINTERS = [lambda a: a.ctypes.data, lambda a: np.uint64(a.ctypes.data),
            lambda a: ctypes.c_void_p(a.ctypes.data), Buffer]


@pytest.mark.parametrize("pointer_to", POINTERS)
def test_handle_scalars_take_addresses_ctypes_and_data_ptr(fill_handle, pointer_to):
    out = np.zeros(13, np.float32)
    fill_handle(pointer_to(out), 13)
    np.testing.assert_array_equal(out, 0.5 * np.arange(13, dtype=np.float32) + 1)


def test_handle_scalar_from_a_torch_tensor(fill_handle):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    out = torch.zeros(9)  # one-element tensors also have __index__: data_ptr() must win
    fill_handle(out, 9)
    assert torch.equal(out, 0.5 * torch.arange(9, dtype=torch.float32) + 1)
    one = torch.zeros(1)
    fill_handle(one, 1)
    assert one.item() == 1.0


@pytest.mark.parametrize("bad,words", [(None, ["None", "0 for a null"]),
                                       ("0x10", ["str", "data_ptr"]),
                                       (-8, ["negative"]),
                                       (True, ["bool"]),
                                       (2 ** 64, ["does not fit"])])
def test_bad_handles_name_the_param(fill_handle, bad, words):
    with pytest.raises(tilejit.ArgumentError) as info:
        fill_handle(bad, 0)
    message = str(info.value)
    assert "'dst'" in message
    for word in words:
        assert word in message


@pytest.mark.gpu
def test_handle_scalar_from_a_cuda_tensor():
    torch = cuda_torch()
    kernel = tilejit.compile(tilejit.Program(
        "fill_handle_cuda",
        'extern "C" __global__ void fill_handle_cuda(void* dst, int n) {\n'
        "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
        "  if (i < n) ((float*)dst)[i] = 0.5f * (float)i + 1.0f;\n"
        "}\n",
        params=[tilejit.Scalar("dst", "handle"), tilejit.Scalar("n", "int32")],
        launches=[tilejit.Launch("fill_handle_cuda", grid=["ceildiv(n, 128)"], block=[128])]))
    expected = 0.5 * torch.arange(1000, device="cuda", dtype=torch.float32) + 1
    for pointer_of in (lambda t: t, lambda t: t.data_ptr(),
                       lambda t: ctypes.c_void_p(t.data_ptr())):
        out = torch.zeros(1000, device="cuda")
        kernel(pointer_of(out), 1000)
        torch.cuda.synchronize()
        assert torch.equal(out, expected)


CUDA_ADD = """
extern "C" __global__ void vector_add(const float* A, const float* B, float* C, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) C[i] = A[i] + B[i];
}
"""


def cuda_add_program():
    return tilejit.Program(
        "vector_add", CUDA_ADD,
        params=[tilejit.Tensor("A", "float32", ["n"]), tilejit.Tensor("B", "float32", ["n"]),
                tilejit.Tensor("C", "float32", ["n"])],
        launches=[tilejit.Launch("vector_add", grid=["ceildiv(n, 128)"], block=[128])],
        out_idx=[-1])


@pytest.mark.gpu
@pytest.mark.parametrize("name,ours", [("tvm_ffi", "nvcc"), ("cython", "nvcc"),
                                       ("nvrtc", "nvrtc"), ("auto", "nvrtc")])
def test_seed_backend_names_run_cuda_kernels(name, ours):
    torch = cuda_torch()
    kernel = tilejit.compile(cuda_add_program(), execution_backend=name)
    assert kernel.backend == ours
    a, b = (torch.randn(1001, device="cuda") for _ in range(2))
    assert torch.equal(kernel(a, b), a + b)


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["nvrtc", "nvcc"])
def test_kernel_load_of_a_cuda_kernel(backend, tmp_path):
    torch = cuda_torch()
    kernel = tilejit.compile(cuda_add_program(), execution_backend=backend)
    kernel.save(tmp_path / "saved")
    loaded = tilejit.Kernel.load(tmp_path / "saved")
    assert loaded.backend == backend
    a, b = (torch.randn(777, device="cuda") for _ in range(2))
    assert torch.equal(loaded(a, b), a + b)
