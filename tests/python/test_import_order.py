"""tilejit shares a process with other native extensions; importing it first must not change
how they load. Regression: with default symbol visibility, `import tilejit` before
`import torch` made torch abort in free() while it imported."""

import importlib.util
import subprocess
import sys

import pytest


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torch_imports_after_tilejit():
    result = subprocess.run(
        [sys.executable, "-c", "import tilejit, torch; x = torch.ones(3); print(float(x.sum()))"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "3.0"


def test_extension_exports_only_its_init_function():
    # Every symbol the extension exports is one it might bind in another library's place.
    core = importlib.util.find_spec("tilejit._core").origin
    nm = subprocess.run(["nm", "-D", "--defined-only", core], capture_output=True, text=True)
    if nm.returncode != 0:
        pytest.skip(f"nm is not usable here: {nm.stderr.strip()}")
    names = [line.split()[-1] for line in nm.stdout.splitlines() if line.strip()]
    ours = [name for name in names if "tilejit" in name or "nlohmann" in name or "fmt" in name]
    assert "PyInit__core" in names
    assert ours == []
