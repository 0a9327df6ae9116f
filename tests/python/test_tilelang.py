"""The TileLang front end (tilejit.tilelang), no GPU needed: TileLang's own example kernels are
lowered by TileLang, converted into Programs, checked against golden JSON, compiled with NVRTC
for sm_90a, round-tripped through JSON and compiled by the CLI.

The golden Programs live in tests/data/tilelang/ with TileLang's install directory written as
`<tilelang>`. After a deliberate change (of the converter, or of the pinned TileLang),
regenerate them and review the diff:

    TILEJIT_UPDATE_GOLDEN=1 python -m pytest tests/python/test_tilelang.py -k golden

The CLI test runs the `tilejit` program named by TILEJIT_CLI (scripts/test.sh sets it).
"""

import json
import os
import pathlib
import shutil
import subprocess
import types
import warnings

import pytest

tilelang = pytest.importorskip(
    "tilelang", reason="TileLang is not installed (pip install tilelang==0.1.15)")

import tilejit  # noqa: E402
from tilejit import _pass_configs  # noqa: E402
from tilejit import tilelang as front  # noqa: E402

import tilelang_kernels as kernels  # noqa: E402

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "data" / "tilelang"
TARGET = "sm_90a"

# Odd, unequal sizes, so that a swapped grid axis or descriptor dimension shows.
KERNELS = {
    "elementwise_add": lambda: kernels.elementwise_add(512, 384),
    "matmul": lambda: kernels.matmul(512, 768, 256),
    "row_sum": lambda: kernels.row_sum(320, 128),
    "scaled_add_dynamic": lambda: kernels.scaled_add_dynamic(),
    "convolution": lambda: kernels.convolution(2, 64, 16, 16, 128, 3),
}


@pytest.fixture(scope="module")
def programs():
    return {name: tilejit.Program.from_tilelang(make(), target=TARGET)
            for name, make in KERNELS.items()}


@pytest.fixture(autouse=True)
def fresh_warnings():
    """Each test sees pass_configs warnings as if it were the first in the process."""
    _pass_configs._warned.clear()
    yield
    _pass_configs._warned.clear()


