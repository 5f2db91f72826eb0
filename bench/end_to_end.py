"""End-to-end benchmark of the streaming processor: generator -> Kafka -> Spark -> Delta.

Real parts only: the embedded broker, the real generator as its own process
(``python -m pipeline.log_generator --rate R``, paced, seeded), and the real processor
(``StreamRunner``: one query writing ``logs`` and ``metrics`` partials, in this process's
SparkSession).

1. Sustained throughput: for each rate of ``--rates`` the generator produces for
   ``--seconds`` while both queries run; the lag (topic high watermarks minus the end offsets
   of the last completed ingest batch) is sampled every second. A rate counts as sustained
   when the lag is bounded: not growing (median of the step's last quarter <= 1.25 x the
   second quarter's + one second of events) and under ``--lag-bound-s`` seconds of events.
   Reported: the highest sustained rate, the generator's achieved rate and the processor's
   rate (events / (step + time to drain the backlog)) at each step.
2. Freshness at ``--fixed-rate``: produce -> row committed to ``logs`` (each row's ``ts``,
   which the paced generator sets to its produce time, against the commit time of the Delta
   version that added the row's file) and produce -> ``metrics`` 10 s window visible
   (provisional): per window, the commit of its last partial minus the window's end, i.e.
   from the window's last possible produce until all of it is in Delta; p50 / p99, medians
   of ``--runs`` runs.

Baseline, same run, same broker: a plain confluent-kafka consumer reading the same topic
(throughput ceiling of the machine's consume path) and produce -> consume latency of events
produced at the fixed rate. Ratios are processor / baseline.

Usage: ``python bench/end_to_end.py [--rates 1000,2000,3000,4000] [--seconds 120]
[--fixed-rate 10000] [--runs 3]``; ``--seconds 300`` gives the issue's 5-minute criterion;
``--runs 0`` runs the sweep only. Each step also prints the cores each process kept busy and
the Spark JVM's CPU per event logged, split by thread group (``bench/cpu_split.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Consumer, TopicPartition  # noqa: E402

from bench.cpu_split import diff, jvm_thread_cpu_s, process_cpu_s  # noqa: E402
from bench.ports import free_port  # noqa: E402
from pipeline.components import child_env  # noqa: E402
from pipeline.kafka_config import consumer_config, ensure_topic  # noqa: E402
from pipeline.runners.progress import processed_offsets  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402
from pipeline.sources.sampling import daily_curve  # noqa: E402


def start_generator(settings, rate: float, seconds: float, seed: int) -> subprocess.Popen:
    """The real generator, paced at ``rate`` events/s of wall time, for ``seconds``.

    Its ``--rate`` is the daily mean and event time is now, so the daily traffic curve would
    scale the step by 0.45-1.55 with the hour the bench runs at: the requested rate is divided
    by the curve's value now (flat over a step of minutes)."""
    mean_rate = rate / float(daily_curve(time.time() * 1000.0))
    argv = [sys.executable, "-m", "pipeline.log_generator", "--rate", f"{mean_rate:.1f}",
            "--duration", str(seconds), "--seed", str(seed), "--speedup", "1"]
    return subprocess.Popen(argv, env=child_env(settings), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def topic_end(settings) -> int:
    """Messages in the topic (sum of the partitions' high watermarks)."""
    c = Consumer(consumer_config(settings, f"bench-end-{time.time()}"))
    try:
        md = c.list_topics(settings.kafka.topic, timeout=10)
        parts = md.topics[settings.kafka.topic].partitions
        return sum(c.get_watermark_offsets(TopicPartition(settings.kafka.topic, p),
                                           timeout=10)[1] for p in parts)
    finally:
        c.close()


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


def baseline_latency(settings, rate: float, seconds: float, seed: int) -> list[float]:
    """The generator at ``rate`` while a plain consumer reads: produce -> consume ms."""
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
    gen = start_generator(settings, rate, seconds, seed)
    gen.wait()
    time.sleep(2)
    done.set()
    t.join()
    c.close()
    return lat


def _commit_times(table: Path) -> dict[str, int]:
    """Data file name -> commit timestamp (ms) of the Delta version that added it."""
    out: dict[str, int] = {}
    for f in (table / "_delta_log").glob("*.json"):
        actions = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        ts = next((a["commitInfo"]["timestamp"] for a in actions if "commitInfo" in a), None)
        for a in actions:
            if "add" in a and ts is not None:
                out[Path(a["add"]["path"]).name] = ts
    return out


def freshness_ms(spark, settings) -> tuple[list[float], list[float]]:
    """produce -> visible: per ``logs`` row (commit - ts) and per 10 s window of ``metrics``
    (commit of its last partial - window_end: from the window's last possible produce until
    the last of it is in Delta). The freshness runs do not fold, so every partial's file is
    the one its batch committed."""
    from pyspark.sql import functions as F

    out = []
    for table, col in (("logs", "ts"), ("metrics", "window_end")):
        path = settings.table_path(table)
        commits = _commit_times(path)
        df = spark.read.format("delta").load(str(path))
        rows = df.select(F.col("_metadata.file_name").alias("f"),
                         (F.unix_micros(col) / 1000).alias("t")).collect()
        if table == "logs":
            out.append([commits[r.f] - r.t for r in rows if r.f in commits])
            continue
        last: dict[float, float] = {}
        for r in rows:
            if r.f in commits:
                last[r.t] = max(last.get(r.t, 0.0), commits[r.f])
        out.append([c - t for t, c in last.items()])
    return out[0], out[1]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))] if s else float("nan")


