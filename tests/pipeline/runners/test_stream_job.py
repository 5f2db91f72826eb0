"""The streaming processor end to end: real broker, real Spark, real Delta tables on disk."""

from __future__ import annotations

import json
import threading
import time

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from pyspark.sql import functions as F

from pipeline.delta_tables import WriterLock, register_tables
from pipeline.kafka_config import admin_config
from pipeline.latency_hist import ALPHA
from pipeline.runners.batch_jobs import run_optimize
from pipeline.runners.checkpoints import INGEST, CheckpointMismatch, check_checkpoint
from pipeline.runners.progress import kafka_lag, processed_offsets
from pipeline.runners.stream_job import EXIT_DATA_LOSS, StreamRunner
from pipeline.status import read_status
from pipeline.transforms.metrics import merge_partials
from tests.helpers.processor import (
    create_topic,
    end_offsets,
    exact_rank_value,
    expected_metrics,
    make_events,
    produce,
)

WATERMARK_S = 5
# A shared 2-core machine can be slow to compile the first micro-batch: generous limits.
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture
def proc_settings(kafka_settings):
    s = kafka_settings
    s.processor.watermark = f"{WATERMARK_S} seconds"
    s.processor.trigger_interval = "1 second"
    s.processor.status_interval_s = 0.5
    return s


def delta(spark, settings, name):
    return spark.read.format("delta").load(str(settings.table_path(name)))


