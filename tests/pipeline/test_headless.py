"""``pipeline`` runs without Qt: every module imports with PySide6 made unimportable."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import importlib, pkgutil, sys

class NoQt:
    BLOCKED = ("PySide6", "shiboken6", "pyqtgraph", "superqt", "desktop_app", "lexilla")
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ImportError(f"{name} is blocked: pipeline must not need it")
        return None

sys.meta_path.insert(0, NoQt())
import pipeline
names = [m.name for m in pkgutil.walk_packages(pipeline.__path__, "pipeline.")]
for name in names:
    if name.endswith("__main__"):
        continue
    importlib.import_module(name)
print(len(names))
"""


def test_every_pipeline_module_imports_without_qt():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.strip().splitlines()[-1]) >= 10
