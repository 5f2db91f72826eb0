"""Pure parts of the live log stream: ring buffer, decoding, filters, export, filter store."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import orjson
import pytest

from desktop_app.logstream import filters as filters_mod
from desktop_app.logstream import ring as ring_mod
from desktop_app.logstream.decode import EventBatch, decode_records
from desktop_app.logstream.export import export_rows, rows_as_tsv
from desktop_app.logstream.filter_store import FilterStore, FilterStoreError
from desktop_app.logstream.filters import FilterError, FilterSpec, evaluate
from desktop_app.logstream.ring import LogRing
from desktop_app.logstream.sqltext import query_for_row, sql_literal
from desktop_app.logstream.vocab import OVERFLOW, Vocabs
from tests.helpers.logstream import make_event, py_filter, records_for


def _fill(ring: LogRing, events, batch=37, partition=0, first_offset=0):
    for i in range(0, len(events), batch):
        recs = records_for(events[i:i + batch], partition, first_offset + i)
        ring.append(decode_records(recs, ring.vocabs))


def test_decode_json_and_raw_lines():
    v = Vocabs()
    line = ('10.1.2.3 - - [27/Nov/2026:10:00:00 +0000] "GET /api/x?q=1 HTTP/1.1" 404 512 '
            '"-" "curl/8"')
    recs = [
        (orjson.dumps({"ts": 1000, "level": "warn", "source": "s1", "status": 503,
                       "latency_ms": 1.5, "message": "m"}), None, 2, 7, 99),
        (line.encode(), [("format", b"combined"), ("source", b"host-a"),
                         ("event_id", b"f:1")], 1, 3, 5000),
        (b"not json at all", None, 0, 1, 777),
        (b"[1,2]", None, 0, 2, 778),
    ]
    b = decode_records(recs, v)
    assert len(b) == 4
    assert b.ts.tolist() == [1000 * 1000, 1_795_773_600_000, 777, 778]
    assert [v.level.decode(c) for c in b.level] == ["WARN", "WARN", None, None]
    assert [v.source.decode(c) for c in b.source] == ["s1", "host-a", None, None]
    assert v.endpoint.decode(b.endpoint[1]) == "/api/x"
    assert b.status.tolist() == [503, 404, -1, -1]
    assert [v.fmt.decode(c) for c in b.fmt] == ["json", "combined", "text", "text"]
    assert b.offset.tolist() == [7, 3, 1, 2] and b.partition.tolist() == [2, 1, 0, 0]
    assert set(b.extras) == {1, 2, 3}
    r = LogRing(10, 1 << 20, v, topic="t")
    r.append(b)
    assert r.message(0) == "m"
    assert r.message(1) == line  # raw text is the message
    assert r.event(1) == {"raw": line, "headers": {"format": "combined", "source": "host-a",
                                                   "event_id": "f:1"}}
    assert r.event(2)["raw"] == "not json at all"


def test_ring_appends_and_evicts_exactly_at_wraparound():
    rng = random.Random(1)
    events = [make_event(rng, i) for i in range(2500)]
    r = LogRing(1000, 64 << 20, topic="t")
    _fill(r, events, batch=333)
    assert (r.head, r.tail, len(r)) == (1500, 2500, 1000)
    assert r.evicted_total == 1500
    for seq in range(r.head, r.tail):
        e = events[seq]
        rec = r.record(seq)
        assert rec["kafka_offset"] == seq
        assert rec["message"] == e["message"]
        assert rec["source"] == e["source"] and rec["status"] == e["status"]
        assert r.event(seq) == e
    # a batch larger than the ring keeps its newest rows only, and counts the rest
    res = r.append(decode_records(records_for(events[:1200], first_offset=10_000), r.vocabs))
    assert res.written == 1000 and res.evicted == 1200
    assert [r.record(s)["kafka_offset"] for s in range(r.head, r.tail)] == \
        list(range(10_200, 11_200))


def test_ring_byte_budget_bounds_memory_with_large_messages(monkeypatch):
    monkeypatch.setattr(ring_mod, "CHUNK_BYTES", 4096)
    r = LogRing(100_000, 64 * 1024)
    big = [{"ts": i, "message": "x" * 3000 + str(i)} for i in range(200)]
    for i in range(0, 200, 10):
        r.append(decode_records([(orjson.dumps(e), None, 0, i + j, 0)
                                 for j, e in enumerate(big[i:i + 10])], r.vocabs))
        assert r.bytes.allocated <= 64 * 1024 + 10 * 3100
    assert r.tail == 200 and 0 < len(r) < 30
    assert r.evicted_total == r.head
    for s in range(r.head, r.tail):
        assert r.message(s) == "x" * 3000 + str(s)


def test_vocab_overflow_falls_back_to_the_event():
    v = Vocabs(max_size=3)
    events = [{"ts": i, "endpoint": f"/e/{i}", "source": "s"} for i in range(6)]
    r = LogRing(100, 1 << 20, v)
    r.append(decode_records([(orjson.dumps(e), None, 0, i, 0) for i, e in enumerate(events)],
                            v))
    assert r.take("endpoint", np.arange(6)).tolist()[3:] == [OVERFLOW] * 3
    assert [r.record(s)["endpoint"] for s in range(6)] == [f"/e/{i}" for i in range(6)]
    got = evaluate(FilterSpec(endpoints=("/e/1", "/e/4")), r)
    assert got.tolist() == [1, 4]




SPECS = [
    FilterSpec(),
    FilterSpec(levels=("ERROR", "WARN")),
    FilterSpec(sources=("api-01",), status_min=400, status_max=499),
    FilterSpec(endpoints=("/api/*",), levels=("INFO",)),
    FilterSpec(text="TIMEOUT"),
    FilterSpec(text="timeout", case_sensitive=True, status_min=500),
    FilterSpec(text=r"user=(alice|bob) #\d*7\b", regex=True),
    FilterSpec(text="a.b*c"),
    FilterSpec(text="ÜNÏCODE", levels=("DEBUG", "ERROR")),
    FilterSpec(text=r"slow\s+query", regex=True, sources=("web-01", "auth-01"),
               endpoints=("/login", "/"), status_max=399),
    FilterSpec(start_ms=1_780_000_000_000 + 7 * 3000, end_ms=1_780_000_000_000 + 7 * 3500),
]


@pytest.mark.parametrize("spec", SPECS, ids=range(len(SPECS)))
def test_filters_match_a_plain_python_filter(spec):
    rng = random.Random(7)
    events = [make_event(rng, i) for i in range(6000)]
    r = LogRing(4000, 64 << 20)
    _fill(r, events, batch=251)  # wrapped: seqs 2000..5999 live
    got = evaluate(spec, r).tolist()
    want = py_filter(spec, events, range(r.head, r.tail))
    assert got == want
    assert len(got) > 0
    # the incremental path (a sub-range, as on append) agrees with the full evaluation
    part = evaluate(spec, r, 5000, 6000).tolist()
    assert part == [s for s in want if s >= 5000]


@pytest.mark.parametrize("spec", [SPECS[4], SPECS[6], SPECS[9]], ids=["text", "regex", "mixed"])
def test_text_search_split_across_threads_matches_a_plain_python_filter(spec, monkeypatch):
    """Many small byte chunks and no size floor: the search runs as several kernel calls on
    threads, and their concatenated answer is still row for row the plain filter's."""
    monkeypatch.setattr(ring_mod, "CHUNK_BYTES", 64 << 10)
    monkeypatch.setattr(filters_mod, "_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(filters_mod, "_SEARCH_THREADS", 3)
    rng = random.Random(11)
    events = [make_event(rng, i) for i in range(6000)]
    r = LogRing(4000, 64 << 20)
    _fill(r, events, batch=251)
    assert len(r.bytes.chunks) > 3
    got = evaluate(spec, r).tolist()
    assert got == py_filter(spec, events, range(r.head, r.tail))
    assert len(got) > 0


def test_invalid_regex_is_a_clear_error():
    spec = FilterSpec(text="(unclosed", regex=True)
    with pytest.raises(FilterError, match="invalid regular expression"):
        spec.validate()
    with pytest.raises(FilterError, match="unknown filter keys"):
        FilterSpec.from_dict({"levls": ["INFO"]})


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_of_filtered_view_matches_rows(tmp_path, fmt):
    rng = random.Random(3)
    events = [make_event(rng, i) for i in range(3000)]
    r = LogRing(2500, 64 << 20, topic="web-logs")
    _fill(r, events, batch=100, partition=1)
    spec = FilterSpec(levels=("ERROR",), text="retry")
    seqs = evaluate(spec, r)
    want = py_filter(spec, events, range(r.head, r.tail))
    assert seqs.tolist() == want
    progress = []
    res = export_rows(r, seqs, tmp_path / f"out.{fmt}", fmt,
                      progress=lambda d, t: progress.append((d, t)))
    assert (res.written, res.evicted) == (len(want), 0)
    assert progress[-1] == (len(want), len(want))
    text = (tmp_path / f"out.{fmt}").read_text(encoding="utf-8")
    if fmt == "jsonl":
        rows = [json.loads(line) for line in text.splitlines()]
        assert rows == [{**events[s], "kafka_topic": "web-logs", "kafka_partition": 1,
                         "kafka_offset": s} for s in want]
    else:
        rows = list(csv.DictReader(text.splitlines()))
        assert len(rows) == len(want)
        for row, s in zip(rows, want, strict=True):
            e = events[s]
            assert row["message"] == e["message"] and row["endpoint"] == e["endpoint"]
            assert int(row["status"]) == e["status"] and int(row["kafka_offset"]) == s
            assert float(row["latency_ms"]) == pytest.approx(e["latency_ms"], abs=1e-3)
            assert row["ts"] == ring_mod.format_ts(e["ts"])
    tsv = rows_as_tsv(r, seqs[:3]).splitlines()
    assert len(tsv) == 4 and tsv[1].split("\t")[-1] == events[want[0]]["message"]


def test_export_counts_rows_evicted_before_export(tmp_path):
    rng = random.Random(4)
    events = [make_event(rng, i) for i in range(2000)]
    r = LogRing(1000, 64 << 20)
    _fill(r, events[:1000])
    seqs = evaluate(FilterSpec(), r)
    _fill(r, events[1000:1400], first_offset=1000)  # 400 of the selected rows leave
    res = export_rows(r, seqs, tmp_path / "x.jsonl", "jsonl")
    assert (res.written, res.evicted) == (600, 400)
    lines = (tmp_path / "x.jsonl").read_text().splitlines()
    assert [json.loads(x)["kafka_offset"] for x in lines] == list(range(400, 1000))


def test_filter_store_roundtrip_and_corrupt_file(tmp_path):
    path = tmp_path / "app" / "f.json"
    s = FilterStore(path)
    spec = FilterSpec(levels=("ERROR",), sources=("api-*",), status_min=500, text="x",
                      regex=True, start_ms=5)
    s.put("errors", spec)
    s.last = FilterSpec(text="hello")
    s.save()
    again = FilterStore(path).load()
    assert again.filters == {"errors": spec}
    assert again.last == FilterSpec(text="hello")
    path.write_text("{broken")
    with pytest.raises(FilterStoreError, match="cannot read saved filters"):
        FilterStore(path).load()
    assert path.read_text() == "{broken"  # never overwritten by a failed load


def test_sql_text_escapes_and_bounds_partitions():
    q = query_for_row(1_780_000_000_000, source="it's", endpoint="/a\\b", window_ms=60_000)
    assert "source = 'it\\'s'" in q and "endpoint = '/a\\\\b'" in q
    assert "date BETWEEN DATE '2026-05-28' AND DATE '2026-05-28'" in q
    assert "ts BETWEEN TIMESTAMP '2026-05-28 20:25:40.000' AND " \
           "TIMESTAMP '2026-05-28 20:27:40.000'" in q
    assert sql_literal("a'b") == "'a\\'b'"


def test_empty_batch_and_concat():
    v = Vocabs()
    a = decode_records(records_for([{"ts": 1, "message": "a"}]), v)
    b = decode_records([(b"raw", [("format", b"common")], 0, 1, 9)], v)
    c = EventBatch.concat([a, EventBatch.empty(), b])
    assert len(c) == 2 and set(c.extras) == {1}
    r = LogRing(10, 1 << 20, v)
    r.append(c)
    assert r.message(0) == "a" and r.message(1) == "raw"
    assert len(c.tail(1)) == 1 and c.tail(1).blob == b"raw"


def test_pure_modules_do_not_import_qt():
    import subprocess
    import sys

    code = ("import sys\n"
            "import desktop_app.logstream.columns, desktop_app.logstream.decode, "
            "desktop_app.logstream.export, desktop_app.logstream.filter_store, "
            "desktop_app.logstream.filters, desktop_app.logstream.jump, "
            "desktop_app.logstream.lineage, desktop_app.logstream.ring, "
            "desktop_app.logstream.sqltext, desktop_app.logstream.vocab\n"
            "print(sorted(m for m in sys.modules if m.startswith('PySide6')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_parse_jump():
    from desktop_app.logstream.jump import parse_jump

    assert parse_jump("2:1234") == ("offset", 2, 1234)
    assert parse_jump(" 0 / 7 ") == ("offset", 0, 7)
    assert parse_jump("-5m", now_ms=1_000_000) == ("time", 700_000, 0)
    assert parse_jump("2026-05-28 20:26:40") == ("time", 1_780_000_000_000, 0)
    assert parse_jump("1780000000") == ("time", 1_780_000_000_000, 0)
    with pytest.raises(ValueError, match="cannot jump to"):
        parse_jump("yesterday-ish")


def test_delta_lineage_of_a_kafka_record(tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    from desktop_app.logstream.lineage import find_delta_version

    path = tmp_path / "logs"
    missing = find_delta_version(path, "t", 0, 1)
    assert not missing.found and missing.current_version is None
    for v in range(4):
        write_deltalake(str(path), pa.table({
            "event_id": [f"e{v}-{i}" for i in range(5)],
            "kafka_topic": ["t"] * 5,
            "kafka_partition": pa.array([v % 2] * 5, pa.int32()),
            "kafka_offset": pa.array([v * 5 + i for i in range(5)], pa.int64()),
            "date": ["2026-11-27"] * 5,
        }), mode="append", partition_by=["date"])
    res = find_delta_version(path, "t", 0, 12)
    assert res.found and (res.added_version, res.current_version) == (2, 3)
    assert res.row["event_id"] == "e2-2" and res.file.startswith("date=2026-11-27/")
    nope = find_delta_version(path, "t", 1, 12)
    assert not nope.found and nope.current_version == 3 and "not have written" in nope.note


def test_status_filter_text_roundtrip():
    from desktop_app.logstream.filters import parse_status, status_text

    cases = {"500": (500, 500), "4xx": (400, 499), "400-499": (400, 499),
             ">=500": (500, None), "<400": (None, 399), "": (None, None)}
    for text, bounds in cases.items():
        assert parse_status(text) == bounds
    assert status_text(FilterSpec(status_min=400, status_max=499)) == "4xx"
    assert status_text(FilterSpec(status_min=500)) == ">=500"
    with pytest.raises(FilterError, match="status"):
        parse_status("abc")
