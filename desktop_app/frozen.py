"""What the PyInstaller bundle (``dist/lakewatch/``) needs before anything else runs.

The bundle carries pyspark (with ``bin/`` and ``jars/``) and the jar cache that ``lakewatch
setup`` fills (Kafka broker, Spark's Kafka connector, Delta), so its first start needs no
network, only Java 17 or 21. :func:`prepare_environment` points Spark at the bundled
pyspark (the jar cache default is ``pipeline.settings.default_cache_dir``);
:func:`python_module_request` lets the one executable also serve as Spark's Python worker
(``lakewatch -m pyspark.daemon``), since a frozen app has no separate ``python``. From source
every function here is a no-op or returns None.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.settings import BUNDLED_CACHE

if TYPE_CHECKING:
    from PySide6.QtWidgets import QMessageBox, QWidget

#: Modules the executable runs when started as ``lakewatch -m MODULE`` (Spark's workers).
WORKER_MODULES = ("pyspark.daemon", "pyspark.worker")
#: Interpreter flags Spark may put before ``-m``; they mean nothing to a frozen app.
_IGNORED_FLAGS = frozenset({"-u", "-E", "-s", "-I", "-B", "-O", "-OO", "-q"})


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def bundle_root() -> Path | None:
    """The bundle's data folder (``sys._MEIPASS``: ``dist/lakewatch/_internal``), or None."""
    return Path(sys._MEIPASS) if is_frozen() else None  # type: ignore[attr-defined]


def bundled_cache_dir(root: Path | None = None) -> Path | None:
    """The bundled jar cache, usable as ``storage.cache_dir``; None from source."""
    root = root or bundle_root()
    if root is None:
        return None
    cache = root / BUNDLED_CACHE
    return cache if (cache / "jars").is_dir() else None


def bundled_spark_home(root: Path | None = None) -> Path | None:
    """The bundled pyspark folder (it is SPARK_HOME: ``bin/spark-submit`` and ``jars/``)."""
    root = root or bundle_root()
    if root is None:
        return None
    home = root / "pyspark"
    return home if (home / "bin" / "spark-submit").is_file() else None


def ensure_executable(folder: Path) -> list[Path]:
    """Give every file in ``folder`` its exec bits back; returns the files changed.

    PyInstaller copies data files without their modes; ``packaging/build.sh`` fixes them,
    this repairs a bundle unpacked by a tool that dropped them (read-only installs skip it).
    """
    changed = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix == ".cmd":
            continue
        mode = path.stat().st_mode
        wanted = mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
        if mode != wanted:
            try:
                path.chmod(wanted)
            except OSError:
                continue
            changed.append(path)
    return changed


def prepare_environment(
    environ: MutableMapping[str, str] | None = None, root: Path | None = None
) -> dict[str, str]:
    """Point Spark at the bundle; returns the variables it set.

    SPARK_HOME is always the bundled pyspark (another Spark's launcher would not match the
    bundled Python side). The jar cache needs nothing here: ``Settings.cache_dir`` defaults
    to the bundled one, so every config source (TOML, environment, ``--set``) can still
    choose another.
    """
    environ = os.environ if environ is None else environ
    root = root or bundle_root()
    if root is None:
        return {}
    done: dict[str, str] = {}
    spark_home = bundled_spark_home(root)
    if spark_home is not None:
        ensure_executable(spark_home / "bin")
        done["SPARK_HOME"] = str(spark_home)
    environ.update(done)
    return done


def python_module_request(argv: Sequence[str]) -> str | None:
    """``'pyspark.daemon'`` when ``argv`` is ``[exe, (-u ...), '-m', 'pyspark.daemon']``.

    Spark starts its Python workers as ``$PYSPARK_PYTHON -m pyspark.daemon`` (or
    ``pyspark.worker``); the session manager sets PYSPARK_PYTHON to ``sys.executable``, which
    in the bundle is this executable. Only Spark's worker modules are accepted: the app does
    not turn into a general Python interpreter.
    """
    args = list(argv[1:])
    while args and args[0] in _IGNORED_FLAGS:
        args.pop(0)
    if len(args) >= 2 and args[0] == "-m" and args[1] in WORKER_MODULES:
        return args[1]
    return None


def run_python_module(module: str, argv: Sequence[str]) -> None:
    """Run ``module`` as ``__main__`` the way ``python -m`` does (for Spark's workers)."""
    import runpy

    sys.argv = [module, *argv[argv.index(module) + 1:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


# -- Java missing ------------------------------------------------------------------------------
JAVA_DIALOG_TITLE = "Lakewatch needs Java 17 or 21"


def java_missing_text(exc: BaseException) -> tuple[str, str]:
    """(main text, details) for the dialog; the details are JavaError's install instructions."""
    return (
        "Lakewatch runs Spark and the Kafka broker on Java, and no usable Java was found.",
        str(exc),
    )


def build_java_missing_dialog(exc: BaseException, parent: QWidget | None = None) -> QMessageBox:
    """The dialog, not yet shown (tests inspect it; :func:`java_missing_dialog` shows it)."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    text, detail = java_missing_text(exc)
    box = QMessageBox(parent)
    box.setObjectName("javaMissingDialog")
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle(JAVA_DIALOG_TITLE)
    box.setText(text)
    box.setInformativeText(detail)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    return box


def java_missing_dialog(exc: BaseException, parent: QWidget | None = None) -> None:
    """Show why Java is needed and how to install it (modal; for a JavaError at start)."""
    build_java_missing_dialog(exc, parent).exec()
