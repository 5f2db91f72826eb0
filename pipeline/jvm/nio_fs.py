"""Hadoop's local file system without a ``chmod`` process per file (``java_src/``).

Without libhadoop - which no Maven artifact ships - Hadoop's RawLocalFileSystem sets every
file's and directory's permission by spawning ``chmod``. Spark's checkpoint and state files,
Parquet files and Delta commits all go through it: tens of processes per micro-batch, ~12 ms
each on a 2-core laptop, more than a small batch's real work. ``java_src/`` holds the three
small classes that set the same bits with ``java.nio``; ``lakewatch setup`` compiles them with
the JDK's ``javac`` into the jar cache. Spark in local mode then uses them for ``file:`` paths
(:func:`local_fs_conf`). With no ``javac`` (a JRE only) nothing changes: stock Hadoop, slower.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.jvm import javac
from pipeline.settings import Settings

SOURCES = Path(__file__).parent / "java_src"
GROUP = "nio-fs"
FS_CLASS = "io.lakewatch.hadoop.NioLocalFileSystem"
ABSTRACT_FS_CLASS = "io.lakewatch.hadoop.NioLocalFs"


def _sources() -> list[Path]:
    return javac.sources(SOURCES)


_javac = javac.find_javac  # (the tests ask it whether a JDK is here)


def _jar_path(settings: Settings) -> Path:
    return javac.jar_path(SOURCES, settings.jars_dir / GROUP, "lakewatch-nio-fs")


def nio_fs_jar(settings: Settings) -> Path | None:
    """The jar built from these sources, None when not built (or no sources: a bundle that
    ships the jar finds it by name)."""
    if _sources():
        jar = _jar_path(settings)
        return jar if jar.is_file() else None
    return next(iter(sorted((settings.jars_dir / GROUP).glob("lakewatch-nio-fs-*.jar"))), None)


def build_nio_fs_jar(settings: Settings) -> tuple[Path | None, str]:
    """Compile the sources against pyspark's Hadoop jar (a no-op when built); (jar, remark)."""
    jar = nio_fs_jar(settings)
    if jar is not None:
        return jar, "cached"
    if not _sources():
        return None, f"no Java sources in {SOURCES}"
    compiler = javac.find_javac()
    if compiler is None:
        return None, "no javac (a JRE only): Hadoop will spawn chmod per file, slower commits"
    from pipeline.jvm.artifacts import pyspark_jars_dir

    classpath = [str(p) for p in pyspark_jars_dir().glob("hadoop-client-api-*.jar")]
    jar = _jar_path(settings)
    javac.compile_jar(compiler, SOURCES, classpath, jar)
    return jar, "compiled"


def local_fs_conf(settings: Settings) -> dict[str, str]:
    """Spark conf entries that put the built jar in charge of ``file:`` paths ({} if unbuilt).

    On the driver's class path (``extraClassPath``, set before the JVM starts) rather than
    ``spark.jars``: Hadoop loads file-system classes with the JVM's class loader.
    """
    jar = nio_fs_jar(settings)
    if jar is None:
        return {}
    return {
        "spark.driver.extraClassPath": str(jar),
        "spark.hadoop.fs.file.impl": FS_CLASS,
        "spark.hadoop.fs.AbstractFileSystem.file.impl": ABSTRACT_FS_CLASS,
    }
