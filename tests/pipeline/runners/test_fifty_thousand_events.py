"""50,000 events from the real generator, through the real broker and the streaming processor
into Delta: exactly 50,000 rows, no duplicate ``event_id``, and the merged ``metrics`` partials
equal to a pandas recomputation from the same events (the generator is deterministic per
seed): counts exact, percentiles within the histograms' 1 %."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from pipeline.components import child_env
from pipeline.latency_hist import ALPHA
from pipeline.runners.stream_job import StreamRunner
from pipeline.sources.events import EventGenerator
from pipeline.transforms.metrics import merge_partials
from tests.helpers.processor import create_topic, end_offsets

N = 50_000
SEED = 11
RATE = 100.0  # events per simulated second: 50,000 events span ~8.3 simulated minutes
WATERMARK_S = 120  # batches of 20k offsets end at different event times per partition
KEY = ["window_start", "source", "endpoint", "level"]
COUNTS = ["requests", "errors", "bytes", "status_2xx", "status_3xx", "status_4xx",
          "status_5xx", "status_404"]

pytestmark = pytest.mark.timeout(1500)


def expected_metrics(events: pd.DataFrame, size_s: int) -> pd.DataFrame:
    """The ``metrics`` rows of one window size, recomputed in pandas (latencies as lists)."""
    e = events.assign(
        window_start=pd.to_datetime((events.ts // (size_s * 1000)) * size_s * 1000, unit="ms"),
        level=events.level.str.upper(),
        is_error=(events.status >= 500) | (events.level.str.upper() == "ERROR"),
    )
    s = e.status
    e = e.assign(status_2xx=s.between(200, 299), status_3xx=s.between(300, 399),
                 status_4xx=s.between(400, 499), status_5xx=s.between(500, 599),
                 status_404=s == 404)
    g = e.groupby(KEY)
    out = g.agg(requests=("event_id", "size"), errors=("is_error", "sum"), bytes=("bytes", "sum"),
                status_2xx=("status_2xx", "sum"), status_3xx=("status_3xx", "sum"),
                status_4xx=("status_4xx", "sum"), status_5xx=("status_5xx", "sum"),
                status_404=("status_404", "sum"), latencies=("latency_ms", list))
    out["error_rate"] = out.errors / out.requests
    return out.reset_index()


def rank_value(sorted_values: np.ndarray, p: float) -> float:
    """The exact percentile the metrics approximate: the value at rank ceil(p n)."""
    return float(sorted_values[max(0, int(np.ceil(p * len(sorted_values))) - 1)])


def test_fifty_thousand_generated_events_end_to_end(spark, kafka_settings):
    s = kafka_settings
    s.processor.watermark = f"{WATERMARK_S} seconds"
    s.processor.trigger_interval = "1 second"
    s.processor.max_offsets_per_trigger = 20_000  # a few micro-batches, as on a backlog
    create_topic(s, partitions=3)
    start_ms = int(time.time() * 1000) - 10 * 60_000
    argv = [sys.executable, "-m", "pipeline.log_generator", "--count", str(N),
            "--seed", str(SEED), "--rate", str(RATE), "--speedup", "1",
            "--start-time", str(start_ms), "--no-throttle"]
    done = subprocess.run(argv, env=child_env(s),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert end_offsets(s) == N

    runner = StreamRunner(spark, s, available_now=True)
    assert runner.run() == 0, runner.error

    logs = spark.read.format("delta").load(str(s.table_path("logs")))
    assert logs.count() == N
    assert logs.select("event_id").distinct().count() == N
    quarantine = spark.read.format("delta").load(str(s.table_path("logs_quarantine")))
    assert quarantine.count() == 0

    # The same events, regenerated from the seed.
    gen = EventGenerator(seed=SEED, start_ms=start_ms, rate=RATE, speedup=1.0,
                         sources=s.generator.sources)
    events = pd.DataFrame([row for b in gen.batches(N) for row in b.dicts()])
    assert len(events) == N
    assert set(events.event_id) == {r.event_id for r in logs.select("event_id").collect()}

    # batches take every partition forward alike: no event is behind the watermark
    assert runner.stats.late_events == 0
    partials = spark.read.format("delta").load(str(s.table_path("metrics")))
    for size, size_s in (("10s", 10), ("1m", 60), ("5m", 300)):
        want = expected_metrics(events, size_s)
        got = merge_partials(partials, size).toPandas()
        merged = got.merge(want, on=KEY, how="outer", suffixes=("", "_want"), indicator=True)
        # every window of the events is there, nothing else
        assert (merged._merge == "both").all(), size
        for col in COUNTS:
            assert (merged[col].astype("int64") == merged[f"{col}_want"].astype("int64")).all(), (
                size, col)
        assert np.allclose(merged.error_rate, merged.error_rate_want), size
        # percentiles within the documented 1 % of the exact ones (rank ceil(p n))
        for row in merged.itertuples():
            lat = np.sort(np.asarray(row.latencies))
            for p, col in ((0.5, "latency_p50"), (0.95, "latency_p95"), (0.99, "latency_p99")):
                exact = rank_value(lat, p)
                assert abs(getattr(row, col) - exact) <= ALPHA * exact, (size, row.window_start)