def wait_for_rows(spark, settings, n: int, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    log_dir = settings.table_path("logs") / "_delta_log"
    while time.monotonic() < deadline:
        if log_dir.is_dir() and delta(spark, settings, "logs").count() >= n:
            return
        time.sleep(1)


def run_available_now(spark, settings) -> StreamRunner:
    runner = StreamRunner(spark, settings, available_now=True)
    code = runner.run()
    assert code == 0, runner.error
    return runner


def test_events_land_exactly_once_with_exact_metrics(spark, proc_settings):
    s = proc_settings
    create_topic(s, partitions=3)
    events = make_events(3000)
    repeats = events[100:200]  # producer-side resends: same event_id, must be dropped
    produce(s, events + repeats)

    run_available_now(spark, s)

    logs = delta(spark, s, "logs")
    assert logs.count() == 3000
    assert logs.select("event_id").distinct().count() == 3000
    assert delta(spark, s, "logs_quarantine").count() == 0
    assert logs.agg(F.min("kafka_offset")).first()[0] == 0
    assert {r.raw_format for r in logs.select("raw_format").distinct().collect()} == {"json"}

    max_ts_ms = max(e["ts"] for e in events)
    watermark_ms = max_ts_ms - WATERMARK_S * 1000
    partials = delta(spark, s, "metrics")
    assert partials.where("latency_hist IS NULL OR watermark IS NULL").count() == 0
    for size, size_s in (("10s", 10), ("1m", 60)):
        want = expected_metrics(events, size_s)
        rows = {(r.window_start, r.source, r.endpoint, r.level): r
                for r in merge_partials(partials, size).collect()}
        # every window is there at once (provisional ones too), and nothing else
        assert set(rows) == set(want), size
        for key, row in rows.items():
            w = want[key]
            got = {f: getattr(row, f) for f in w if f != "latencies"}
            assert got == {f: v for f, v in w.items() if f != "latencies"}, key
            assert row.window_end.timestamp() - row.window_start.timestamp() == size_s
            assert row.provisional == (row.window_end.timestamp() * 1000 > watermark_ms), key
            for p, col in ((0.5, "latency_p50"), (0.95, "latency_p95"), (0.99, "latency_p99")):
                exact = exact_rank_value(w["latencies"], p)
                assert abs(getattr(row, col) - exact) <= ALPHA * exact, (key, col)

    st = read_status(s, "processor")
    assert st.state == "stopped" and st.rows_logged_total == 3000
    assert st.last_error is None and st.data_loss is False
    assert st.lag == 0
    assert st.last_commit_version >= 1

    register_tables(spark, s)
    assert spark.sql("SELECT count(*) AS n FROM logs").first().n == 3000


def test_malformed_messages_are_quarantined_and_stream_keeps_going(spark, proc_settings):
    s = proc_settings
    create_topic(s, partitions=1, config={"max.message.bytes": str(3_000_000)})
    good = make_events(50, span_ms=10_000)
    bad = [
        b'{"event_id": "x1", "ts": 17',                                  # bad JSON
        bytes([0x00, 0xFF, 0x13, 0x37, 0xC0, 0xAF]) * 10,                # binary garbage
        {"event_id": "x2", "ts": good[0]["ts"], "level": "INFO"},        # missing fields
        {**good[0], "event_id": "x3", "status": "ok"},                    # wrong type
        json.dumps({**good[0], "event_id": "x4",
                    "message": "m" * 2_000_000}).encode(),                 # 2 MB
        b'{"event_id": "x5", "message": "\xff\xfe broken"}',             # invalid UTF-8
    ]
    more = make_events(50, span_ms=10_000, seed=8)
    produce(s, good + bad + more, **{"message.max.bytes": 5_000_000})

    run_available_now(spark, s)

    assert delta(spark, s, "logs").count() == 100
    q = {r.kafka_offset: r for r in delta(spark, s, "logs_quarantine").collect()}
    reasons = {off - 50: r.reason.split(":")[0] for off, r in q.items()}
    assert reasons == {0: "malformed JSON", 1: "invalid UTF-8", 2: "missing field",
                       3: "wrong type", 4: "oversize", 5: "invalid UTF-8"}
    assert q[50 + 2].reason == "missing field: source, method, endpoint, status"
    assert q[50 + 4].reason.startswith("oversize: 2000")
    assert len(bytes(q[50 + 4].raw)) > 2_000_000  # raw bytes kept whole
    assert bytes(q[50 + 1].raw) == bad[1]
    assert all(r.kafka_partition == 0 and r.kafka_topic == s.kafka.topic for r in q.values())
    assert 100 + len(q) == end_offsets(s) == 106


def test_changed_query_is_refused_against_old_checkpoint(proc_settings):
    s = proc_settings
    app_id = check_checkpoint(s, INGEST)
    assert check_checkpoint(s, INGEST) == app_id  # same query: accepted, same txn app id
    changed = s.model_copy(deep=True)
    changed.kafka.topic = "another-topic"
    with pytest.raises(CheckpointMismatch) as exc:
        check_checkpoint(changed, INGEST)
    msg = str(exc.value)
    assert "refusing to start query 'ingest'" in msg
    assert f"source: was 'kafka:{s.kafka.topic}', now 'kafka:another-topic'" in msg
    assert "move that checkpoint directory away" in msg


def test_retention_loss_fails_loudly_and_is_reported(spark, proc_settings):
    s = proc_settings
    create_topic(s, partitions=1)
    produce(s, make_events(20, span_ms=5000, seed=1), partition=0)
    run_available_now(spark, s)
    produce(s, make_events(30, span_ms=5000, seed=2), partition=0)
    # Retention deletes offsets 20..34 before the processor saw them.
    admin = AdminClient(admin_config(s))
    fut = admin.delete_records([TopicPartition(s.kafka.topic, 0, 35)])
    for f in fut.values():
        f.result(timeout=30)

    runner = StreamRunner(spark, s, available_now=True)
    assert runner.run() == EXIT_DATA_LOSS
    st = read_status(s, "processor")
    assert st.state == "failed" and st.data_loss is True
    assert "lost" in st.last_error.lower() or "data_loss" in st.last_error.lower()
    assert delta(spark, s, "logs").count() == 20  # nothing silently skipped


@pytest.mark.slow  # OPTIMIZE ZORDER of three tables inside the writer takes minutes on 2 cores
def test_optimize_inside_writer_while_streaming_keeps_rows(spark, proc_settings):
    s = proc_settings
    s.processor.compact_every_s = None  # the rounds would compact the files this test counts
    create_topic(s, partitions=3)
    batches = [make_events(400, seed=i, span_ms=60_000) for i in range(8)]
    n = sum(len(b) for b in batches)
    runner = StreamRunner(spark, s)
    writer_lock = WriterLock(s)  # what run_stream holds in a real writer process
    writer_lock.acquire()
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    results = []
    try:
        for i, b in enumerate(batches):
            produce(s, b)
            if i <= 3:  # each of the first four batches lands in its own commit: files to compact
                wait_for_rows(spark, s, (i + 1) * 400)
            else:
                time.sleep(1.0)
            if i == 3:  # `lakewatch process --mode optimize` while the writer runs: delegated
                # to the writer's own maintenance (run_maintenance, as when it is scheduled)
                assert run_optimize(s, wait_s=900) == 0
                assert runner.stats.optimize["ok"] is True
                results.append(runner.stats.optimize["tables"])
        wait_for_rows(spark, s, n)
    finally:
        runner.stop_event.set()
        thread.join(120)
        writer_lock.release()
    assert runner.error is None
    logs = delta(spark, s, "logs")
    assert logs.count() == n
    assert logs.select("event_id").distinct().count() == n
    assert {r["table"]: r for r in results[0]}["logs"]["files_before"] >= 4
    for tables in results:
        assert {r["table"]: r for r in tables}["logs"]["zorder"] == ["ts", "source", "level"]
    # The stream keeps appending while OPTIMIZE runs, so file counts before/after a run do
    # not compare; the OPTIMIZE commits themselves say what they compacted.
    history = spark.sql(f"DESCRIBE HISTORY delta.`{s.table_path('logs')}`").collect()
    optimized = [h.operationMetrics for h in history if h.operation == "OPTIMIZE"]
    assert len(optimized) >= 1
    assert any(int(m["numRemovedFiles"]) > int(m["numAddedFiles"]) for m in optimized)


def test_lag_and_processed_offsets_from_a_query_progress():
    progress = {"sources": [{
        "endOffset": json.dumps({"web-logs": {"0": 10, "1": 5}}),
        "latestOffset": {"web-logs": {"0": 12, "1": 5}},
    }]}
    assert kafka_lag(progress) == 2
    assert processed_offsets(progress) == 15
    before_first = {"sources": [{"endOffset": None, "latestOffset": "not json"}]}
    assert kafka_lag(before_first) is None and processed_offsets(before_first) is None
