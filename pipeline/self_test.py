"""The end-to-end self-test: one event through the real pipeline, headless, in about a minute.

Steps: Kafka (the embedded broker started, unless attached), a private topic, the
SparkSession, one JSON event produced, the processor's own ingest query run in
``availableNow`` mode on that topic into scratch Delta tables, and the row read back.
Each step prints its time and ✓ or ✗; the test passes only if all do (``lakewatch
self-test``, :mod:`pipeline.commands.self_test`, then exits 0). Everything the test started
is stopped, and its topic and scratch table are deleted; a broker or SparkSession that was
already running is left as it was.

The desktop app adds its own checks (an offscreen Qt window) through ``extra_steps``, since
``pipeline`` never imports Qt: ``run_self_test(settings, extra_steps=[("Qt window", fn)])``
where ``fn(settings)`` raises on failure and may return a short detail string.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pipeline.schemas import TABLE_LOGS
from pipeline.settings import Settings

#: An extra check: (title, function(settings) -> optional detail); raising means failure.
Step = tuple[str, Callable[[Settings], "str | None"]]

OK, FAIL, SKIP = "✓", "✗", "-"
STREAM_TIMEOUT_S = 300


@dataclass
class StepResult:
    title: str
    ok: bool | None  # None: skipped because an earlier step failed
    seconds: float
    detail: str = ""


class _Run:
    """Runs steps in order, printing each; after a failure the rest are skipped."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.results: list[StepResult] = []
        self.failed = False

    def step(self, title: str, fn: Callable[[], str | None]) -> Any:
        if self.failed:
            self._record(StepResult(title, None, 0.0, "skipped"))
            return None
        t0 = time.monotonic()
        try:
            detail = fn()
        except Exception as exc:  # the report is the product here: show why and go on
            self.failed = True
            msg = f"{type(exc).__name__}: {exc}".strip()
            self._record(StepResult(title, False, time.monotonic() - t0, msg))
            return None
        self._record(StepResult(title, True, time.monotonic() - t0, str(detail or "")))
        return detail

    def cleanup(self, title: str, fn: Callable[[], object]) -> None:
        """A teardown step: always runs; a failure fails the test but skips nothing."""
        t0 = time.monotonic()
        try:
            fn()
        except Exception as exc:
            self.failed = True
            self._record(StepResult(title, False, time.monotonic() - t0, f"{exc}"))
            return
        self._record(StepResult(title, True, time.monotonic() - t0))

    def _record(self, r: StepResult) -> None:
        self.results.append(r)
        mark = SKIP if r.ok is None else (OK if r.ok else FAIL)
        secs = "" if r.ok is None else f"{r.seconds:6.1f} s"
        line = f" {mark} {r.title:<34} {secs:>8}"
        if r.detail:
            first, *rest = r.detail.splitlines()
            line += f"  {first}"
            line += "".join(f"\n{'':48}{x}" for x in rest[-15:])
        print(line, file=self.out, flush=True)


def run_self_test(
    settings: Settings,
    extra_steps: Iterable[Step] = (),
    out: TextIO | None = None,
) -> list[StepResult]:
    """Run every check (then ``extra_steps``), print a line per step; return the results.

    Passed when every result's ``ok`` is True (see :func:`passed`).
    """
    out = out or sys.stdout
    run = _Run(out)
    state: dict[str, Any] = {}
    scratch = Path(tempfile.mkdtemp(prefix="self-test-", dir=_scratch_parent(settings)))
    topic = f"lakewatch-self-test-{uuid.uuid4().hex[:10]}"
    event_id = f"self-test-{uuid.uuid4()}"
    print(f"lakewatch self-test (kafka {settings.bootstrap_servers}"
          f"{', attached' if settings.attached else ''}; data {settings.data_dir})",
          file=out, flush=True)
    try:
        run.step("Kafka broker", lambda: _kafka(settings, state))
        run.step("topic", lambda: _topic(settings, topic, state))
        run.step("SparkSession", lambda: _spark(settings, state))
        run.step("produce one event", lambda: _produce(settings, topic, event_id, state))
        run.step("processor stream -> Delta (availableNow)",
                 lambda: _stream(settings, topic, scratch, state))
        run.step("read the event back from Delta", lambda: _read_back(state, event_id))
        for title, fn in extra_steps:
            run.step(title, lambda fn=fn: fn(settings))
    finally:
        if state.get("topic_created"):
            run.cleanup("delete the topic", lambda: _delete_topic(settings, topic))
        if state.get("spark_started_here"):
            from pipeline.spark_session_manager import stop_spark

            run.cleanup("stop Spark", stop_spark)
        if state.get("broker"):
            run.cleanup("stop the broker", state["broker"].stop)
        shutil.rmtree(scratch, ignore_errors=True)
    ok = passed(run.results)
    total = sum(r.seconds for r in run.results)
    print(f"self-test {'passed' if ok else 'FAILED'} in {total:.1f} s", file=out, flush=True)
    return run.results


def passed(results: list[StepResult]) -> bool:
    return bool(results) and all(r.ok for r in results)


# -- the steps -------------------------------------------------------------------------------


