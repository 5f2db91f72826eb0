"""Exactly once across crashes: kill -9 the processor (Python and its JVM) at random moments
while events flow, restart it, and find every event in ``logs`` exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from pipeline.runners.stream_job import StreamRunner
from pipeline.status import read_status, status_path
from tests.helpers.processor import create_topic, make_events, produce

N = 20_000
KILLS = 3


def _start(settings, log_file):
    env = {**os.environ, **settings.to_env()}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.streaming_processor", "--mode", "stream"],
        env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
    )


def _wait_processing(settings, proc, since: float, timeout: float = 900.0) -> None:
    """Until the new process has finished at least one batch (its status says so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "processor exited early"
        st = read_status(settings, "processor")
        if (st and st.pid == proc.pid and (st.heartbeat or 0) > since
                and st.batch_id is not None):
            return
        time.sleep(0.5)
    raise TimeoutError("processor never reported a batch")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kill9_at_random_moments_loses_and_duplicates_nothing(spark, kafka_settings, tmp_path):
    s = kafka_settings
    s.processor.trigger_interval = "1 second"
    s.processor.max_offsets_per_trigger = 2000   # many small batches: more moments to die in
    s.processor.status_interval_s = 0.5
    create_topic(s, partitions=3)
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    print(f"kill test seed {seed}")
    events = make_events(N, seed=seed % 1000, span_ms=8 * 60_000)
    chunks = [events[i:i + 500] for i in range(0, N, 500)]

    def producer() -> None:  # ~40 chunks over the whole test, while processors die
        for chunk in chunks:
            produce(s, chunk)
            time.sleep(1.5)

    feeder = threading.Thread(target=producer, daemon=True)
    feeder.start()
    log_path = tmp_path / "processor.log"
    with log_path.open("ab") as log_file:
        for _ in range(KILLS):
            started = time.time()
            proc = _start(s, log_file)
            try:
                _wait_processing(s, proc, started)
                time.sleep(rng.uniform(0.0, 4.0))
            finally:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
    feeder.join(300)
    assert not feeder.is_alive()
    assert status_path(s, "processor").is_file()

    # Restart once more (in this process) and drain what is left.
    runner = StreamRunner(spark, s, available_now=True)
    assert runner.run() == 0, runner.error
    logs = spark.read.format("delta").load(str(s.table_path("logs")))
    total = logs.count()
    distinct = logs.select("event_id").distinct().count()
    assert (total, distinct) == (N, N), f"seed {seed}; see {log_path}"
    assert spark.read.format("delta").load(str(s.table_path("logs_quarantine"))).count() == 0
