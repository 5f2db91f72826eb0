"""The detector on the live pipeline: the real generator injects an error burst, the real
broker carries it, the streaming processor writes ``metrics`` and the detector (inside the
processor's process, sharing its SparkSession) writes the burst to ``anomalies`` within two
windows of its start."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from pipeline.components import child_env
from pipeline.detection import anomaly_table
from pipeline.detection.runner import start_in_session
from pipeline.runners.stream_job import StreamRunner
from pipeline.sources.sampling import source_names
from tests.helpers.processor import create_topic

WINDOW_S = 10
SPEEDUP = 20.0  # one wall second is 20 simulated seconds: 2 windows
SIM_S = 25 * 60
BURST_AT_S = 18 * 60
BURST_S = 60

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def test_injected_error_burst_is_flagged_within_two_windows(spark, kafka_settings, tmp_path):
    s = kafka_settings
    s.processor.watermark = "5 seconds"
    s.processor.trigger_interval = "2 seconds"
    s.processor.status_interval_s = 1.0
    s.detector.poll_interval_s = 1.0
    s.detector.window = "10 seconds"
    create_topic(s, partitions=3)
    victim = source_names(s.generator.sources)[1]
    labels_file = tmp_path / "labels.jsonl"

    stop = threading.Event()
    runner = StreamRunner(spark, s, stop_event=stop)
    stream = threading.Thread(target=runner.run, name="test-stream", daemon=True)
    stream.start()
    detector = start_in_session(spark, s, stop)
    try:
        start_ms = int(time.time() * 1000) - SIM_S * 1000 - 60_000
        scenario = [{"kind": "error_burst", "start_s": BURST_AT_S, "duration_s": BURST_S,
                     "entity": victim}]
        argv = [sys.executable, "-m", "pipeline.log_generator", "--rate", "600",
                "--speedup", str(SPEEDUP), "--start-time", str(start_ms),
                "--duration", f"{SIM_S / SPEEDUP:.0f}", "--seed", "5",
                "--scenarios", json.dumps(scenario), "--labels", str(labels_file)]
        done = subprocess.run(argv, env=child_env(s), capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        label = json.loads(labels_file.read_text().splitlines()[0])
        assert (label["kind"], label["entity"]) == ("error_burst", victim)
        burst_start = pd.Timestamp(label["start_ms"], unit="ms")
        latest_ok = burst_start + pd.Timedelta(seconds=2 * WINDOW_S)

        def flagged() -> pd.DataFrame:
            a = anomaly_table.read(spark, s)
            if a.empty:
                return a
            return a[(a.kind == "error_burst") & (a.entity == victim)]

        deadline = time.monotonic() + 300
        hits = flagged()
        while hits.empty and time.monotonic() < deadline:
            assert runner.error is None, runner.error
            time.sleep(2)
            hits = flagged()
        assert not hits.empty, "the injected error burst was never flagged"
        first = pd.Timestamp(hits.window_start.min())
        assert burst_start - pd.Timedelta(seconds=WINDOW_S) < first < latest_ok, (
            first, burst_start)
        row = hits.sort_values("window_start").iloc[0]
        assert row.entity_type == "source"
        assert "error" in row.explanation.lower()
    finally:
        stop.set()
        stream.join(timeout=120)
        detector.join(timeout=60)
    assert runner.error is None
