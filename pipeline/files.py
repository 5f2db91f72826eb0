"""Atomic file replacement: write next to the target, then ``os.replace`` it.

A reader (another process, or this one after a crash) sees the old file or the new one,
never half of one. The temporary file lives in the target's directory (``os.replace`` is
atomic only within one file system) and is removed when the write fails.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

_counter = itertools.count()


def temp_path(path: Path, suffix: str = ".tmp") -> Path:
    """A hidden sibling of ``path`` unique to this process and call."""
    return path.with_name(f".{path.name}.{os.getpid()}.{next(_counter)}{suffix}")


@contextlib.contextmanager
def replacing(path: Path | str, *, mkdir: bool = True, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` when the block ends without an
    exception, and is deleted otherwise.

    ``mkdir`` creates the parent directory first (off for user-chosen export targets).
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(path: Path | str, data: str | bytes, *, encoding: str = "utf-8",
                 mkdir: bool = True) -> Path:
    """Replace ``path`` with ``data`` (text in ``encoding``, or bytes) atomically."""
    path = Path(path)
    with replacing(path, mkdir=mkdir) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding=encoding)
    return path
