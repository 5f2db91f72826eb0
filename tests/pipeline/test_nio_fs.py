"""The local file system without a chmod process per file, in the suite's real SparkSession."""

from __future__ import annotations

import os
import stat

import pytest

from pipeline.jvm.nio_fs import (
    ABSTRACT_FS_CLASS,
    FS_CLASS,
    _javac,
    build_nio_fs_jar,
    nio_fs_jar,
)


@pytest.fixture(scope="module")
def built(base_settings):
    if _javac() is None:
        pytest.skip("no javac here: Spark keeps Hadoop's chmod-spawning local file system")
    jar, _ = build_nio_fs_jar(base_settings)
    assert jar == nio_fs_jar(base_settings) and jar.is_file()
    return jar


def test_spark_writes_local_files_through_it_with_hadoops_modes(built, spark, tmp_path):
    jvm = spark.sparkContext._jvm
    hconf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(f"file://{tmp_path}")
    assert path.getFileSystem(hconf).getClass().getName() == FS_CLASS
    fc = jvm.org.apache.hadoop.fs.FileContext.getFileContext(hconf)
    assert fc.getDefaultFileSystem().getClass().getName() == ABSTRACT_FS_CLASS

    table = tmp_path / "t"
    spark.range(5).selectExpr("id", "id % 2 AS part").write.format("delta").partitionBy(
        "part").save(str(table))
    assert sorted(r.id for r in spark.read.format("delta").load(str(table)).collect()) == [
        0, 1, 2, 3, 4]
    files = [p for p in table.rglob("*") if p.is_file()]
    dirs = [p for p in table.rglob("*") if p.is_dir()]
    # what Hadoop asks for (0666 / 0777 less its 022 umask), set without a chmod process
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o644}
    assert {stat.S_IMODE(p.stat().st_mode) for p in dirs} == {0o755}


def test_any_permission_bits_are_set_in_process(built, spark, tmp_path):
    jvm = spark.sparkContext._jvm
    target = tmp_path / "f"
    target.write_text("x")
    fs = jvm.io.lakewatch.hadoop.NioRawLocalFileSystem()
    fs.initialize(jvm.java.net.URI("file:///"), spark.sparkContext._jsc.hadoopConfiguration())
    for mode in (0o640, 0o600, 0o751):
        fs.setPermission(jvm.org.apache.hadoop.fs.Path(f"file://{target}"),
                         jvm.org.apache.hadoop.fs.permission.FsPermission(mode))
        assert stat.S_IMODE(os.stat(target).st_mode) == mode
