"""End-to-end benchmark of the streaming processor: Kafka -> Spark -> Delta ``logs``.

Measures, with a real embedded broker and the real processor (in this process):

1. Sustained throughput: a short sweep of producer rates; for each rate events are produced
   for ``--seconds`` while the stream runs, and the rate counts as sustained when the
   processor's Kafka lag at the end is below one second's worth of events plus one
   ``maxOffsetsPerTrigger``. Reported: the highest sustained rate.
2. Freshness at a fixed rate: produce -> row committed to ``logs``, p50 / p99, from each row's
   produce time (its ``ts``) and the commit time of the Delta version that added its file.

Baseline (same run, same broker, same events): a plain confluent-kafka consumer reading the
topic (throughput) and produce -> consume latency. Ratios are processor / baseline.

The machine is shared (2 cores): the sweep is deliberately short; treat the figures as a
lower bound. Usage: ``python bench/end_to_end.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Consumer, Producer  # noqa: E402

from pipeline.kafka_config import consumer_config, ensure_topic, producer_config  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _event(i: int, prefix: str) -> bytes:
    now = int(time.time() * 1000)
    return json.dumps({
        "event_id": f"{prefix}-{i}", "ts": now, "level": "INFO", "source": f"svc{i % 6}",
        "method": "GET", "endpoint": f"/e{i % 20}", "status": 200 if i % 50 else 503,
        "latency_ms": float(i % 300), "bytes": 1000 + i % 500, "client_ip": "10.0.0.1",
        "user_agent": "bench", "message": "bench event",
    }).encode()


def produce_at(settings, rate: float, seconds: float, prefix: str) -> int:
    """Produce ``rate`` events/s for ``seconds`` (paced in 50 ms slices); returns the count."""
    producer = Producer(producer_config(settings))
    sent, start = 0, time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(rate * elapsed)
        while sent < due:
            try:
                producer.produce(settings.kafka.topic, _event(sent, prefix))
                sent += 1
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        time.sleep(0.05)
    producer.flush(60)
    return sent


def baseline_consume(settings, expected: int, timeout: float = 120) -> float:
    """Plain consumer reading the whole topic after the run: events/s."""
    c = Consumer(consumer_config(settings, f"bench-{time.time()}"))
    c.subscribe([settings.kafka.topic])
    got, start = 0, time.monotonic()
    try:
        while got < expected and time.monotonic() - start < timeout:
            got += sum(1 for m in c.consume(10_000, 1.0) if not m.error())
    finally:
        c.close()
    return got / (time.monotonic() - start)


def baseline_latency(settings, rate: float, seconds: float) -> list[float]:
    """Produce at ``rate`` while a plain consumer reads: produce -> consume ms per event."""
    c = Consumer(consumer_config(settings, f"bench-lat-{time.time()}",
                                 **{"auto.offset.reset": "latest"}))
    c.subscribe([settings.kafka.topic])
    while not c.assignment():
        c.poll(0.2)
    lat: list[float] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            for m in c.consume(10_000, 0.2):
                if not m.error():
                    lat.append(time.time() * 1000 - m.timestamp()[1])

    t = threading.Thread(target=read, daemon=True)
    t.start()
    produce_at(settings, rate, seconds, "baseline")
    time.sleep(2)
    done.set()
    t.join()
    c.close()
    return lat


def freshness_ms(spark, settings, prefix: str) -> list[float]:
    """Per row of ``prefix``: Delta commit time of its file minus its produce time (ts)."""
    from pyspark.sql import functions as F

    log_dir = settings.table_path("logs") / "_delta_log"
    commit_ts: dict[str, int] = {}
    for f in log_dir.glob("*.json"):
        actions = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        ts = next((a["commitInfo"]["timestamp"] for a in actions if "commitInfo" in a), None)
        for a in actions:
            if "add" in a and ts is not None:
                commit_ts[Path(a["add"]["path"]).name] = ts
    rows = (
        spark.read.format("delta").load(str(settings.table_path("logs")))
        .filter(F.col("event_id").startswith(prefix + "-"))
        .select(F.col("_metadata.file_name").alias("f"),
                (F.unix_micros("ts") / 1000).alias("ts_ms"))
        .collect()
    )
    return [commit_ts[r.f] - r.ts_ms for r in rows if r.f in commit_ts]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))] if s else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one short rate step, 1 freshness run")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rates", default="1000,3000,6000")
    ap.add_argument("--fixed-rate", type=float, default=500.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    if args.quick:
        rates, args.runs, args.seconds = rates[:1], 1, min(args.seconds, 15.0)

    from pipeline.broker import EmbeddedBroker
    from pipeline.spark_session_manager import get_spark, stop_spark
    from pipeline.streaming_processor import StreamRunner, kafka_lag

    tmp = Path(tempfile.mkdtemp(prefix="lakewatch-bench-"))
    base = load_settings(None, {
        "storage.data_dir": str(tmp / "data"), "broker.port": _free_port(),
        "broker.controller_port": _free_port(), "processor.trigger_interval": "1 second",
        "processor.watermark": "10 seconds", "processor.status_interval_s": 1.0,
    })
    broker = EmbeddedBroker(base)
    broker.start()
    spark = get_spark(base)
    results: dict[str, object] = {}
    try:
        sustained = None
        for rate in rates:
            s = base.model_copy(deep=True)
            s.storage.data_dir = tmp / f"rate-{int(rate)}"
            s.kafka.topic = f"bench-rate-{int(rate)}"
            ensure_topic(s)
            runner = StreamRunner(spark, s)
            t = threading.Thread(target=runner.run, daemon=True)
            t.start()
            time.sleep(5)  # queries up
            sent = produce_at(s, rate, args.seconds, f"r{int(rate)}")
            time.sleep(2.0)
            lag = kafka_lag(runner.stats.progress.get("ingest") or {})
            runner.stop_event.set()
            t.join(120)
            ok = lag is not None and lag <= rate + s.processor.max_offsets_per_trigger
            base_rate = baseline_consume(s, sent)
            print(f"rate {rate:>7.0f}/s: sent {sent}, lag at end {lag}, "
                  f"{'sustained' if ok else 'NOT sustained'}; baseline consumer "
                  f"{base_rate:,.0f}/s", flush=True)
            if ok:
                sustained = rate
        results["sustained_events_per_s"] = sustained

        fresh_p50, fresh_p99, base_p50, base_p99 = [], [], [], []
        for run in range(args.runs):
            s = base.model_copy(deep=True)
            s.storage.data_dir = tmp / f"fresh-{run}"
            s.kafka.topic = f"bench-fresh-{run}"
            ensure_topic(s)
            runner = StreamRunner(spark, s)
            t = threading.Thread(target=runner.run, daemon=True)
            t.start()
            time.sleep(5)
            prefix = f"f{run}"
            sent = produce_at(s, args.fixed_rate, args.seconds, prefix)
            time.sleep(5.0)
            runner.stop_event.set()
            t.join(120)
            lat = freshness_ms(spark, s, prefix)
            s.kafka.topic = f"bench-baseline-{run}"
            ensure_topic(s)
            consume_lat = baseline_latency(s, args.fixed_rate, args.seconds)
            fresh_p50.append(pct(lat, 0.5))
            fresh_p99.append(pct(lat, 0.99))
            base_p50.append(pct(consume_lat, 0.5))
            base_p99.append(pct(consume_lat, 0.99))
            print(f"freshness run {run}: {len(lat)}/{sent} rows, p50 {fresh_p50[-1]:.0f} ms, "
                  f"p99 {fresh_p99[-1]:.0f} ms", flush=True)
        p50, p99 = statistics.median(fresh_p50), statistics.median(fresh_p99)
        results.update(freshness_p50_ms=p50, freshness_p99_ms=p99, fixed_rate=args.fixed_rate)
        print("\n== summary (medians) ==")
        print(f"highest sustained rate in the sweep {rates}: {sustained} events/s")
        print(f"produce -> visible in logs at {args.fixed_rate:.0f}/s: p50 {p50:.0f} ms, "
              f"p99 {p99:.0f} ms (trigger 1 s)")
        b50, b99 = statistics.median(base_p50), statistics.median(base_p99)
        print(f"baseline produce -> plain consumer: p50 {b50:.0f} ms, p99 {b99:.0f} ms; "
              f"ratio processor/baseline p50 {p50 / max(b50, 1e-9):.1f}x")
        results.update(baseline_p50_ms=b50, baseline_p99_ms=b99)
        print(json.dumps(results))
    finally:
        stop_spark()
        broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
