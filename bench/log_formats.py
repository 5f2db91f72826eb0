"""Parse cost of the format-string path vs the fixed combined path, same lines, same run.

Writes ``--lines`` combined-format lines (the generator's vocabulary: IPv4/IPv6 clients,
quoted user agents, query strings) to one file, then measures lines per second of:

* Python: ``access_log.parse_line(line, "combined")`` (fixed regex) vs
  ``log_formats.parse(nginx_combined)`` (compiled from the nginx format string);
* Spark: ``parse_records`` + ``valid_logs`` over the file as Kafka-shaped rows, once with the
  ``format`` header ``combined`` and once ``nginx_combined`` (warm: one unmeasured run, then
  the median of ``--runs``; forced with the ``noop`` sink, so nothing is pruned);
* GoAccess (``goaccess FILE --log-format=COMBINED -o out.json``), when installed, as a
  reference for a C parser doing more (it also aggregates).

Usage: ``python bench/log_formats.py [--lines 200000] [--runs 3] [--no-spark]``.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import access_log, log_formats  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402

UAS = ('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0',
       'curl/8.5.0', 'Mozilla/5.0 "quoted" (compatible; Googlebot/2.1)', '-')
PATHS = ("/", "/products?page=2", "/api/v1/cart", "/static/app.js", "/search?q=caf%C3%A9",
         "/auth/login", "/пример")


def make_lines(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    t0 = 1_764_000_000_000
    out = []
    for i in range(n):
        ip = (f"2001:db8::{rnd.randrange(65536):x}" if rnd.random() < 0.2
              else f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(256)}")
        out.append(access_log.format_combined(
            ip, t0 + i * 7, rnd.choice(("GET", "GET", "POST")), rnd.choice(PATHS),
            rnd.choice((200, 200, 200, 304, 404, 500)), rnd.randrange(0, 50_000),
            referer=rnd.choice(("-", "https://example.com/")), user_agent=rnd.choice(UAS)))
    return out


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f} lines/s"


def bench_python(lines: list[str]) -> None:
    """Wall and CPU time (on a loaded machine the CPU figure is the comparable one)."""
    fmt = log_formats.get_format("nginx_combined")
    results = {}
    for label, fn in (("fixed combined", lambda x: access_log.parse_line(x, "combined")),
                      ("format string (nginx)", lambda x: log_formats.parse(fmt, x)[0])):
        wall, cpu = time.perf_counter(), time.process_time()
        results[label] = [fn(x) for x in lines]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"python  {label:<22}  {rate(len(lines), wall)} wall  "
              f"{rate(len(lines), cpu)} CPU")
    assert results["fixed combined"] == results["format string (nginx)"], "paths disagree"


def bench_spark(path: Path, n: int, runs: int) -> None:
    from pyspark.sql import functions as F

    from pipeline.spark_session_manager import get_spark
    from pipeline.transforms.parsing import parse_records, valid_logs

    settings = load_settings(None, {"storage.data_dir": tempfile.mkdtemp(prefix="lw-bench-")})
    spark = get_spark(settings)
    text = spark.read.text(str(path)).cache()
    text.count()
    for label in ("combined", "nginx_combined"):
        rows = text.select(
            F.col("value").cast("binary").alias("value"), F.lit("t").alias("topic"),
            F.lit(0).alias("partition"), F.monotonically_increasing_id().alias("offset"),
            F.current_timestamp().alias("timestamp"),
            F.array(F.struct(F.lit("format").alias("key"),
                             F.lit(label).cast("binary").alias("value"))).alias("headers"))
        out = valid_logs(parse_records(rows, max_message_bytes=65536, max_past_s=10**10,
                                       max_future_s=10**10))
        times = []
        for i in range(runs + 1):
            t = time.perf_counter()
            out.write.format("noop").mode("overwrite").save()
            if i:
                times.append(time.perf_counter() - t)
        print(f"spark   header {label:<16} {rate(n, statistics.median(times))}"
              f"   (median of {runs}, {spark.sparkContext.defaultParallelism} cores)")


def bench_goaccess(path: Path, n: int) -> None:
    exe = shutil.which("goaccess")
    if exe is None:
        print("goaccess not installed (apt-get install goaccess): skipped")
        return
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [exe, str(path), "--log-format=COMBINED", "--no-global-config",
               "-o", str(Path(tmp) / "out.json")]
        times, cpus = [], []
        for _ in range(3):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)  # noqa: S603
            times.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    print(f"goaccess --log-format=COMBINED  {rate(n, statistics.median(times))} wall  "
          f"{rate(n, statistics.median(cpus))} CPU   (median of 3; JSON report, "
          "includes its aggregation)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-spark", action="store_true")
    args = ap.parse_args()
    lines = make_lines(args.lines)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "access.log"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{len(lines):,} combined lines, {path.stat().st_size / 1e6:.1f} MB")
        bench_python(lines)
        bench_goaccess(path, len(lines))
        if not args.no_spark:
            bench_spark(path, len(lines), args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
