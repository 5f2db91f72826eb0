"""Compiling the project's few Java classes with the JDK's ``javac`` into the jar cache.

Used by ``lakewatch setup`` for :mod:`pipeline.jvm.nio_fs` and :mod:`pipeline.jvm.connect_guard`:
a jar's name carries the hash of its sources, so an edited source is rebuilt and an unchanged
one never is.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from pipeline.jvm.java import require_java


def sources(root: Path) -> list[Path]:
    return sorted(root.rglob("*.java"))


def jar_path(root: Path, directory: Path, prefix: str) -> Path:
    """``directory/prefix-<hash of the sources under root>.jar``."""
    digest = hashlib.sha256()
    for src in sources(root):
        digest.update(src.relative_to(root).as_posix().encode() + b"\0" + src.read_bytes())
    return directory / f"{prefix}-{digest.hexdigest()[:12]}.jar"


def find_javac() -> Path | None:
    java = require_java()
    beside = java.resolve().parent / "javac"
    found = beside if beside.is_file() else shutil.which("javac")
    return Path(found) if found else None


def compile_jar(javac: Path, root: Path, classpath: list[str], jar: Path) -> None:
    """Compile every source under ``root`` for Java 17 into ``jar`` (older jars beside it go)."""
    with tempfile.TemporaryDirectory(prefix="lakewatch-javac-") as tmp:
        proc = subprocess.run(
            [str(javac), "--release", "17", "-cp", ":".join(classpath), "-d", tmp,
             *map(str, sources(root))],
            capture_output=True, text=True, check=False, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"javac failed on {root}:\n{proc.stderr[-2000:]}")
        jar.parent.mkdir(parents=True, exist_ok=True)
        for old in jar.parent.glob("*.jar"):
            old.unlink()
        partial = jar.with_suffix(".part")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for cls in sorted(Path(tmp).rglob("*.class")):
                zf.write(cls, cls.relative_to(tmp).as_posix())
        partial.replace(jar)
