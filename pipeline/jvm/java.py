"""Locate a Java 17+ runtime (Spark 4 and Kafka 4 both need it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

MIN_JAVA = 17
_INSTALL_HINT = (
    "Install Java 17 or 21 (Debian/Ubuntu: `sudo apt-get install openjdk-17-jre-headless`; "
    "macOS: `brew install openjdk@17`; Windows: Eclipse Temurin 17) and make sure `java` is on "
    "PATH or JAVA_HOME points at it."
)


class JavaError(RuntimeError):
    """Java is missing or too old; the message says how to fix it."""


def find_java() -> Path:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file():
            return candidate
    found = shutil.which("java")
    if not found:
        raise JavaError(f"Java was not found. {_INSTALL_HINT}")
    return Path(found)


@lru_cache(maxsize=4)
def java_major_version(java: Path) -> int:
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:
        raise JavaError(f"could not run {java}: {exc}. {_INSTALL_HINT}") from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise JavaError(f"could not read the version of {java}. {_INSTALL_HINT}")
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def require_java(minimum: int = MIN_JAVA) -> Path:
    """The java executable, or JavaError if it is missing or older than ``minimum``."""
    java = find_java()
    version = java_major_version(java)
    if version < minimum:
        raise JavaError(
            f"{java} is Java {version}; Lakewatch needs Java {minimum}+. {_INSTALL_HINT}"
        )
    if "JAVA_HOME" not in os.environ:
        # pyspark's launcher and Kafka's classes use the same runtime we checked.
        os.environ["JAVA_HOME"] = str(java.resolve().parent.parent)
    return java