def _scratch_parent(settings: Settings) -> Path:
    parent = settings.data_dir / "self-test"
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _kafka(settings: Settings, state: dict[str, Any]) -> str:
    from pipeline.supervisor.daemon import kafka_ready

    if settings.attached:
        deadline = time.monotonic() + min(settings.broker.ready_timeout_s, 30.0)
        while not kafka_ready(settings, timeout=2.0):
            if time.monotonic() >= deadline:
                raise RuntimeError(f"no Kafka broker answers at {settings.bootstrap_servers}")
        return f"attached cluster {settings.bootstrap_servers} answers"
    from pipeline.broker import EmbeddedBroker

    broker = EmbeddedBroker(settings)
    running = broker.running_pid()
    if running is not None:
        broker.wait_ready()
        return f"embedded broker already running (pid {running})"
    pid = broker.start()
    state["broker"] = broker  # stop it afterwards: we started it
    return f"embedded broker started (pid {pid}) on {settings.bootstrap_servers}"


def _topic(settings: Settings, topic: str, state: dict[str, Any]) -> str:
    from pipeline.kafka_config import ensure_topic

    state["topic_created"] = ensure_topic(settings, topic, partitions=1)
    return topic


def _delete_topic(settings: Settings, topic: str) -> None:
    from confluent_kafka.admin import AdminClient

    from pipeline.kafka_config import admin_config

    admin = AdminClient(admin_config(settings))  # must outlive its futures
    futures = admin.delete_topics([topic], operation_timeout=30)
    futures[topic].result(timeout=30)


def _spark(settings: Settings, state: dict[str, Any]) -> str:
    from pyspark.sql import SparkSession

    from pipeline.spark_session_manager import get_spark

    existing = SparkSession.getActiveSession()
    spark = get_spark(settings)
    state["spark"] = spark
    state["spark_started_here"] = existing is None
    return f"Spark {spark.version}" + (" (already running)" if existing is not None else "")


def _produce(settings: Settings, topic: str, event_id: str, state: dict[str, Any]) -> str:
    from confluent_kafka import Producer

    from pipeline.kafka_config import producer_config

    event = {
        "event_id": event_id, "ts": int(time.time() * 1000), "level": "INFO",
        "source": "self-test", "method": "GET", "endpoint": "/self-test", "status": 200,
        "latency_ms": 12.5, "bytes": 512, "client_ip": "127.0.0.1",
        "user_agent": "lakewatch-self-test", "message": "self-test event",
    }
    errors: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            state["offset"] = (msg.partition(), msg.offset())

    producer = Producer(producer_config(settings))
    producer.produce(topic, json.dumps(event).encode(), key=event_id.encode(),
                     headers=[("format", b"json")], on_delivery=delivered)
    left = producer.flush(30)
    if left or errors or "offset" not in state:
        raise RuntimeError(f"not delivered: {errors or f'{left} message(s) still queued'}")
    state["event"] = event
    partition, offset = state["offset"]
    return f"delivered to {topic}[{partition}] at offset {offset}"


def _stream(settings: Settings, topic: str, scratch: Path, state: dict[str, Any]) -> str:
    """The processor's ingest query (parse, dedup, exactly-once Delta writes) in availableNow
    mode, on the self-test topic, into tables and checkpoints under ``scratch``."""
    from pipeline.delta_tables import ensure_tables
    from pipeline.runners.checkpoints import INGEST, check_checkpoint
    from pipeline.runners.ingest import start_ingest
    from pipeline.runners.progress import ProcessorStats

    scratch_settings = settings.model_copy(deep=True)
    scratch_settings.storage.data_dir = scratch
    scratch_settings.kafka.topic = topic
    scratch_settings.processor.starting_offsets = "earliest"
    state["scratch_settings"] = scratch_settings
    spark = state["spark"]
    # What the processor does at start, minus naming the tables in the session catalog: the
    # session may be shared (the desktop app's), and its names must keep meaning the real data.
    ensure_tables(spark, scratch_settings)
    app_id = check_checkpoint(scratch_settings, INGEST)
    stats = ProcessorStats()
    query = start_ingest(spark, scratch_settings, app_id, stats, available_now=True)
    try:
        if not query.awaitTermination(STREAM_TIMEOUT_S):
            raise RuntimeError(f"the availableNow query did not finish in {STREAM_TIMEOUT_S} s")
        if query.exception() is not None:
            raise RuntimeError(str(query.exception()))
    finally:
        query.stop()
    return f"{stats.rows_logged} row(s) to logs, {stats.rows_quarantined} quarantined"


def _read_back(state: dict[str, Any], event_id: str) -> str:
    spark = state["spark"]
    rows = (
        spark.read.format("delta").load(str(state["scratch_settings"].table_path(TABLE_LOGS)))
        .where(f"event_id = '{event_id}'")
        .collect()
    )
    if len(rows) != 1:
        raise RuntimeError(f"expected exactly 1 row with event_id {event_id}, found {len(rows)}")
    row = rows[0].asDict()
    sent = state["event"]
    expected = {k: sent[k] for k in ("level", "source", "method", "endpoint", "status",
                                     "latency_ms", "bytes", "client_ip", "message")}
    got = {k: row[k] for k in expected}
    if got != expected:
        raise RuntimeError(f"row differs from the event sent: {got} != {expected}")
    if int(row["ts"].timestamp() * 1000) != sent["ts"]:
        raise RuntimeError(f"ts {row['ts']} != {sent['ts']} ms")
    partition, offset = state["offset"]
    if (row["kafka_partition"], row["kafka_offset"]) != (partition, offset):
        raise RuntimeError("Kafka coordinates of the row do not match the delivery report")
    return "1 row, every field as sent"
