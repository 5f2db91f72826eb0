"""Generator and producer wrapper against the real session broker."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import orjson
import pytest

from pipeline.commands.generate import configure_parser, run
from pipeline.schemas import EVENT_FIELDS
from pipeline.settings import Settings
from pipeline.sources.producer import LogProducer
from pipeline.sources.scenarios import read_labels
from pipeline.status import read_status
from tests.helpers.kafka import consume_all

START = 1_767_268_800_000


def gen_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    return parser.parse_args(list(argv))


def test_generate_n_events_and_consume_exactly_n(kafka_settings: Settings):
    n = 30_000
    args = gen_args("--count", str(n), "--seed", "5", "--rate", "50000", "--no-throttle",
                    "--start-time", str(START))
    assert run(args, kafka_settings) == 0
    status = read_status(kafka_settings, "generator")
    assert (status.sent, status.acked, status.failed) == (n, n, 0)
    assert status.state == "stopped" and status.seed == 5
    msgs = consume_all(kafka_settings, n)
    assert len(msgs) == n
    events = [orjson.loads(m.value()) for m in msgs]
    assert len({e["event_id"] for e in events}) == n
    assert all(tuple(e) == EVENT_FIELDS for e in events)
    # keyed by source: each source lives in one partition, in event-time order
    by_source: dict[str, set[int]] = {}
    for m, e in zip(msgs, events, strict=True):
        assert m.key() == e["source"].encode()
        by_source.setdefault(e["source"], set()).add(m.partition())
    assert all(len(p) == 1 for p in by_source.values()) and len(by_source) == 6
    for src in by_source:
        ts = [e["ts"] for e in events if e["source"] == src]
        assert ts == sorted(ts)


def test_producer_counts_failures_and_headers(kafka_settings: Settings):
    acked: list[int] = []
    with LogProducer(kafka_settings, "shipper-test") as prod:
        prod.ensure_topic()
        for i in range(100):
            prod.produce(f"line {i}".encode(), b"k", headers=[("event_id", str(i).encode())],
                         on_delivery=lambda err, msg, i=i: acked.append(i) if err is None else None)
        assert prod.flush(30) == 0
        assert (prod.sent, prod.acked, prod.failed) == (100, 100, 0)
    assert acked == list(range(100))
    msgs = consume_all(kafka_settings, 100, settle=0.5)
    assert [m.value() for m in msgs] == [f"line {i}".encode() for i in range(100)]
    assert [dict(m.headers())["event_id"] for m in msgs] == [str(i).encode() for i in range(100)]
    # a message larger than the broker accepts is a counted failure, not a silent loss,
    # whether or not successes are reported one by one
    for report_successes in (True, False):
        with LogProducer(kafka_settings, "shipper-test", report_successes=report_successes,
                         **{"message.max.bytes": 20_000_000}) as prod:
            prod.produce(b"small", b"k")
            prod.produce(os.urandom(12_000_000), b"k")  # incompressible, > broker limit (10 MB)
            prod.flush(30)
            assert (prod.sent, prod.acked, prod.failed) == (2, 1, 1)
            assert "too large" in prod.last_error.lower()


def test_generator_process_injects_on_command_and_flushes_on_sigterm(kafka_settings: Settings,
                                                                     tmp_path):
    env = {**os.environ, **kafka_settings.to_env()}
    labels = tmp_path / "labels.jsonl"
    cmd = [sys.executable, "-m", "pipeline.log_generator", "--rate", "3000", "--seed", "8",
           "--speedup", "10", "--labels", str(labels)]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = read_status(kafka_settings, "generator")
            if st and st.acked > 3000:
                break
            time.sleep(0.2)
        else:
            pytest.fail("generator produced nothing")
        subprocess.run([*cmd[:3], "--inject", "error_burst", "--entity", "auth-01",
                        "--inject-duration", "20s", "--magnitude", "1.0"], env=env, check=True,
                       timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (labels.exists() and labels.read_text()):
            time.sleep(0.2)
        time.sleep(3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    final = read_status(kafka_settings, "generator")
    assert final.state == "stopped" and final.failed == 0
    assert final.sent == final.acked > 3000
    assert f"sent={final.sent} acked={final.acked} failed=0" in err
    msgs = consume_all(kafka_settings, final.acked)
    assert len(msgs) == final.acked  # nothing queued was lost on SIGTERM
    [label] = read_labels(labels)
    assert (label.kind, label.entity) == ("error_burst", "auth-01")
    events = [orjson.loads(m.value()) for m in msgs]
    inside = [e for e in events if e["source"] == "auth-01" and label.contains(e["ts"])]
    assert inside and all(e["status"] >= 500 for e in inside)
    before = [e for e in events if e["source"] == "auth-01" and e["ts"] < label.start_ms]
    assert sum(e["status"] >= 500 for e in before) < 0.05 * len(before)


def test_paced_run_follows_rate_and_matches_in_process_events(kafka_settings: Settings):
    """``--duration`` paces in wall time and produces exactly the in-process event stream."""
    peak = START + 3 * 3_600_000  # 15:00 UTC: the daily curve is at 1.55
    args = gen_args("--rate", "2000", "--duration", "3", "--speedup", "20", "--seed", "4",
                    "--start-time", str(peak))
    t0 = time.monotonic()
    assert run(args, kafka_settings) == 0
    elapsed = time.monotonic() - t0
    from pipeline.sources.events import EventGenerator

    expected = [v for b in EventGenerator(seed=4, start_ms=peak, rate=2000, speedup=20)
                .batches(sim_duration_s=60) for v in b.serialized()]
    assert len(expected) == pytest.approx(2000 * 3 * 1.55, rel=0.05)
    assert 2.9 < elapsed < 8
    msgs = consume_all(kafka_settings, len(expected), settle=1.0)
    got = sorted(m.value() for m in msgs)
    assert got == sorted(expected)
    assert max(orjson.loads(v)["ts"] for v in got) < peak + 60_000
