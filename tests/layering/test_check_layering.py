#!/usr/bin/env python3
"""scripts/check_layering.py fails where it must: each test copies the checked folders and
docs/architecture.md into a temporary directory, plants one fault there and runs the check
on the copy. Standard library only (unittest), so that ctest can run it anywhere."""

import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "scripts" / "check_layering.py"
COPIED = ("src", "include", "tools", "python/src", "worker", "docs/architecture.md")


class CheckLayeringTest(unittest.TestCase):
    def setUp(self):
        self._dir = tempfile.TemporaryDirectory(prefix="tilejit-layering-")
        self.root = Path(self._dir.name)
        for name in COPIED:
            source, target = ROOT / name, self.root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                shutil.copy2(source, target)

    def tearDown(self):
        self._dir.cleanup()

    def run_check(self):
        return subprocess.run([sys.executable, str(CHECK), "--root", str(self.root)],
                              capture_output=True, text=True, timeout=120)

    def plant(self, relative, line):
        path = self.root / relative
        lines = path.read_text().splitlines(keepends=True)
        # After the first line (a comment or the file's own header), where includes go.
        lines.insert(1, line + "\n")
        path.write_text("".join(lines))

    def edit_docs(self, old, new):
        path = self.root / "docs" / "architecture.md"
        text = path.read_text()
        self.assertIn(old, text)
        path.write_text(text.replace(old, new, 1))

    def test_the_copy_passes(self):
        result = self.run_check()
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_fails_on_a_back_include(self):
        self.plant("src/ir/dtype.cc", '#include "compile/compile.h"')
        result = self.run_check()
        self.assertEqual(result.returncode, 1)
        self.assertIn('src/ir/dtype.cc:2: #include "compile/compile.h" goes from src/ir/ up to '
                      "src/compile/", result.stderr)

    def test_fails_on_a_sideways_include(self):
        # cache/ and backend/ are side by side: neither may include the other.
        self.plant("src/cache/key.cc", '#include "backend/backend.h"')
        result = self.run_check()
        self.assertEqual(result.returncode, 1)
        self.assertIn("goes from src/cache/ up to src/backend/", result.stderr)

    def test_fails_on_a_public_header_including_src(self):
        self.plant("include/tilejit/kernel.h", '#include "call/binder.h"')
        result = self.run_check()
        self.assertEqual(result.returncode, 1)
        self.assertIn("goes from include/tilejit/ up to src/call/", result.stderr)

    def test_fails_on_an_include_of_no_file(self):
        self.plant("src/call/binder.cc", '#include "call/no_such_header.h"')
        result = self.run_check()
        self.assertEqual(result.returncode, 1)
        self.assertIn('#include "call/no_such_header.h" resolves to no file', result.stderr)

    def test_fails_on_a_cycle_in_the_table(self):
        self.edit_docs("| `src/ir/` | `include/tilejit/` |", "| `src/ir/` | `src/compile/` |")
        result = self.run_check()
        self.assertEqual(result.returncode, 1)
        self.assertIn("the layering table has a cycle", result.stderr)

    def test_fails_when_the_picture_lacks_an_arrow(self):
        self.edit_docs("  cache --> toolchain\n", "")
        result = self.run_check()
        self.assertEqual(result.returncode, 1)
        self.assertIn("the picture lacks the table's arrow src/cache/ --> src/toolchain/",
                      result.stderr)

    def test_fails_when_the_picture_has_an_extra_arrow(self):
        self.edit_docs("  cache --> toolchain\n", "  cache --> toolchain\n  call --> cuda\n")
        result = self.run_check()
        self.assertEqual(result.returncode, 1)
        self.assertIn("the picture's arrow src/call/ --> src/cuda/ is not in the table",
                      result.stderr)


if __name__ == "__main__":
    unittest.main()
