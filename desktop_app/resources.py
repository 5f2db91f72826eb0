"""Find bundled resources (icons, styles) in a PyInstaller bundle, an installed package or a
checkout.

The repository keeps them in the top-level ``resources/`` folder, which ``pyproject.toml``
installs as the package ``lakewatch_resources`` (wheel, ``pip install .``, pipx; an editable
install maps the package onto the folder itself), so :func:`resource_root` asks
``importlib.resources`` for it. PyInstaller unpacks data files under ``sys._MEIPASS``; the
spec adds ``resources/`` there as ``resources``. A checkout put on ``sys.path`` without
installing (no ``lakewatch_resources``) reads the folder next to the ``desktop_app`` package.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

#: The import name of the top-level ``resources/`` folder (``[tool.setuptools] package-dir``).
RESOURCE_PACKAGE = "lakewatch_resources"
#: Every file the app reads from it, relative to its root.
RESOURCE_FILES = ("lakewatch.svg", "lakewatch.png", "styles/dark.qss", "styles/light.qss")


def resource_root() -> Path:
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    try:
        root = resources.files(RESOURCE_PACKAGE)
    except ModuleNotFoundError:  # a checkout on sys.path, not installed
        return Path(__file__).resolve().parent.parent / "resources"
    if not isinstance(root, Path):  # e.g. a zip import: Qt needs real files
        raise FileNotFoundError(f"{RESOURCE_PACKAGE} is not on the file system ({root})")
    return root


def resource_path(*parts: str) -> Path:
    """The path of a bundled resource; raises FileNotFoundError naming it when missing."""
    path = resource_root().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"bundled resource {'/'.join(parts)} not found at {path}")
    return path


def read_text(*parts: str) -> str:
    return resource_path(*parts).read_text(encoding="utf-8")
