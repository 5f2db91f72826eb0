"""Delta table helpers: creation with the contract schema, catalog names, the writer lock."""

from __future__ import annotations

import pytest

from pipeline.delta_tables import (
    WriterLock,
    WriterLockBusy,
    ensure_tables,
    file_stats,
    register_tables,
)
from pipeline.transforms.columns import LOGS_COLUMNS


def _settings_for(settings, path):
    s = settings.model_copy(deep=True)
    s.storage.data_dir = path
    return s


def _append_rows(spark, settings, n):
    rows = [(f"e{i}",) for i in range(n)]
    df = spark.createDataFrame(rows, "event_id string")
    for name, dtype in LOGS_COLUMNS[1:]:
        df = df.selectExpr("*", f"CAST(NULL AS {dtype}) AS {name}")
    df.write.format("delta").mode("append").save(str(settings.table_path("logs")))


def test_tables_created_with_contract_and_registered_by_name(spark, settings, tmp_path):
    a = _settings_for(settings, tmp_path / "a")
    b = _settings_for(settings, tmp_path / "b")
    ensure_tables(spark, a)
    ensure_tables(spark, a)  # idempotent
    logs = spark.read.format("delta").load(str(a.table_path("logs")))
    assert [(f.name, f.dataType.simpleString()) for f in logs.schema] == [
        (n, t.lower()) for n, t in LOGS_COLUMNS]
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{a.table_path('logs')}`").first()
    assert list(detail.partitionColumns) == ["date"]
    _append_rows(spark, a, 2)
    assert set(register_tables(spark, a)) == {"logs", "logs_quarantine", "metrics"}
    assert spark.sql("SELECT count(*) AS n FROM logs").first().n == 2

    ensure_tables(spark, b)
    _append_rows(spark, b, 3)
    register_tables(spark, b)  # same names, another data dir: re-pointed
    assert spark.sql("SELECT count(*) AS n FROM logs").first().n == 3
    # dropping the old (external) name kept its files
    assert spark.read.format("delta").load(str(a.table_path("logs"))).count() == 2
    _append_rows(spark, b, 1)  # a catalog table always reads the latest snapshot
    assert spark.sql("SELECT count(*) AS n FROM logs").first().n == 4
    assert file_stats(spark, b.table_path("logs"))["files"] >= 2



def test_a_registered_table_whose_directory_is_gone_is_registered_again(spark, settings,
                                                                         tmp_path):
    """A data dir deleted while the session lives (a reset, a test, a bench) must not stop
    the next processor or query in that session: its stale names are dropped, not read."""
    import shutil

    a = _settings_for(settings, tmp_path / "gone")
    b = _settings_for(settings, tmp_path / "new")
    ensure_tables(spark, a)
    register_tables(spark, a)
    shutil.rmtree(tmp_path / "gone")
    ensure_tables(spark, b)
    _append_rows(spark, b, 2)
    assert set(register_tables(spark, b)) == {"logs", "logs_quarantine", "metrics"}
    assert spark.sql("SELECT count(*) AS n FROM logs").first().n == 2

def test_writer_lock_admits_one_writer(settings):
    first = WriterLock(settings)
    first.acquire()
    try:
        with pytest.raises(WriterLockBusy, match="being written by another process"):
            WriterLock(settings).acquire(timeout=0.3)
    finally:
        first.release()
    with WriterLock(settings):
        pass


def test_analytics_mode_writes_report_tables(spark, settings, capsys):
    from datetime import datetime

    from pipeline.runners.batch_jobs import run_analytics

    ensure_tables(spark, settings)
    t0 = datetime(2026, 3, 1, 12, 0, 0)
    rows = [("a", t0, "INFO", "web", "/x", 200, 10.0, "1.1.1.1"),
            ("b", t0, "ERROR", "web", "/x", 500, 30.0, "1.1.1.1"),
            ("c", t0, "INFO", "api", "/y", 404, 20.0, "2.2.2.2")]
    df = spark.createDataFrame(rows, "event_id string, ts timestamp, level string, "
                               "source string, endpoint string, status int, latency_ms double, "
                               "client_ip string")
    for name, dtype in LOGS_COLUMNS:
        if name not in df.columns:
            df = df.selectExpr("*", f"CAST(NULL AS {dtype}) AS {name}")
    df.select(*[n for n, _ in LOGS_COLUMNS]).write.format("delta").mode("append").save(
        str(settings.table_path("logs")))
    written = run_analytics(spark, settings)
    assert written == {
        "analytics_top_endpoints": 2, "analytics_error_rate_by_source_hour": 2,
        "analytics_latency_by_endpoint_hour": 2, "analytics_status_distribution": 3,
        "analytics_top_client_ips": 2,
    }
    top = spark.sql("SELECT source, endpoint, requests, errors FROM analytics_top_endpoints "
                    "ORDER BY requests DESC").collect()
    assert [tuple(r) for r in top] == [("web", "/x", 2, 1), ("api", "/y", 1, 0)]


def test_checkpoints_are_written_beside_the_commits_not_inside_them(spark, settings, tmp_path):
    """Delta's own checkpoint every 10th commit cost a micro-batch 2-17 s: the processor's
    tables never reach their interval, and DeltaCheckpointer writes the checkpoints."""
    from pipeline.delta_checkpoints import (
        HOT_PATH_INTERVAL,
        DeltaCheckpointer,
        last_checkpoint_version,
    )

    s = _settings_for(settings, tmp_path / "d")
    ensure_tables(spark, s)
    logs = s.table_path("logs")
    props = spark.sql(f"DESCRIBE DETAIL delta.`{logs}`").first()["properties"]
    assert props["delta.checkpointInterval"] == str(HOT_PATH_INTERVAL)
    for _ in range(11):
        _append_rows(spark, s, 1)
    assert not list((logs / "_delta_log").glob("*.checkpoint*.parquet"))
    assert last_checkpoint_version(logs) == -1

    checkpointer = DeltaCheckpointer(spark, [logs, s.table_path("metrics")], every=5)
    assert checkpointer.run_due() == {"logs": 11}  # metrics: one commit (its creation)
    assert (logs / "_delta_log" / f"{11:020d}.checkpoint.parquet").is_file()
    assert checkpointer.run_due() == {}  # nothing new since
    for _ in range(5):
        _append_rows(spark, s, 1)
    assert checkpointer.run_due() == {"logs": 16}
    # a reader starting from the checkpoint sees every row
    assert spark.read.format("delta").load(str(logs)).count() == 16


def test_tables_of_an_older_version_get_the_checkpoint_interval(spark, settings, tmp_path):
    from pipeline.delta_checkpoints import HOT_PATH_INTERVAL

    s = _settings_for(settings, tmp_path / "old")
    ensure_tables(spark, s)
    logs = s.table_path("logs")
    spark.sql(f"ALTER TABLE delta.`{logs}` UNSET TBLPROPERTIES ('delta.checkpointInterval')")
    _append_rows(spark, s, 2)
    ensure_tables(spark, s)
    props = spark.sql(f"DESCRIBE DETAIL delta.`{logs}`").first()["properties"]
    assert props["delta.checkpointInterval"] == str(HOT_PATH_INTERVAL)
    assert spark.read.format("delta").load(str(logs)).count() == 2