def golden_text(program):
    root = os.path.dirname(os.path.abspath(tilelang.__file__))
    return program.to_json().replace(root, "<tilelang>") + "\n"


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_golden_program(programs, name):
    path = GOLDEN / f"{name}.json"
    text = golden_text(programs[name])
    if os.environ.get("TILEJIT_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing; regenerate with TILEJIT_UPDATE_GOLDEN=1"
    assert text == path.read_text(), (
        f"the Program converted from TileLang {tilelang.__version__}'s lowering of {name} "
        f"differs from {path}; if the change is meant, regenerate (see this file's docstring)")


def test_elementwise_add_converts(programs):
    program = programs["elementwise_add"]
    assert [(p.name, p.dtype, p.shape, p.strides) for p in program.params] == [
        (x, "float32", [512, 384], None) for x in "ABC"]
    (launch,) = program.launches
    # T.Kernel(ceildiv(N, 128), ceildiv(M, 128), threads=128)
    assert (launch.kernel, launch.grid, launch.block, launch.dynamic_smem) == (
        "elementwise_add_kernel", [3, 4, 1], [128, 1, 1], 0)
    assert launch.args == ["A", "B", "C"]
    assert program.tma_descriptors == []
    assert program.include_dirs == front.include_dirs()
    assert all(os.path.isdir(d) for d in program.include_dirs)
    assert os.path.isfile(os.path.join(program.include_dirs[0], "tl_templates", "cuda",
                                       "common.h"))
    assert program.compile_flags == ["-std=c++20", "-default-device"]
    assert program.source.startswith("#include <tl_templates/cuda/nvrtc_std.h>\n")


def test_hopper_gemm_converts_with_tma(programs):
    program = programs["matmul"]
    (launch,) = program.launches
    # 768 / 128 column blocks, 512 / 128 row blocks; warp specialization adds a producer
    # warpgroup to the 128 threads; 3 stages of a 128x32 A tile and a 32x128 B tile in fp16.
    assert (launch.grid, launch.block) == ([6, 4, 1], [256, 1, 1])
    assert launch.dynamic_smem == 3 * (128 * 32 + 32 * 128) * 2
    assert launch.args == ["A_desc", "B_desc", "C"]
    a, b = program.tma_descriptors
    assert (a.name, a.buffer, a.kind, a.rank) == ("A_desc", "A", "tiled", 2)
    assert (b.name, b.buffer, b.kind, b.rank) == ("B_desc", "B", "tiled", 2)
    # Innermost first: A is [M, K] = [512, 256] fp16, boxes of block_K x block_M.
    assert a.global_dims == [256, 512] and a.global_strides == [256 * 2]
    assert a.box_dims == [32, 128]
    # B is [K, N] = [256, 768]: a 128-wide row tile is two 64-element (128-byte) boxes.
    assert b.global_dims == [768, 256] and b.global_strides == [768 * 2]
    assert b.box_dims == [64, 32] and b.swizzle == "128b"


def test_reduction_converts(programs):
    program = programs["row_sum"]
    assert [(p.name, p.shape) for p in program.params] == [("A", [320, 128]), ("B", [320])]
    (launch,) = program.launches
    assert (launch.grid, launch.block, launch.args) == ([5, 1, 1], [128, 1, 1], ["A", "B"])


def test_dynamic_dimension_becomes_a_shape_variable(programs):
    program = programs["scaled_add_dynamic"]
    assert [(p.name, p.dtype, p.shape, p.is_scalar()) for p in program.params] == [
        ("A", "float32", ["N"], False), ("B", "float32", ["N"], False),
        ("C", "float32", ["N"], False), ("alpha", "float32", [], True)]
    assert program.shape_variables() == ["N"]
    (launch,) = program.launches
    assert launch.grid == ["(N + 255) / 256", 1, 1] and launch.block == [256, 1, 1]
    assert launch.args == ["A", "B", "C", "N", "alpha"]


def test_dynamic_gemm_has_symbolic_tma_dims():
    program = tilejit.Program.from_tilelang(
        kernels.matmul(tilelang.language.dynamic("M"), 768, 256), target=TARGET)
    assert program.params[0].shape == ["M", 256] and program.params[2].shape == ["M", 768]
    (launch,) = program.launches
    assert launch.grid == [6, "(M + 127) / 128", 1]
    assert launch.args == ["A_desc", "B_desc", "C", "M"]
    a, b = program.tma_descriptors
    assert a.global_dims == [256, "M"] and b.global_dims == [768, 256]


def test_im2col_convolution_converts(programs):
    program = programs["convolution"]
    data, weights = program.tma_descriptors
    # NHWC data [2, 16, 16, 64] gathered by im2col: innermost first, 64 channels of 2 bytes.
    assert (data.name, data.buffer, data.kind, data.rank) == ("data_desc", "data", "im2col", 4)
    assert data.global_dims == [64, 16, 16, 2]
    assert data.global_strides == [64 * 2, 16 * 64 * 2, 16 * 16 * 64 * 2]
    # The weights [3, 3, 64, 128] through a reshaped [576, 128] view.
    assert (weights.kind, weights.buffer, weights.global_dims) == ("tiled", "kernel", [128, 576])
    (launch,) = program.launches
    assert launch.args == ["data_desc", "kernel_flat_desc", "out"]
    assert launch.grid == [1, 2 * 16 * 16 // 64, 1]


def test_l2_cluster_and_pdl_convert():
    l2 = tilejit.Program.from_tilelang(kernels.add_l2_persistent(256, 384, 0.25), target=TARGET)
    (window,) = l2.launches[0].l2_windows
    assert (window.param, window.num_bytes, window.hit_ratio) == ("A", 256 * 384 * 4, 0.25)
    cluster = tilejit.Program.from_tilelang(kernels.add_in_clusters(256, 512, (2, 1, 1)),
                                            target=TARGET)
    assert cluster.launches[0].cluster == [2, 1, 1]
    assert cluster.launches[0].grid == [4, 2, 1]
    pdl = tilejit.Program.from_tilelang(kernels.add_with_pdl(256, 256), target=TARGET)
    assert pdl.launches[0].pdl
    assert not cluster.launches[0].pdl and l2.launches[0].l2_windows != []
    for program in (l2, cluster, pdl):
        tilejit.compile(program, target=TARGET, execution_backend="nvrtc")


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_json_round_trip(programs, name):
    program = programs[name]
    again = tilejit.Program.from_json(program.to_json())
    assert again == program
    assert again.to_json() == program.to_json()


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_compiles_with_nvrtc_for_sm90a(programs, name):
    kernel = tilejit.compile(programs[name], target=TARGET, execution_backend="nvrtc")
    assert (kernel.backend, kernel._compiled.binary_kind) == ("nvrtc", "cubin")
    assert kernel.target.endswith(TARGET)
    assert len(kernel._compiled.binary) > 1000
    plan = kernel.get_host_source()
    assert programs[name].launches[0].kernel in plan
    if name == "convolution":
        assert "data_desc = cuTensorMapEncodeIm2col(buffer=data" in plan
    if name == "matmul":
        assert plan.count("cuTensorMapEncodeTiled") == 2
        assert "tma[0] A_desc = cuTensorMapEncodeTiled(buffer=A" in plan
        assert "box_dims=[32, 128]" in plan and "box_dims=[64, 32]" in plan


def test_a_structurally_equal_prim_func_is_not_lowered_again(programs, monkeypatch):
    def no_lowering(*args, **kwargs):
        raise AssertionError("lowered again")

    monkeypatch.setattr(front, "lower", no_lowering)
    # A new PrimFunc object, equal to the fixture's: the conversion is reused.
    assert tilejit.Program.from_tilelang(KERNELS["matmul"](), target=TARGET) == programs["matmul"]
    # Other options or another function: lowered.
    with pytest.raises(AssertionError, match="lowered again"):
        tilejit.Program.from_tilelang(KERNELS["matmul"](), target="sm_80")
    with pytest.raises(AssertionError, match="lowered again"):
        tilejit.Program.from_tilelang(kernels.matmul(512, 768, 512), target=TARGET)


def test_compile_takes_a_prim_func():
    kernel = tilejit.compile(kernels.elementwise_add(512, 384), out_idx=-1, target=TARGET,
                             execution_backend="nvrtc")
    assert kernel.out_idx == [2]
    assert kernel.program.name == "elementwise_add"
    assert [p.name for p in kernel.params] == ["A", "B", "C"]


def test_compile_takes_a_tilelang_jit_function():
    @tilelang.jit(out_idx=[-1])
    def add(M=256, N=128):
        return kernels.elementwise_add(M, N)

    kernel = tilejit.compile(add, target=TARGET, execution_backend="nvrtc")
    # The decorator's out_idx is kept.
    assert kernel.out_idx == [2]
    assert kernel.params[0].shape == [256, 128]


def test_par_compile_takes_prim_funcs():
    add, row_sum = tilejit.par_compile([KERNELS["elementwise_add"](), KERNELS["row_sum"]()],
                                       target=TARGET, execution_backend="nvrtc")
    assert (add.program.name, row_sum.program.name) == ("elementwise_add", "row_sum")
    assert row_sum.params[1].shape == [320]


def test_tilelang_jit_function_that_needs_arguments_is_a_clear_error():
    @tilelang.jit
    def add(M, N):
        return kernels.elementwise_add(M, N)

    with pytest.raises(tilejit.ProgramError,
                       match=r"needs arguments .*; pass func.get_tir\(\*args\)"):
        tilejit.Program.from_tilelang(add, target=TARGET)


def test_tilejit_jit_on_functions_returning_prim_funcs():
    @tilejit.jit(out_idx=[-1], target=TARGET, execution_backend="nvrtc")
    def add(M, N):
        return kernels.elementwise_add(M, N)

    kernel = add(256, 128)
    assert kernel is add(256, 128)  # memoized per configuration
    assert kernel.params[0].shape == [256, 128] and kernel.out_idx == [2]
    assert add(128, 128).params[0].shape == [128, 128]


def test_tilejit_jit_on_a_tilelang_jit_function():
    @tilejit.jit(target=TARGET, execution_backend="nvrtc")
    @tilelang.jit(out_idx=[-1])
    def add(M, N):
        return kernels.elementwise_add(M, N)

    kernel = add(256, 128)
    assert kernel.params[0].shape == [256, 128]
    assert kernel.out_idx == [2]  # the TileLang decorator's


def test_target_forms():
    assert front.resolve_target("sm_90a")[1] == "sm_90a"
    assert front.resolve_target("cuda -arch=sm_80")[1] == "sm_80"
    assert front.resolve_target({"kind": "cuda", "arch": "sm_89"})[1] == "sm_89"
    target = tilelang.tvm.target.Target({"kind": "cuda", "arch": "sm_90a"})
    assert front.resolve_target(target)[1] == "sm_90a"
    with pytest.raises(tilejit.ProgramError, match="CUDA kernels only"):
        front.resolve_target("llvm")
    with pytest.raises(tilejit.ProgramError, match="not a CUDA arch"):
        front.resolve_target("cuda -arch=ampere")


def test_auto_target_without_a_device_is_a_clear_error(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("TILELANG_TARGET", raising=False)
    for target in (None, "auto", "cuda"):
        with pytest.raises(tilejit.ProgramError, match="needs a CUDA device.*target='sm_90a'"):
            tilejit.Program.from_tilelang(kernels.elementwise_add(128, 128), target=target)


def test_target_from_the_environment(monkeypatch):
    monkeypatch.setenv("TILELANG_TARGET", "sm_80")
    program = tilejit.Program.from_tilelang(kernels.matmul(256, 256, 128))
    # No TMA and no warp specialization below Hopper: plain pointers, 128 threads.
    assert program.tma_descriptors == []
    assert program.launches[0].args == ["A", "B", "C"]
    assert program.launches[0].block == [128, 1, 1]


def test_dtype_without_a_tilejit_equivalent_is_a_named_error():
    with pytest.raises(tilejit.ProgramError,
                       match="tensor parameter 'A': dtype 'float8_e8m0fnu' has no tilejit"):
        tilejit.Program.from_tilelang(kernels.elementwise_add(128, 128, dtype="float8_e8m0fnu"),
                                      target=TARGET)


@pytest.mark.parametrize("wrap", ["loop", "branch"])
def test_launch_under_host_control_flow_is_a_named_error(wrap):
    # TileLang's own kernels launch unconditionally; a host module that loops or branches
    # around a launch (built here from a real one) has no Program form.
    tirx = tilelang.tvm.tirx
    func = kernels.elementwise_add(256, 256)
    artifact = front.lower(func, TARGET)
    ((global_var, host),) = artifact.host_mod.functions.items()
    if wrap == "loop":
        body = tirx.For(tirx.Var("i", "int32"), 0, 2, tirx.ForKind.SERIAL, host.body)
    else:
        body = tirx.IfThenElse(tirx.Var("flag", "bool"), host.body, None)
    changed = types.SimpleNamespace(kernel_source=artifact.kernel_source,
                                    device_mod=artifact.device_mod,
                                    host_mod=tilelang.tvm.IRModule({global_var:
                                                                    host.with_body(body)}))
    with pytest.raises(tilejit.ProgramError,
                       match="launch of 'elementwise_add_kernel' is inside a host-side branch"):
        front._convert(changed, func, "elementwise_add", None, [])


def test_non_cuda_target_is_a_named_error():
    with pytest.raises(tilejit.ProgramError, match="target 'c'.*CUDA kernels only"):
        tilejit.compile(kernels.elementwise_add(128, 128), target="c")


def test_pass_configs_reach_tilelangs_lowering():
    gemm = kernels.matmul(512, 768, 256)
    plain = tilejit.Program.from_tilelang(gemm, target=TARGET)
    no_ws = tilejit.Program.from_tilelang(
        gemm, target=TARGET, pass_configs={"tl.disable_warp_specialized": True})
    # Warp specialization adds a TMA producer warpgroup to the 128 threads; without it
    # TileLang 0.1.15 copies with cp.async, through plain pointers.
    assert plain.launches[0].block == [256, 1, 1]
    assert len(plain.tma_descriptors) == 2
    assert no_ws.launches[0].block == [128, 1, 1]
    assert no_ws.tma_descriptors == []
    assert no_ws.launches[0].args == ["A", "B", "C"]


def test_fast_math_and_device_flags_become_compile_flags():
    program = tilejit.Program.from_tilelang(
        kernels.elementwise_add(128, 128), target=TARGET, compile_flags="-DMY_FLAG=1",
        pass_configs={"tl.enable_fast_math": True, "tl.device_compile_flags": "-lineinfo"})
    assert program.compile_flags == ["-std=c++20", "-default-device", "--use_fast_math",
                                     "-lineinfo", "-DMY_FLAG=1"]
    kernel = tilejit.compile(program, target=TARGET, execution_backend="nvrtc")
    assert "--use_fast_math" in kernel._compiled.metadata["options"]


def test_register_usage_level_reaches_ptxas():
    # TileLang's nvcc build passes the level to ptxas; tilejit does so on both CUDA backends.
    func = kernels.matmul(512, 768, 256)
    plain = tilejit.compile(func, target=TARGET, execution_backend="nvrtc")
    levels = {level: tilejit.compile(func, target=TARGET, execution_backend="nvrtc",
                                     pass_configs={"tl.ptxas_register_usage_level": level})
              for level in (0, 10)}
    for level, kernel in levels.items():
        flag = f"--ptxas-options=--register-usage-level={level}"
        assert flag in kernel.program.compile_flags
        assert flag in kernel._compiled.metadata["options"]
    assert len({plain.cache_key, levels[0].cache_key, levels[10].cache_key}) == 3
    # ptxas got the level: each builds another cubin.
    cubins = {bytes(k._compiled.binary) for k in (plain, levels[0], levels[10])}
    assert len(cubins) == 3


def test_unknown_pass_config_warns_once_and_is_left_out():
    func = kernels.elementwise_add(128, 128)
    with pytest.warns(UserWarning, match="'tl.no_such_option' is not a pass config"):
        first = tilejit.Program.from_tilelang(func, target=TARGET,
                                              pass_configs={"tl.no_such_option": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = tilejit.Program.from_tilelang(func, target=TARGET,
                                              pass_configs={"tl.no_such_option": 1})
    assert first == again == tilejit.Program.from_tilelang(func, target=TARGET)


def test_cli_compiles_the_saved_program(programs, tmp_path):
    cli = os.environ.get("TILEJIT_CLI") or shutil.which("tilejit")
    if not cli:
        pytest.skip("no tilejit CLI: set TILEJIT_CLI to the built tools/tilejit")
    path = tmp_path / "matmul.json"
    path.write_text(programs["matmul"].to_json())
    env = dict(os.environ, TILELANG_CACHE_DIR=str(tmp_path / "cache"))
    result = subprocess.run([cli, "compile", str(path), "--backend", "nvrtc", "--target", TARGET],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "matmul" in result.stdout and "nvrtc" in result.stdout
    shown = subprocess.run([cli, "compile", str(path), "--backend", "nvrtc", "--target", TARGET,
                            "--show", "host"], capture_output=True, text=True, timeout=600,
                           env=env)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert shown.stdout.count("cuTensorMapEncodeTiled") == 2
    assert json.loads(path.read_text())["tma_descriptors"][0]["name"] == "A_desc"
