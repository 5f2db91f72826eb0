"""The floor: what Spark itself moves from Kafka into Delta here, beside the processor's catch-up.

Same machine, same run, same topic of real generated events (``python -m pipeline.log_generator
--count N --no-throttle``), Spark started and warmed before any timing:

- ``floor batch``: ``spark.read`` of the whole topic -> ``from_json`` of the event fields ->
  Delta append partitioned by ``date`` (the smallest job that lands the same rows);
- ``floor stream``: the same as an ``availableNow`` stream with ``maxOffsetsPerTrigger`` as the
  processor's and ``dropDuplicatesWithinWatermark`` on ``event_id`` (the processor's dedup);
- ``processor``: ``lakewatch process --mode stream --available-now`` in this process
  (:class:`~pipeline.runners.stream_job.StreamRunner`): parsing with quarantine reasons, dedup,
  ``logs`` + ``metrics`` partials from each micro-batch (one query);
- ``processor rocksdb`` (with ``--rocksdb``): the same with the dedup state in RocksDB with
  changelog checkpointing (``processor.state_store = "rocksdb"``) instead of Spark's default.

Each job writes into its own fresh directory; rows are counted after each (every job must land
every event once). Jobs rotate order between runs so JIT warm-up favours none. Reported: the
medians of ``--runs`` runs of events/s and of the Spark JVM's CPU per event, and the processor's
ratio to each floor job (issue 14: catch-up >= 0.6x the floor stream).

Usage: ``python bench/floor.py [--events 1000000] [--runs 3]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cpu_split import diff, jvm_thread_cpu_s  # noqa: E402
from bench.end_to_end import topic_end  # noqa: E402
from bench.ports import free_port  # noqa: E402
from pipeline.components import child_env  # noqa: E402
from pipeline.kafka_config import ensure_topic, spark_kafka_options  # noqa: E402
from pipeline.schemas import EVENT_FIELDS  # noqa: E402
from pipeline.settings import Settings, load_settings  # noqa: E402

EVENT_DDL = ("event_id STRING, ts BIGINT, level STRING, source STRING, method STRING, "
             "endpoint STRING, status INT, latency_ms DOUBLE, bytes BIGINT, client_ip STRING, "
             "user_agent STRING, message STRING")


def fill_topic(settings: Settings, events: int, seed: int) -> float:
    """``events`` real generator events into the topic, as fast as the generator goes; seconds.

    Event time ends about now (1,000 simulated events a second, starting far enough back), so
    the processor's clock-skew checks accept every one."""
    ensure_topic(settings)
    start_ms = int((time.time() - events / 1000.0 - 60) * 1000)
    argv = [sys.executable, "-m", "pipeline.log_generator", "--count", str(events),
            "--no-throttle", "--rate", "1000", "--speedup", "1", "--seed", str(seed),
            "--start-time", str(start_ms)]
    t0 = time.monotonic()
    subprocess.run(argv, env=child_env(settings), check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def _events(spark, frame):
    """Kafka rows -> the event columns, ``ts`` as a timestamp, ``date`` for the partition."""
    from pyspark.sql import functions as F

    ev = frame.select(F.from_json(F.col("value").cast("string"), EVENT_DDL).alias("e"),
                      F.col("timestamp").alias("kafka_timestamp"))
    return ev.select(*[F.col(f"e.{f}").alias(f) for f in EVENT_FIELDS], "kafka_timestamp") \
        .withColumn("ts", F.timestamp_millis("ts")).withColumn("date", F.to_date("ts"))


def floor_batch(spark, settings: Settings, out: Path) -> None:
    reader = spark.read.format("kafka")
    for key, value in spark_kafka_options(settings).items():
        reader = reader.option(key, value)
    frame = reader.option("subscribe", settings.kafka.topic) \
        .option("startingOffsets", "earliest").option("endingOffsets", "latest").load()
    _events(spark, frame).write.format("delta").mode("append").partitionBy("date") \
        .save(str(out / "table"))


def floor_stream(spark, settings: Settings, out: Path) -> None:
    reader = spark.readStream.format("kafka")
    for key, value in spark_kafka_options(settings).items():
        reader = reader.option(key, value)
    frame = reader.option("subscribe", settings.kafka.topic) \
        .option("startingOffsets", "earliest") \
        .option("maxOffsetsPerTrigger", str(settings.processor.max_offsets_per_trigger)).load()
    deduped = _events(spark, frame).withWatermark("kafka_timestamp", "30 seconds") \
        .dropDuplicatesWithinWatermark(["event_id"])
    query = deduped.writeStream.format("delta").partitionBy("date") \
        .option("checkpointLocation", str(out / "checkpoint")) \
        .trigger(availableNow=True).start(str(out / "table"))
    query.awaitTermination()
    if query.exception() is not None:
        raise RuntimeError(str(query.exception()))


def processor(spark, settings: Settings, out: Path, marks: dict[str, float],
              state_store: str = "hdfs") -> None:
    """The real processor catching up (``--available-now``); marks when its ingest ended."""
    from pipeline.runners.checkpoints import INGEST
    from pipeline.runners.stream_job import StreamRunner
    from pipeline.spark_session_manager import spark_conf

    s = processor_settings(settings, out)
    s.processor.state_store = state_store
    key = "spark.sql.streaming.stateStore.providerClass"
    default = "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider"
    for k in (key, "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled"):
        value = spark_conf(s).get(k)
        spark.conf.set(k, value if value is not None else (default if k == key else "false"))
    runner = StreamRunner(spark, s, available_now=True)
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            q = runner.queries.get(INGEST)
            if q is not None and not q.isActive and "ingest_end" not in marks:
                marks["ingest_end"] = time.monotonic()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        rc = runner.run()
    finally:
        done.set()
        watcher.join()
    if rc != 0:
        raise RuntimeError(f"processor exited {rc}: {runner.error}")


def processor_settings(settings: Settings, out: Path) -> Settings:
    s = settings.model_copy(deep=True)
    s.storage.data_dir = out / "data"
    return s


def rows_landed(spark, job: str, settings: Settings, out: Path) -> tuple[int, int]:
    """(rows, distinct event ids) the job wrote."""
    from pyspark.sql import functions as F

    path = (processor_settings(settings, out).table_path("logs") if job.startswith("processor")
            else out / "table")
    row = spark.read.format("delta").load(str(path)) \
        .agg(F.count(F.lit(1)).alias("n"), F.countDistinct("event_id").alias("d")).first()
    return int(row["n"]), int(row["d"])


def metrics_requests(spark, settings: Settings, out: Path) -> int:
    """Events the processor's ``metrics`` partials count (every event, once: none is late in
    a catch-up of events in time order)."""
    from pyspark.sql import functions as F

    path = processor_settings(settings, out).table_path("metrics")
    return int(spark.read.format("delta").load(str(path)).agg(F.sum("requests")).first()[0])


def timed(spark, job: str, run: Callable[[dict[str, float]], None]) -> dict[str, float]:
    jvm = int(spark._jvm.java.lang.ProcessHandle.current().pid())
    cpu0, marks = jvm_thread_cpu_s(jvm), {}
    t0 = time.monotonic()
    run(marks)
    seconds = time.monotonic() - t0
    out = {"seconds": seconds, "cpu": diff(jvm_thread_cpu_s(jvm), cpu0)["total"]}
    if "ingest_end" in marks:
        out["ingest_seconds"] = marks["ingest_end"] - t0
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--warmup-events", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rocksdb", action="store_true",
                    help="also time the processor with the RocksDB state store")
    args = ap.parse_args()

    from pipeline.broker import EmbeddedBroker
    from pipeline.spark_session_manager import get_spark, stop_spark

    tmp = Path(tempfile.mkdtemp(prefix="lakewatch-floor-"))
    base = load_settings(None, {
        "storage.data_dir": str(tmp / "data"), "broker.port": free_port(),
        "broker.controller_port": free_port(),
    })
    broker = EmbeddedBroker(base)
    broker.start()
    jobs: dict[str, Callable] = {
        "floor batch": lambda s, out: (lambda marks: floor_batch(spark, s, out)),
        "floor stream": lambda s, out: (lambda marks: floor_stream(spark, s, out)),
        "processor": lambda s, out: (lambda marks: processor(spark, s, out, marks)),
    }
    if args.rocksdb:
        jobs["processor rocksdb"] = lambda s, out: (
            lambda marks: processor(spark, s, out, marks, "rocksdb"))
    results: dict[str, list[dict[str, float]]] = {job: [] for job in jobs}
    try:
        warm = base.model_copy(deep=True)
        warm.kafka.topic = "floor-warmup"
        full = base.model_copy(deep=True)
        full.kafka.topic = "floor-events"
        print(f"generator: {args.warmup_events:,} warm-up events in "
              f"{fill_topic(warm, args.warmup_events, args.seed + 1):.1f} s, "
              f"{args.events:,} events in {fill_topic(full, args.events, args.seed):.1f} s "
              f"(topic holds {topic_end(full):,})", flush=True)
        spark = get_spark(base)
        for job, make in jobs.items():  # Spark start and first planning: not timed
            out = tmp / f"warmup-{job.replace(' ', '-')}"
            make(warm, out)({})
            shutil.rmtree(out, ignore_errors=True)
        names = list(jobs)
        for run in range(args.runs):
            order = names[run % len(names):] + names[:run % len(names)]
            for job in order:
                out = tmp / f"run{run}-{job.replace(' ', '-')}"
                r = timed(spark, job, jobs[job](full, out))
                rows, ids = rows_landed(spark, job, full, out)
                if job.startswith("processor"):
                    r["metrics_requests"] = metrics_requests(spark, full, out)
                r.update(rows=rows, ids=ids, events_per_s=args.events / r["seconds"],
                         cpu_us_per_event=r["cpu"] / args.events * 1e6)
                results[job].append(r)
                extra = (f", {r['metrics_requests']:,} events in metrics"
                         if "metrics_requests" in r else "")
                print(f"run {run} {job:>17}: {r['seconds']:6.1f} s, "
                      f"{r['events_per_s']:9,.0f} ev/s, Spark CPU {r['cpu_us_per_event']:5.0f} "
                      f"us/event, {rows:,} rows ({ids:,} distinct ids){extra}", flush=True)
                if rows != args.events or ids != args.events:
                    print(f"    !! {job} landed {rows:,} rows / {ids:,} ids of {args.events:,}")
                shutil.rmtree(out, ignore_errors=True)
        med = statistics.median
        summary = {job: {k: med(r[k] for r in rs) for k in rs[0]} for job, rs in results.items()}
        p = summary["processor"]["events_per_s"]
        print(f"\n== medians of {args.runs} runs, {args.events:,} events ==")
        for job, s in summary.items():
            print(f"{job:>17}: {s['events_per_s']:9,.0f} ev/s, {s['cpu_us_per_event']:5.0f} us "
                  f"CPU/event; processor / {job}: {p / s['events_per_s']:.2f}")
        print(json.dumps({"events": args.events, "runs": args.runs, "summary": summary}))
    finally:
        stop_spark()
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