def lag_quarters(lags: list[int]) -> list[float]:
    """Median lag of each quarter of a step."""
    q = max(1, len(lags) // 4)
    return [statistics.median(lags[i * q:(i + 1) * q] or [0]) for i in range(4)]


def lag_is_bounded(lags: list[int], rate: float, bound_s: float) -> bool:
    """Bounded: the lag is not growing (last quarter's median <= 1.25 x the second quarter's
    + one second of events) and stays under ``bound_s`` seconds of events. The lag swings by
    a micro-batch's worth within a step, so medians of quarters, not single samples."""
    if len(lags) < 8:
        return False
    q = lag_quarters(lags)
    return max(lags[len(lags) // 2:]) <= bound_s * rate and q[3] <= 1.25 * q[1] + rate


def run_stream(spark, settings, rate: float, seconds: float, seed: int,
               broker_pid: int) -> dict[str, object]:
    """The stream job running while the generator produces; lag sampled every second.

    Lag = the topic's high watermarks now minus the end offsets of the last completed
    ingest batch (the query progress's own lag is as old as that batch's planning).
    CPU seconds over the step (the generator's run, warm-up included) are kept per process
    and per Spark thread group, to tell where the cost of an event goes.
    """
    from pipeline.runners.stream_job import StreamRunner

    def lag() -> int:
        done = processed_offsets(runner.stats.progress.get("ingest") or {})
        return topic_end(settings) - (done or 0)

    ensure_topic(settings)
    runner = StreamRunner(spark, settings)
    t = threading.Thread(target=runner.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 120
    while not runner.stats.progress.get("ingest") and time.monotonic() < deadline:
        time.sleep(0.5)  # first (empty) batch: queries are up
    jvm = int(spark._jvm.java.lang.ProcessHandle.current().pid())
    spark0, broker0 = jvm_thread_cpu_s(jvm), process_cpu_s(broker_pid)
    rows0 = runner.stats.rows_logged
    gen = start_generator(settings, rate, seconds, seed)
    t0, lags, gen_cpu = time.monotonic(), [], 0.0
    while gen.poll() is None:
        time.sleep(1.0)
        gen_cpu = max(gen_cpu, process_cpu_s(gen.pid))
        lags.append(lag())
    elapsed = time.monotonic() - t0
    cpu = {"spark": diff(jvm_thread_cpu_s(jvm), spark0), "generator": gen_cpu,
           "broker": process_cpu_s(broker_pid) - broker0,
           "rows": runner.stats.rows_logged - rows0, "seconds": elapsed}
    sent = topic_end(settings)
    t1, drain_deadline = time.monotonic(), time.monotonic() + 300
    while time.monotonic() < drain_deadline and lag() > 0:  # the backlog lands
        time.sleep(1.0)
    drain_s = time.monotonic() - t1
    runner.stop_event.set()
    t.join(120)
    return {"sent": sent, "achieved_rate": sent / max(elapsed, 1e-9), "lags": lags,
            "processed_rate": sent / max(elapsed + drain_s, 1e-9), "drain_s": drain_s,
            "generator_rc": gen.returncode, "error": runner.error, "cpu": cpu}


def cpu_line(cpu: dict[str, object]) -> str:
    """Cores busy per process over a step, and the Spark JVM's CPU per event logged."""
    secs, spark = float(cpu["seconds"]), cpu["spark"]
    rows = max(1, int(cpu["rows"]))
    groups = ", ".join(f"{k} {v / rows * 1e6:.0f}" for k, v in spark.items() if k != "total")
    return (f"cores busy: spark {spark['total'] / secs:.2f}, broker {cpu['broker'] / secs:.2f}, "
            f"generator "
            f"{cpu['generator'] / secs:.2f}; spark CPU per event logged "
            f"{spark['total'] / rows * 1e6:.0f} us ({groups})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="1000,2000,3000,4000")
    ap.add_argument("--seconds", type=float, default=120.0, help="length of each rate step")
    ap.add_argument("--lag-bound-s", type=float, default=60.0)
    ap.add_argument("--fixed-rate", type=float, default=10_000.0)
    ap.add_argument("--fresh-seconds", type=float, default=30.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-sweep", action="store_true")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]

    from pipeline.broker import EmbeddedBroker
    from pipeline.spark_session_manager import get_spark, stop_spark

    tmp = Path(tempfile.mkdtemp(prefix="lakewatch-bench-"))
    base = load_settings(None, {
        "storage.data_dir": str(tmp / "data"), "broker.port": free_port(),
        "broker.controller_port": free_port(), "processor.trigger_interval": "1 second",
        "processor.watermark": "10 seconds", "processor.status_interval_s": 1.0,
        "processor.fold_every_s": 1e9,
    })
    broker = EmbeddedBroker(base)
    broker_pid = broker.start()
    spark = get_spark(base)
    results: dict[str, object] = {"rates": {}}

    def step_settings(name: str):
        s = base.model_copy(deep=True)
        s.storage.data_dir = tmp / name
        s.kafka.topic = f"bench-{name}"
        return s

    try:
        sustained = None
        for rate in ([] if args.skip_sweep else rates):
            s = step_settings(f"rate-{int(rate)}")
            r = run_stream(spark, s, rate, args.seconds, seed=int(rate), broker_pid=broker_pid)
            lags = r["lags"]
            ok = r["generator_rc"] == 0 and not r["error"] and lag_is_bounded(
                lags, r["achieved_rate"], args.lag_bound_s)
            rows = spark.read.format("delta").load(str(s.table_path("logs"))).count()
            base_rate = baseline_consume(s, r["sent"])
            print(f"rate {rate:>7.0f}/s: generator achieved {r['achieved_rate']:,.0f}/s, "
                  f"sent {r['sent']}, rows in logs {rows}, lag max {max(lags or [0])} / last "
                  f"{lags[-1] if lags else None}, quarter medians "
                  f"{[round(v) for v in lag_quarters(lags)]}, drained in {r['drain_s']:.0f} s "
                  f"(processor {r['processed_rate']:,.0f}/s): "
                  f"{'sustained' if ok else 'NOT sustained'}; "
                  f"baseline consumer {base_rate:,.0f}/s", flush=True)
            print(f"    {cpu_line(r['cpu'])}", flush=True)
            results["rates"][int(rate)] = {"cpu": r["cpu"], "achieved": round(r["achieved_rate"]),
                                           "sustained": ok, "lag_max": max(lags or [0]),
                                           "processed": round(r["processed_rate"]),
                                           "rows": rows, "sent": r["sent"],
                                           "baseline_consume": round(base_rate)}
            if ok:
                sustained = max(sustained or 0, r["achieved_rate"])
        results["sustained_events_per_s"] = round(sustained) if sustained else None

        logs50, logs99, met50, met99, base50, base99 = [], [], [], [], [], []
        for run in range(args.runs):  # --runs 0: the sweep only
            s = step_settings(f"fresh-{run}")
            r = run_stream(spark, s, args.fixed_rate, args.fresh_seconds, seed=100 + run,
                           broker_pid=broker_pid)
            lat_logs, lat_metrics = freshness_ms(spark, s)
            sb = step_settings(f"baseline-{run}")
            ensure_topic(sb)
            consume = baseline_latency(sb, args.fixed_rate, args.fresh_seconds, seed=100 + run)
            logs50.append(pct(lat_logs, 0.5))
            logs99.append(pct(lat_logs, 0.99))
            met50.append(pct(lat_metrics, 0.5))
            met99.append(pct(lat_metrics, 0.99))
            base50.append(pct(consume, 0.5))
            base99.append(pct(consume, 0.99))
            print(f"freshness run {run}: generator {r['achieved_rate']:,.0f}/s, "
                  f"{len(lat_logs)}/{r['sent']} rows; logs p50 {logs50[-1]:.0f} ms "
                  f"p99 {logs99[-1]:.0f} ms; metrics (10 s windows, {len(lat_metrics)} rows) "
                  f"p50 {met50[-1]:.0f} ms p99 {met99[-1]:.0f} ms; plain consumer p50 "
                  f"{base50[-1]:.0f} ms p99 {base99[-1]:.0f} ms", flush=True)
            print(f"    {cpu_line(r['cpu'])}", flush=True)
        if not args.runs:
            print(json.dumps(results))
            return 0
        med = statistics.median
        results.update(
            fixed_rate=args.fixed_rate,
            logs_p50_ms=med(logs50), logs_p99_ms=med(logs99),
            metrics_p50_ms=med(met50), metrics_p99_ms=med(met99),
            baseline_p50_ms=med(base50), baseline_p99_ms=med(base99))
        print(f"\n== summary (medians of {args.runs} runs) ==")
        print(f"highest sustained rate ({args.seconds:.0f} s steps, {rates}): "
              f"{results['sustained_events_per_s']} events/s")
        print(f"produce -> logs at {args.fixed_rate:.0f}/s: p50 {med(logs50):.0f} ms, "
              f"p99 {med(logs99):.0f} ms; produce -> metrics (from window end): "
              f"p50 {med(met50):.0f} ms, p99 {med(met99):.0f} ms")
        print(f"baseline produce -> plain consumer: p50 {med(base50):.0f} ms, "
              f"p99 {med(base99):.0f} ms; ratio logs/baseline p50 "
              f"{med(logs50) / max(med(base50), 1e-9):.1f}x")
        print(json.dumps(results))
    finally:
        stop_spark()
        broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
