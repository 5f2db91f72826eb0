"""The live log stream against the real broker: tail, seek to offset/time, pause, lineage."""

from __future__ import annotations

import random
import time

import orjson
import pyarrow as pa
import pytest
from confluent_kafka import Producer

from desktop_app.logstream.columns import COL_MESSAGE
from pipeline.kafka_config import ensure_topic, producer_config
from pipeline.schemas import TABLE_LOGS
from tests.helpers.logstream import make_event


def _produce(settings, events, headers=None, timestamps=None, raw=None):
    """Produce and return {(partition, offset): value} in delivery order."""
    producer = Producer(producer_config(settings))
    delivered = {}
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            delivered[(msg.partition(), msg.offset())] = msg.value()

    values = raw if raw is not None else [orjson.dumps(e) for e in events]
    for i, value in enumerate(values):
        kwargs = {}
        if headers is not None:
            kwargs["headers"] = headers
        if timestamps is not None:
            kwargs["timestamp"] = timestamps[i]
        producer.produce(settings.kafka.topic, value=value, key=str(i % 7).encode(),
                         on_delivery=on_delivery, **kwargs)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert errors == []
    return delivered


@pytest.fixture
def live(qtbot, kafka_settings):
    from desktop_app.logstream import LogStreamWidget

    ensure_topic(kafka_settings, partitions=3)
    w = LogStreamWidget(kafka_settings)
    qtbot.addWidget(w)
    w.show()
    try:
        with qtbot.waitSignal(w.jumped, timeout=30_000) as sig:
            pass
        assert sorted(sig.args[1]) == [0, 1, 2]  # every partition assigned, at its end
        yield w
    finally:
        w.shutdown()
    assert w._thread is None


def _rows(w):
    """{(partition, offset): event} of every row in the view."""
    out = {}
    for r in range(w.model.rowCount()):
        seq = w.model.seq_at(r)
        rec = w.ring.record(seq)
        key = (rec["kafka_partition"], rec["kafka_offset"])
        assert key not in out, f"duplicate row {key}"
        out[key] = w.ring.event(seq)
    return out


def test_produced_events_appear_exactly_once(live, qtbot, kafka_settings):
    rng = random.Random(21)
    # events produced before the widget started are not shown (it starts at the end)
    events = [make_event(rng, i) for i in range(600)]
    delivered = _produce(kafka_settings, events)
    qtbot.waitUntil(lambda: live.model.rowCount() >= 600, timeout=30_000)
    qtbot.wait(500)  # nothing more arrives
    rows = _rows(live)
    assert len(rows) == 600
    assert rows == {k: orjson.loads(v) for k, v in delivered.items()}
    # a raw access-log line from the shipper: raw text as the message, format from header
    line = ('10.0.0.9 - - [27/Nov/2026:10:00:00 +0000] "GET /health HTTP/1.1" 200 2 "-" '
            '"kube-probe/1.29"')
    raw = _produce(kafka_settings, None, raw=[line.encode()],
                   headers=[("format", b"combined"), ("source", b"node-7")])
    qtbot.waitUntil(lambda: live.model.rowCount() == 601, timeout=30_000)
    last = live.model.rowCount() - 1
    assert live.model.data(live.model.index(last, COL_MESSAGE)) == line
    rec = live.ring.record(live.model.seq_at(last))
    assert (rec["source"], rec["endpoint"], rec["status"]) == ("node-7", "/health", 200)
    assert (rec["kafka_partition"], rec["kafka_offset"]) == next(iter(raw))
    assert live.counts()["dropped"] == 0


def test_seek_to_offset_shows_that_event(live, qtbot, kafka_settings):
    rng = random.Random(22)
    events = [make_event(rng, i) for i in range(300)]
    delivered = _produce(kafka_settings, events)
    qtbot.waitUntil(lambda: live.model.rowCount() == 300, timeout=30_000)
    (p, o) = sorted(delivered)[len(delivered) // 2]
    with qtbot.waitSignal(live.jumped, timeout=30_000):
        live.jump_to_offset(p, o)
    expected = {k: orjson.loads(v) for k, v in delivered.items() if k[0] == p and k[1] >= o}
    qtbot.waitUntil(lambda: live.model.rowCount() == len(expected), timeout=30_000)
    qtbot.waitUntil(lambda: live.selected_details() is not None, timeout=10_000)
    d = live.selected_details()
    assert (d["kafka_partition"], d["kafka_offset"]) == (p, o)
    assert d["event"] == orjson.loads(delivered[(p, o)])
    assert _rows(live) == expected
    # an offset outside the partition is a clear error, and the view is kept
    with qtbot.waitSignal(live.error, timeout=10_000) as err:
        live.jump_to_offset(p, 10_000_000)
    assert "outside partition" in err.args[0]
    assert live.model.rowCount() == len(expected)


def test_jump_to_time_and_pause(live, qtbot, kafka_settings):
    rng = random.Random(23)
    base = int(time.time() * 1000) - 60_000
    stamps = [base + i * 100 for i in range(200)]
    events = [make_event(rng, i) for i in range(200)]
    delivered = _produce(kafka_settings, events, timestamps=stamps)
    by_value = {orjson.dumps(e): stamps[i] for i, e in enumerate(events)}
    qtbot.waitUntil(lambda: live.model.rowCount() == 200, timeout=30_000)
    cut = base + 150 * 100
    with qtbot.waitSignal(live.jumped, timeout=30_000):
        live.jump_to_time(cut)
    expected = {k for k, v in delivered.items() if by_value[v] >= cut}
    assert len(expected) == 50
    qtbot.waitUntil(lambda: live.model.rowCount() == 50, timeout=30_000)
    assert set(_rows(live)) == expected
    # pause: nothing is read, nothing lost; resume catches up
    live.set_paused(True)
    qtbot.wait(300)
    _produce(kafka_settings, [make_event(rng, 1000 + i) for i in range(40)])
    qtbot.wait(1500)
    assert live.model.rowCount() == 50
    live.set_paused(False)
    qtbot.waitUntil(lambda: live.model.rowCount() == 90, timeout=30_000)


def test_delta_version_lookup_on_worker(live, qtbot, kafka_settings):
    from deltalake import write_deltalake

    rng = random.Random(24)
    events = [make_event(rng, i) for i in range(30)]
    delivered = _produce(kafka_settings, events)
    qtbot.waitUntil(lambda: live.model.rowCount() == 30, timeout=30_000)
    keys = sorted(delivered)
    path = str(kafka_settings.table_path(TABLE_LOGS))
    # the processor's table, written in three commits (versions 0, 1, 2)
    for chunk in (keys[:10], keys[10:20], keys[20:]):
        write_deltalake(path, pa.table({
            "event_id": [orjson.loads(delivered[k])["event_id"] for k in chunk],
            "kafka_topic": [kafka_settings.kafka.topic] * len(chunk),
            "kafka_partition": pa.array([k[0] for k in chunk], pa.int32()),
            "kafka_offset": pa.array([k[1] for k in chunk], pa.int64()),
        }), mode="append")
    target = keys[15]
    seq = live.ring.find_offset(*target)
    with qtbot.waitSignal(live.lineage_ready, timeout=30_000) as sig:
        assert live.lookup_delta_version(seq)
    res = sig.args[0]
    assert res.found and res.added_version == 1 and res.current_version == 2
    assert res.row["event_id"] == orjson.loads(delivered[target])["event_id"]
