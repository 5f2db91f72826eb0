"""Generator throughput to Kafka vs Kafka's own ``ProducerPerformance``, same broker, same
messages.

Both sides produce ``--records`` messages to a fresh topic (``kafka.partitions`` partitions)
with the pipeline's producer settings (idempotence, acks=all, linger 20 ms, lz4, 1 MB
batches) and count until every record is acknowledged. The baseline sends real generated
events (``--payload-file``) so message size and compressibility match. Prints each run, the
medians of ``--runs`` runs and the ratio generator / baseline.

    python bench/generator.py [--records 500000] [--runs 3] [--set kafka.bootstrap_servers=...]

Without ``kafka.bootstrap_servers`` an embedded broker is started in a temp dir (needs
``lakewatch setup``'s jar cache, from ``pipeline.jvm.kafka_classpath``).
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ports import free_port  # noqa: E402
from pipeline.commands.main import parse_overrides  # noqa: E402
from pipeline.jvm import kafka_classpath, require_java  # noqa: E402
from pipeline.kafka_config import ensure_topic  # noqa: E402
from pipeline.settings import Settings, load_settings  # noqa: E402
from pipeline.sources.events import EventGenerator  # noqa: E402
from pipeline.sources.producer import LogProducer  # noqa: E402

START = 1_767_225_600_000


def fresh_topic(settings: Settings, tag: str) -> Settings:
    s = settings.model_copy(deep=True)
    s.kafka.topic = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
    ensure_topic(s)
    return s


def run_generator(settings: Settings, records: int, seed: int) -> tuple[float, float]:
    """Events/s of EventGenerator -> serialize -> LogProducer until all are acked, and the
    CPU seconds it took (this process: Python + librdkafka threads)."""
    s = fresh_topic(settings, "gen")
    gen = EventGenerator(seed=seed, start_ms=START, rate=100_000, speedup=1)
    with LogProducer(s, "bench-generator", report_successes=False) as producer:
        c0, t0 = time.process_time(), time.perf_counter()
        for batch in gen.batches(count=records):
            producer.produce_many(batch.serialized(), batch.keys())
        left = producer.flush(120)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert left == 0 and producer.acked == records, producer.summary()
    return records / elapsed, cpu


def generation_only(records: int, seed: int) -> float:
    gen = EventGenerator(seed=seed, start_ms=START, rate=100_000, speedup=1)
    t0 = time.perf_counter()
    n = sum(len(b.serialized()) for b in gen.batches(count=records))
    return n / (time.perf_counter() - t0)


def payload_file(directory: Path, n: int = 20_000) -> tuple[Path, float]:
    gen = EventGenerator(seed=99, start_ms=START, rate=100_000, speedup=1)
    values = [v for b in gen.batches(count=n) for v in b.serialized()]
    path = directory / "payloads.txt"
    path.write_bytes(b"\n".join(values))
    return path, statistics.fmean(len(v) for v in values)


def run_baseline(settings: Settings, records: int, payloads: Path) -> tuple[float, float]:
    """Records/s reported by org.apache.kafka.tools.ProducerPerformance, and the CPU seconds
    of its JVM (JVM start-up and JIT included)."""
    s = fresh_topic(settings, "perf")
    props = [
        f"bootstrap.servers={s.bootstrap_servers}", "acks=all", "enable.idempotence=true",
        "linger.ms=20", "batch.size=1000000", "compression.type=lz4",
        "buffer.memory=268435456",
    ]
    cmd = [str(require_java()), "-Xmx512m", "-cp", kafka_classpath(settings),
           "org.apache.kafka.tools.ProducerPerformance", "--topic", s.kafka.topic,
           "--num-records", str(records), "--throughput", "-1", "--payload-file", str(payloads),
           "--producer-props", *props]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if out.returncode != 0:
        raise RuntimeError(f"ProducerPerformance failed:\n{out.stdout}\n{out.stderr}")
    m = re.findall(r"(\d+) records sent, ([\d.]+) records/sec", out.stdout)
    if not m:
        raise RuntimeError(f"cannot read ProducerPerformance output:\n{out.stdout}")
    sent, rate = m[-1]
    assert int(sent) == records, out.stdout
    return float(rate), cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    broker = None
    with tempfile.TemporaryDirectory(prefix="lakewatch-bench-") as tmp:
        if "kafka.bootstrap_servers" not in overrides:
            overrides.update({"storage.data_dir": str(Path(tmp) / "data"),
                              "broker.port": free_port(), "broker.controller_port": free_port()})
        settings = load_settings(None, overrides)
        if not settings.attached:
            from pipeline.broker import EmbeddedBroker

            broker = EmbeddedBroker(settings)
            broker.start()
        try:
            payloads, size = payload_file(Path(tmp))
            print(f"records per run: {args.records}, mean message size {size:.0f} B, "
                  f"partitions {settings.kafka.partitions}, broker {settings.bootstrap_servers}")
            print(f"generation + serialization only: {generation_only(args.records, 1):,.0f} "
                  "events/s")
            gen_runs, base_runs = [], []
            for i in range(args.runs):
                gen_runs.append(run_generator(settings, args.records, seed=i + 1))
                base_runs.append(run_baseline(settings, args.records, payloads))
                print(f"run {i + 1}: generator {gen_runs[-1][0]:,.0f} ev/s "
                      f"({gen_runs[-1][1]:.1f} CPU s)   ProducerPerformance "
                      f"{base_runs[-1][0]:,.0f} rec/s ({base_runs[-1][1]:.1f} CPU s)", flush=True)
            g = statistics.median(r for r, _ in gen_runs)
            b = statistics.median(r for r, _ in base_runs)
            gc = statistics.median(c for _, c in gen_runs) / args.records * 1e6
            bc = statistics.median(c for _, c in base_runs) / args.records * 1e6
            print(f"median generator: {g:,.0f} events/s (target >= 100,000), "
                  f"{gc:.1f} CPU us/event")
            print(f"median ProducerPerformance: {b:,.0f} records/s, {bc:.1f} CPU us/record")
            print(f"ratio generator / ProducerPerformance: throughput {g / b:.2f}, "
                  f"CPU per message {gc / bc:.2f}")
        finally:
            if broker is not None:
                broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
