"""The one-pass stream job's metrics against the truth in ``logs``: real broker, Spark, Delta.

Once final, every window's merged partials must count exactly the rows ``logs`` holds for it
(less the events that arrived after the window was final, which the status counts as late),
and its percentiles must be within the documented 1 % of the exact ones. Folding partials
must not change any of that. A data dir of the version-1 layout is migrated, not mixed.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from pyspark.sql import functions as F

from pipeline.delta_tables import register_tables
from pipeline.latency_hist import ALPHA
from pipeline.runners.checkpoints import (
    FINGERPRINT_FILE,
    INGEST,
    LEGACY_METRICS_QUERIES,
    checkpoint_path,
    query_fingerprint,
    stored_fingerprint,
)
from pipeline.runners.stream_job import StreamRunner
from pipeline.schemas import METRICS_DDL
from pipeline.status import read_status
from pipeline.transforms.metrics import merge_partials
from tests.helpers.processor import create_topic, make_events, produce

pytestmark = pytest.mark.timeout(1200)
WATERMARK_S = 5


@pytest.fixture
def proc_settings(kafka_settings):
    s = kafka_settings
    s.processor.watermark = f"{WATERMARK_S} seconds"
    s.processor.trigger_interval = "1 second"
    s.processor.status_interval_s = 0.5
    s.processor.fold_every_s = 1.0
    return s


def _table(spark, settings, name):
    return spark.read.format("delta").load(str(settings.table_path(name)))


def _truth(spark, settings, final_before):
    """Exact per-window figures from ``logs``: 10 s windows ending by ``final_before``."""
    logs = _table(spark, settings, "logs")
    keyed = logs.withColumn("window_start", F.window("ts", "10 seconds").start)
    rows = keyed.groupBy("window_start", "source", "endpoint", "level").agg(
        F.count(F.lit(1)).alias("n"),
        *(F.expr(f"percentile_disc({p}) WITHIN GROUP (ORDER BY latency_ms)").alias(c)
          for p, c in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))),
    ).where(F.col("window_start") + F.expr("INTERVAL 10 SECONDS") <= F.lit(final_before))
    return {(r.window_start, r.source, r.endpoint, r.level): r for r in rows.collect()}


def test_final_windows_equal_logs_and_survive_folding(spark, proc_settings):
    s = proc_settings
    # longer than each produced span (50 s): however the stream splits `first` or `second`
    # into micro-batches, none of their own events is late; only `late` is
    s.processor.watermark = "60 seconds"
    create_topic(s, partitions=2)
    t0 = (int(time.time()) // 10) * 10_000 - 120_000  # aligned, two minutes ago
    first = make_events(1500, seed=1, start_ms=t0, span_ms=50_000, prefix="a")
    second = make_events(1500, seed=2, start_ms=t0 + 50_000, span_ms=50_000, prefix="b")
    # after `second`, the watermark is near t0 + 40 s: these windows are final already
    late = make_events(40, seed=3, start_ms=t0, span_ms=9_000, prefix="late")
    runner = StreamRunner(spark, s)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        produce(s, first)
        _wait(lambda: runner.stats.rows_logged >= len(first))
        produce(s, second)
        _wait(lambda: runner.stats.rows_logged >= len(first) + len(second))
        produce(s, late)
        _wait(lambda: runner.stats.rows_logged >= len(first) + len(second) + len(late))
        time.sleep(3)  # a fold or two after the last batch
    finally:
        runner.stop_event.set()
        thread.join(120)
    assert runner.error is None
    assert runner.stats.late_events == len(late)
    assert read_status(s, "processor").late_events == len(late)

    partials = _table(spark, s, "metrics")
    watermark = partials.agg(F.max("watermark")).first()[0]
    merged = {(r.window_start, r.source, r.endpoint, r.level): r
              for r in merge_partials(partials, "10s").where("NOT provisional").collect()}
    truth = _truth(spark, s, watermark)
    # the late events' window: in logs, counted late, not in metrics (a group may have had
    # only late events there, so no metrics row at all)
    late_start = min(truth)[0]
    assert {e["ts"] // 10_000 for e in late} == {int(late_start.timestamp()) // 10}
    assert set(merged) <= set(truth)
    assert {k for k in truth if k[0] != late_start} <= set(merged)
    counted = 0
    for key, want in truth.items():
        if key[0] == late_start:
            counted += want.n - (merged[key].requests if key in merged else 0)
            continue
        got = merged[key]
        assert got.requests == want.n, key
        for col in ("p50", "p95", "p99"):
            exact = getattr(want, col)
            assert abs(getattr(got, f"latency_{col}") - exact) <= ALPHA * exact, (key, col)
    assert counted == len(late)
    # folded: the final windows well behind the watermark are down to one partial each
    behind = F.col("window_end") <= F.lit(watermark) - F.expr("INTERVAL 20 SECONDS")
    per_window = partials.where(behind).groupBy(
        "window_start", "source", "endpoint", "level").count()
    assert per_window.count() > 0
    assert per_window.where("count > 1").count() == 0
    assert partials.select("batch_id").distinct().count() > 1  # several batches did write


def test_version_one_layout_is_migrated_not_mixed(spark, proc_settings):
    s = proc_settings
    create_topic(s, partitions=1)
    events = make_events(300, seed=4, span_ms=60_000)
    produce(s, events[:200])
    StreamRunner(spark, s, available_now=True).run()
    # make the data dir look like version 1: old fingerprint, old metrics checkpoints and a
    # metrics table without histograms
    meta = stored_fingerprint(s)
    old = dict(meta["fingerprint"], query_version=1,
               sinks=meta["fingerprint"]["sinks"][:2], schema=meta["fingerprint"]["schema"][:2])
    (checkpoint_path(s, INGEST) / FINGERPRINT_FILE).write_text(
        json.dumps({**meta, "fingerprint": old}))
    for q in LEGACY_METRICS_QUERIES:
        (checkpoint_path(s, q) / "offsets").mkdir(parents=True)
    v1 = merge_partials(_table(spark, s, "metrics"), "10s").drop("provisional")
    v1.cache().count()
    (v1.selectExpr(*[c.split()[0] for c in METRICS_DDL.split(", ")]).write.format("delta")
     .mode("overwrite").option("overwriteSchema", "true").save(str(s.table_path("metrics"))))
    v1.unpersist()

    produce(s, events[200:])
    runner = StreamRunner(spark, s, available_now=True)
    assert runner.run() == 0, runner.error
    assert runner.migrated and "metrics rebuilt from logs" in runner.migrated
    assert read_status(s, "processor").migrated == runner.migrated
    assert stored_fingerprint(s)["fingerprint"] == query_fingerprint(s)
    assert stored_fingerprint(s)["app_id"] == meta["app_id"]
    assert not any(checkpoint_path(s, q).exists() for q in LEGACY_METRICS_QUERIES)
    assert list(s.checkpoint_dir.glob("legacy-v1-*/metrics_10s"))
    # the ingest checkpoint was kept: nothing read twice, nothing skipped
    assert _table(spark, s, "logs").count() == 300
    merged = merge_partials(_table(spark, s, "metrics"), "1m")
    assert merged.agg(F.sum("requests")).first()[0] == 300
    # the SQL views: one plain SELECT over merged windows, the same answer in every size
    register_tables(spark, s)
    for size in ("10s", "1m", "5m", "1h"):
        row = spark.sql(f"SELECT sum(requests) AS n, count_if(provisional) AS p "
                        f"FROM metrics_{size}").first()
        assert row.n == 300 and row.p >= 1, size


def _wait(cond, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError("timed out")
