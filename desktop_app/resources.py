"""Find bundled resources (icons, styles) whether running from source or a frozen build.

PyInstaller unpacks data files under ``sys._MEIPASS``; the spec must add ``resources/`` as
``resources`` there. From source the folder sits next to the ``desktop_app`` package.
"""

from __future__ import annotations

import sys
from pathlib import Path


def resource_root() -> Path:
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """The path of a bundled resource; raises FileNotFoundError naming it when missing."""
    path = resource_root().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"bundled resource {'/'.join(parts)} not found at {path}")
    return path


def read_text(*parts: str) -> str:
    return resource_path(*parts).read_text(encoding="utf-8")
