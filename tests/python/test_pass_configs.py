"""pass_configs with hand-written Programs, and TileLang staying optional: no TileLang needed."""

import subprocess
import sys
import warnings

import pytest

import tilejit
from tilejit import _pass_configs
from conftest import vector_add_program


@pytest.fixture(autouse=True)
def fresh_warnings():
    _pass_configs._warned.clear()
    yield
    _pass_configs._warned.clear()


def test_import_tilejit_does_not_import_tilelang():
    code = ("import sys, tilejit; assert hasattr(tilejit.Program, 'from_tilelang'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tilelang', 'tvm')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_from_tilelang_without_tilelang_is_a_clear_error():
    # A process where `import tilelang` fails, as where it is not installed.
    code = ("import sys; sys.modules['tilelang'] = None; import tilejit\n"
            "try:\n    tilejit.Program.from_tilelang(object())\n"
            "except tilejit.NotAvailableError as e:\n    print(e)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "needs TileLang" in result.stdout and "tilejit[tilelang]" in result.stdout


def test_unknown_key_with_a_program_warns_once_and_changes_nothing():
    program = vector_add_program()
    plain = tilejit.compile(program, target="c")
    with pytest.warns(UserWarning, match="'tl.disable_tma_lower' means nothing for a hand-written"):
        first = tilejit.compile(program, target="c", pass_configs={"tl.disable_tma_lower": True})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = tilejit.compile(program, target="c", pass_configs={"tl.disable_tma_lower": True})
    # Not hashed into the key: the same kernel as without it.
    assert first.cache_key == again.cache_key == plain.cache_key


def test_device_flag_keys_become_compile_flags():
    assert _pass_configs.for_program({"tl.enable_fast_math": True}) == ["--use_fast_math"]
    assert _pass_configs.for_program({"tl.enable_fast_math": "false"}) == []
    assert _pass_configs.for_program(
        {"tl.device_compile_flags": "-DA=1 -lineinfo"}) == ["-DA=1", "-lineinfo"]
    assert _pass_configs.for_program(
        {"tl.device_compile_flags": ["-DA=1", "-DB=2 -DC=3"]}) == ["-DA=1", "-DB=2", "-DC=3"]
    assert _pass_configs.for_program({"tl.ptxas_register_usage_level": 7}) == [
        "--ptxas-options=--register-usage-level=7"]
    assert _pass_configs.for_program({"tl.ptxas_register_usage_level": " 0"}) == [
        "--ptxas-options=--register-usage-level=0"]
    assert _pass_configs.for_program({"tl.ptxas_register_usage_level": None}) == []


@pytest.mark.parametrize("level", [11, -1, 2.5, "high", True, [3]])
def test_a_register_usage_level_ptxas_would_ignore_is_refused(level):
    # ptxas only warns about a level outside 0..10 and compiles as if none were given.
    with pytest.raises(tilejit.ArgumentError,
                       match=r"tl\.ptxas_register_usage_level.*integer from 0 to 10"):
        _pass_configs.for_program({"tl.ptxas_register_usage_level": level})


def test_device_flags_reach_the_compiler():
    # The CPU backend compiles with the host compiler, which takes -D as nvcc and NVRTC do.
    program = tilejit.Program(
        "flagged", "#ifndef SCALE\n#error SCALE not defined\n#endif\n"
                   "void flagged(float* x, int n) { for (int i = 0; i < n; ++i) x[i] *= SCALE; }",
        params=[tilejit.Tensor("x", "float32", ["n"])], launches=[tilejit.Launch("flagged")],
        language="c")
    with pytest.raises(tilejit.CompileError, match="SCALE not defined"):
        tilejit.compile(program, target="c")
    kernel = tilejit.compile(program, target="c",
                             pass_configs={"tl.device_compile_flags": "-DSCALE=3"})
    import numpy as np

    x = np.arange(5, dtype=np.float32)
    kernel(x)
    assert x.tolist() == [0.0, 3.0, 6.0, 9.0, 12.0]
