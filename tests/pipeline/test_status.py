"""Typed heartbeats, lag and freshness, atomic writes and stop-on-signal handling."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from pipeline import freshness, schemas, status
from pipeline.files import atomic_write, replacing
from pipeline.signals import on_signals, stop_on_signals
from pipeline.status import (
    BrokerStatus,
    DetectorStatus,
    GeneratorStatus,
    Heartbeat,
    ProcessorStatus,
    QueryProgress,
    SupervisorStatus,
    read_status,
    status_path,
    write_status,
)


def test_status_round_trip_per_component(settings):
    before = time.time()
    status.write(settings, ProcessorStatus(
        state="running", lag=42, processed_rows_per_s=100.0, last_commit_version=3,
        queries={"ingest": QueryProgress(batch_id=7, batch_ms=1500)}))
    st = read_status(settings, "processor")
    assert isinstance(st, ProcessorStatus)
    assert (st.state, st.lag, st.rows_per_s, st.queries["ingest"].batch_id) == \
        ("running", 42, 100.0, 7)
    assert st.pid == os.getpid() and st.heartbeat >= before
    assert st.version == status.STATUS_VERSION and st.component == "processor"

    write_status(settings, "detector", state="stopped", windows_processed=5,
                 model_version="x-1")
    det = read_status(settings, "detector")
    assert isinstance(det, DetectorStatus) and det.windows_processed == 5
    assert det.model_version == "x-1"

    write_status(settings, "generator", state="running", sent=10, acked=9, seed=5)
    gen = read_status(settings, "generator")
    assert isinstance(gen, GeneratorStatus) and (gen.sent, gen.acked, gen.seed) == (10, 9, 5)

    status.write(settings, BrokerStatus(state="running", broker_pid=12, ready=True))
    assert read_status(settings, "broker") == status.read_as(settings, BrokerStatus)

    status.write(settings, SupervisorStatus(state="running", components={
        "broker": {"state": "running", "pid": 3, "last_crash": {"at": 1.0, "reason": "boom"}}}))
    sup = status.read_supervisor(settings)
    assert sup.components["broker"].pid == 3
    assert sup.components["broker"].last_crash.reason == "boom"


def test_old_new_and_broken_files_still_read(settings):
    path = status_path(settings, "processor")
    path.parent.mkdir(parents=True, exist_ok=True)
    # an older file: no version, fewer keys
    path.write_text(json.dumps({"component": "processor", "pid": 1, "heartbeat": 5.0,
                                "lag": 3}))
    st = read_status(settings, "processor")
    assert st.version == 0 and st.lag == 3 and st.queries == {} and st.data_loss is False
    # a newer file: unknown keys are kept, a value of the wrong type reads as the default
    path.write_text(json.dumps({"version": 9, "lag": "lots", "state": "running",
                                "future_field": [1, 2]}))
    st = read_status(settings, "processor")
    assert st.lag is None and st.state == "running" and st.future_field == [1, 2]
    path.write_text("[1, 2]")
    assert read_status(settings, "processor") is None
    path.write_text("{not json")
    assert read_status(settings, "processor") is None
    assert read_status(settings, "nobody") is None


def test_unknown_component_and_invalid_write(settings):
    write_status(settings, "alpha", state="running", beats=3)
    st = read_status(settings, "alpha")
    assert type(st) is Heartbeat and st.beats == 3
    write_status(settings, "processor", lag={"not": "a number"}, state="running")
    st = read_status(settings, "processor")
    assert st.state == "running" and st.lag is None  # the bad field is left out


def test_lag_and_freshness_from_the_processor_heartbeat(settings):
    now = time.time()
    none = freshness.measure(settings, None, now)
    assert (none.lag, none.rows_per_s, none.commit_age_s, none.freshness_s) == \
        (None, None, None, None)
    proc = ProcessorStatus(heartbeat=now - 1, lag=500, input_rows_per_s=100.0,
                           queries={"ingest": QueryProgress(batch_ms=4500),
                                    "metrics_10s": QueryProgress(batch_ms=None)})
    log_dir = settings.table_path(schemas.TABLE_LOGS) / "_delta_log"
    log_dir.mkdir(parents=True)
    commit = log_dir / "00000000000000000000.json"
    commit.write_text("{}")
    os.utime(commit, (now - 3, now - 3))
    seen = freshness.measure(settings, proc, now)
    assert seen.lag == 500.0 and seen.rows_per_s == 100.0  # input rate until processed is known
    assert seen.commit_age_s == pytest.approx(3.0, abs=0.01)
    assert seen.freshness_s == pytest.approx(3.0 + 500 / 100 + 4.5, abs=0.01)
    assert freshness.processor_lag(Heartbeat(component="generator")) is None
    assert freshness.batch_seconds(None, 2.0) == 2.0
    assert freshness.trigger_seconds("1 minute") == 60.0
    assert freshness.trigger_seconds("soon") == 2.0

    history = freshness.LagHistory(capacity=3)
    history.record(seen)
    history.record(seen)  # the same heartbeat twice: one sample
    for t, v in ((now, 1.0), (now + 1, 2.0), (now + 2, 3.0)):
        history.add(t, v)
    assert history.samples() == [(now, 1.0), (now + 1, 2.0), (now + 2, 3.0)]
    t, v = history.since(now + 1)
    assert list(v) == [2.0, 3.0]


def test_window_sizes_are_defined_once():
    assert list(schemas.WINDOW_SIZES) == ["10s", "1m", "5m", "1h"]
    assert schemas.PARTIAL_WINDOW == "10s"
    assert schemas.window_size("1 minute").seconds == 60.0
    assert schemas.window_size("60s").label == "1m"
    assert schemas.window_size("5 minutes").label == "5m"
    with pytest.raises(ValueError, match="unsupported window"):
        schemas.window_size("2m")


def test_atomic_write(tmp_path):
    target = tmp_path / "sub" / "state.json"
    atomic_write(target, "one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    with pytest.raises(RuntimeError), replacing(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]


def test_stop_on_signals_sets_the_event_and_restores():
    before = signal.getsignal(signal.SIGTERM)
    seen: list[int] = []
    with stop_on_signals(on_signal=seen.append) as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
    assert seen == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is before

    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(on_signals(lambda _s: None)()))
    thread.start()
    thread.join()
    assert outcome == [None]  # outside the main thread: nothing installed
    assert signal.getsignal(signal.SIGTERM) is before
