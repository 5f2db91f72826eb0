"""LogStreamWidget on a real (offscreen) Qt event loop, fed decoded batches directly."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from desktop_app.logstream.columns import (
    COL_ENDPOINT,
    COL_LEVEL,
    COL_MESSAGE,
    COL_OFFSET,
    COL_STATUS,
    COLUMN_COUNT,
)
from desktop_app.logstream.decode import decode_records
from desktop_app.logstream.filter_store import store_path
from desktop_app.logstream.filters import FilterSpec
from desktop_app.logstream.model import SEQ_ROLE
from tests.helpers.logstream import make_event, py_filter, records_for


@pytest.fixture
def widget(qtbot, settings):
    from desktop_app.logstream import LogStreamWidget

    s = settings.model_copy(deep=True)
    s.app.buffer_rows = 1000
    s.app.max_cell_chars = 20
    w = LogStreamWidget(s, autostart=False)
    qtbot.addWidget(w)
    w.resize(1200, 700)
    w.show()
    qtbot.waitUntil(lambda: w._store_loaded, timeout=5000)
    yield w
    w.shutdown()


def _feed(w, events, batch=97, first=0):
    for i in range(0, len(events), batch):
        w.ingest(decode_records(records_for(events[i:i + batch], 0, first + i), w.vocabs))


def _shown_offsets(w):
    m = w.model
    return [int(m.data(m.index(r, COL_OFFSET))) for r in range(m.rowCount())]


def test_model_appends_and_evicts_at_the_ring_limit(widget, qtbot):
    rng = random.Random(5)
    events = [make_event(rng, i) for i in range(2600)]
    removed = []
    widget.model.rowsRemoved.connect(lambda _p, a, b: removed.append(b - a + 1))
    _feed(widget, events)
    m = widget.model
    assert m.rowCount() == 1000 and widget.ring.head == 1600
    assert sum(removed) == 1600  # evictions reached the view as row removals
    assert _shown_offsets(widget) == list(range(1600, 2600))
    for r in (0, 1, 500, 999):
        e = events[1600 + r]
        assert m.data(m.index(r, COL_LEVEL)) == e["level"]
        assert m.data(m.index(r, COL_ENDPOINT)) == e["endpoint"]
        assert m.data(m.index(r, COL_STATUS)) == str(e["status"])
        assert m.data(m.index(r, 0), SEQ_ROLE) == 1600 + r
        msg = m.data(m.index(r, COL_MESSAGE))
        full = e["message"]
        assert msg == (full if len(full) <= 20 else full[:20] + f"… [{len(full):,} chars]")
    assert m.rowCount(m.index(0, 0)) == 0 and m.columnCount() == COLUMN_COUNT
    assert widget.counts() == {"shown": 1000, "buffered": 1000, "evicted": 1600, "dropped": 0}


def test_large_message_truncated_in_cell_whole_in_details(widget, qtbot):
    big = {"ts": 1, "level": "INFO", "message": "start " + "y" * 100_000 + " end"}
    widget.ingest(decode_records(records_for([big]), widget.vocabs))
    cell = widget.model.data(widget.model.index(0, COL_MESSAGE))
    assert cell == "start " + "y" * 14 + "… [100,010 chars]"
    widget.table.selectRow(0)
    qtbot.waitUntil(lambda: widget.details.toPlainText() != "")
    assert json.loads(widget.details.toPlainText()) == big
    assert "partition <b>0</b>, offset <b>0</b>" in widget.lineage_label.text()


FILTERS = [
    FilterSpec(levels=("ERROR",)),
    FilterSpec(sources=("api-*",), status_min=400, status_max=599),
    FilterSpec(text=r"user=(alice|bob)", regex=True, endpoints=("/api/users",)),
]


@pytest.mark.parametrize("spec", FILTERS, ids=range(len(FILTERS)))
def test_filter_view_equals_python_filter_and_follows_appends(widget, qtbot, spec):
    rng = random.Random(11)
    events = [make_event(rng, i) for i in range(1800)]
    _feed(widget, events[:1500])
    with qtbot.waitSignal(widget.filter_applied, timeout=10_000):
        assert widget.set_filter(spec)
    assert _shown_offsets(widget) == py_filter(spec, events, range(500, 1500))
    # new rows pass through the same filter; evicted ones leave the view
    _feed(widget, events[1500:], first=1500)
    assert _shown_offsets(widget) == py_filter(spec, events, range(800, 1800))


def test_invalid_regex_shows_an_error_and_keeps_the_view(widget, qtbot):
    rng = random.Random(2)
    _feed(widget, [make_event(rng, i) for i in range(50)])
    assert not widget.set_filter(FilterSpec(text="(oops", regex=True))
    assert "invalid regular expression" in widget.filter_error.text()
    assert widget.model.rowCount() == 50


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_view_on_worker_matches_filtered_rows(widget, qtbot, tmp_path, fmt):
    rng = random.Random(9)
    events = [make_event(rng, i) for i in range(1200)]
    _feed(widget, events)
    spec = FilterSpec(levels=("WARN", "ERROR"), text="retry")
    with qtbot.waitSignal(widget.filter_applied, timeout=10_000):
        widget.set_filter(spec)
    want = py_filter(spec, events, range(200, 1200))
    out = tmp_path / f"view.{fmt}"
    with qtbot.waitSignal(widget.export_finished, timeout=20_000) as sig:
        assert widget.export_view(out, fmt)
    assert (sig.args[0].written, sig.args[0].evicted) == (len(want), 0)
    if fmt == "jsonl":
        got = [json.loads(x) for x in out.read_text().splitlines()]
        assert got == [{**events[s], "kafka_topic": widget.ring.topic, "kafka_partition": 0,
                        "kafka_offset": s} for s in want]
    else:
        lines = out.read_text().splitlines()
        assert len(lines) == len(want) + 1
        assert [int(x.split(",")[9]) for x in lines[1:]] == want
    # the selection exports exactly the selected rows
    widget.table.selectRow(2)
    out2 = tmp_path / f"sel.{fmt}"
    with qtbot.waitSignal(widget.export_finished, timeout=20_000) as sig:
        widget.export_selection(out2, fmt)
    assert sig.args[0].written == 1


def test_named_filters_persist_across_instances(widget, qtbot, settings):
    from desktop_app.logstream import LogStreamWidget

    spec = FilterSpec(levels=("ERROR",), endpoints=("/login",), status_min=500)
    with qtbot.waitSignal(widget.filter_applied, timeout=5000):
        widget.set_filter(spec)
    assert widget.save_named_filter("login errors")
    path = store_path(widget.settings)
    qtbot.waitUntil(lambda: path.is_file() and "login errors" in path.read_text(),
                    timeout=5000)
    qtbot.waitUntil(lambda: not widget.tasks.busy, timeout=5000)
    again = LogStreamWidget(widget.settings, autostart=False)
    qtbot.addWidget(again)
    qtbot.waitUntil(lambda: again._store_loaded, timeout=5000)
    assert again.store.filters == {"login errors": spec}
    assert again.spec == spec  # the last filter is restored
    assert again.named_combo.findText("login errors") > 0
    with qtbot.waitSignal(again.filter_applied, timeout=5000):
        again.set_filter(FilterSpec())
    with qtbot.waitSignal(again.filter_applied, timeout=5000):
        assert again.use_named_filter("login errors")
    assert again.spec == spec
    again.shutdown()


def test_apply_filter_and_open_in_sql(widget, qtbot):
    rng = random.Random(4)
    events = [make_event(rng, i) for i in range(300)]
    _feed(widget, events)
    ts0 = events[100]["ts"]
    with qtbot.waitSignal(widget.filter_applied, timeout=5000):
        widget.apply_filter(source="web-01", endpoint=None, level=None, start_ms=ts0,
                            end_ms=ts0 + 7 * 100)
    want = [i for i in range(100, 201) if events[i]["source"] == "web-01"]
    assert _shown_offsets(widget) == want
    assert widget.time_label.isVisible()
    widget.table.selectRow(0)
    with qtbot.waitSignal(widget.open_in_sql) as sig:
        widget.sql_button.click()
    sql = sig.args[0]
    e = events[want[0]]
    assert f"source = '{e['source']}'" in sql and f"endpoint = '{e['endpoint']}'" in sql
    assert "FROM logs" in sql


def test_follow_and_stable_view_when_not_following(widget, qtbot):
    rng = random.Random(6)
    events = [make_event(rng, i) for i in range(3000)]
    _feed(widget, events[:1000])
    sb = widget.table.verticalScrollBar()
    assert sb.value() == sb.maximum() > 0
    widget.set_follow(False)
    sb.setValue(500)
    top_before = widget.table.rowAt(0)
    seq_before = widget.model.seq_at(top_before)
    _feed(widget, events[1000:1100], batch=100, first=1000)  # evicts 100 rows above
    assert widget.model.seq_at(widget.table.rowAt(0)) == seq_before
    widget.set_follow(True)
    _feed(widget, events[1100:1200], batch=100, first=1100)
    assert sb.value() == sb.maximum()


def test_copy_selection_to_clipboard(widget, qtbot):
    from PySide6.QtGui import QGuiApplication

    rng = random.Random(8)
    events = [make_event(rng, i) for i in range(20)]
    _feed(widget, events)
    widget.table.selectRow(3)
    QGuiApplication.clipboard().clear()
    widget.copy_selection()
    qtbot.waitUntil(lambda: QGuiApplication.clipboard().text() != "", timeout=5000)
    lines = QGuiApplication.clipboard().text().splitlines()
    assert len(lines) == 2 and lines[1].split("\t")[-1] == events[3]["message"]
    assert np.array_equal(widget.selected_seqs(), [3])


def test_bounded_queue_counts_and_shows_drops(widget, qtbot):
    from desktop_app.logstream.tail import BatchQueue

    rng = random.Random(12)
    events = [make_event(rng, i) for i in range(330)]
    widget.queue = q = BatchQueue(100)
    for i in range(0, 180, 60):
        q.put(decode_records(records_for(events[i:i + 60], 0, i), widget.vocabs))
    assert (len(q), q.dropped) == (60, 120)
    q.put(decode_records(records_for(events[180:330], 0, 180), widget.vocabs))
    assert (len(q), q.dropped) == (100, 230)  # oldest rows go first, every one counted
    widget._drain()
    assert _shown_offsets(widget) == list(range(230, 330))
    widget._update_counters()
    assert "dropped 230" in widget.counters.text() and "#ef5350" in widget.counters.text()
