"""Pure transforms of the streaming processor on small frames, with exact expected values."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import functions as F

from pipeline import access_log
from pipeline.latency_hist import ALPHA, histogram, quantiles
from pipeline.transforms import analytics
from pipeline.transforms.columns import LOGS_COLUMNS, METRICS_COLUMNS, QUARANTINE_COLUMNS
from pipeline.transforms.metrics import (
    batch_partials,
    fold_partials,
    merge_partials,
    merged_view_sql,
    window_metrics,
)
from pipeline.transforms.parsing import (
    dedup_key,
    parse_records,
    quarantined,
    valid_logs,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
KAFKA_SCHEMA = (
    "value binary, topic string, partition int, offset long, timestamp timestamp, "
    "headers array<struct<key:string,value:binary>>"
)


def _naive(dt: datetime) -> datetime:
    """Spark returns UTC timestamps as naive datetimes (session and test TZ are UTC)."""
    return dt.astimezone(UTC).replace(tzinfo=None)


def event(**over) -> dict:
    base = {
        "event_id": "ev-1", "ts": NOW_MS - 1500, "level": "info", "source": "web",
        "method": "GET", "endpoint": "/products", "status": 200, "latency_ms": 12.5,
        "bytes": 4321, "client_ip": "10.0.0.7", "user_agent": "curl/8", "message": "ok",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def records(spark, values, headers=None):
    rows = []
    for i, v in enumerate(values):
        if isinstance(v, dict):
            v = json.dumps(v).encode()
        elif isinstance(v, str):
            v = v.encode()
        hdrs = [(k, val.encode()) for k, val in (headers[i] if headers else {}).items()]
        rows.append((v, "t1", 2, 100 + i, _naive(NOW), hdrs))
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


def parse(spark, values, headers=None, max_bytes=10_000):
    return parse_records(
        records(spark, values, headers), max_message_bytes=max_bytes, max_past_s=3600,
        max_future_s=60, now=F.lit(_naive(NOW)),
    )


def test_json_event_parses_to_exact_logs_row(spark):
    row = valid_logs(parse(spark, [event()])).collect()
    assert len(row) == 1
    assert row[0].asDict() == {
        "event_id": "ev-1", "ts": _naive(NOW - timedelta(milliseconds=1500)), "level": "INFO",
        "source": "web", "method": "GET", "endpoint": "/products", "status": 200,
        "latency_ms": 12.5, "bytes": 4321, "client_ip": "10.0.0.7", "user_agent": "curl/8",
        "message": "ok", "raw_format": "json", "kafka_topic": "t1", "kafka_partition": 2,
        "kafka_offset": 100, "kafka_timestamp": _naive(NOW), "ingest_ts": _naive(NOW),
        "date": NOW.date(),
    }


def test_json_optional_fields_and_iso_timestamp(spark):
    ev = event(latency_ms=..., bytes=..., client_ip=..., user_agent=..., message=...,
               ts="2026-03-01T11:59:00Z")
    row = valid_logs(parse(spark, [ev])).collect()[0]
    assert row.ts == _naive(NOW - timedelta(minutes=1))
    assert (row.latency_ms, row.bytes, row.client_ip, row.user_agent, row.message) == (
        None, None, None, None, None)


def test_combined_and_common_lines_parse_exactly(spark):
    ts_ms = NOW_MS - 5000
    combined = access_log.format_combined(
        "192.168.1.9", ts_ms, "POST", "/api/cart?id=7", 404, 0,
        referer="https://x.example/", user_agent='Mozilla/5.0 "quoted"',
    )
    common = access_log.format_common("10.1.1.1", ts_ms, "GET", "/", 503, 512)
    rows = valid_logs(parse(spark, [combined, common], headers=[{"source": "nginx-1"}, {}]))
    got = {r.client_ip: r.asDict() for r in rows.collect()}
    when = _naive(NOW - timedelta(seconds=5))
    c, m = got["192.168.1.9"], got["10.1.1.1"]
    assert (c["ts"], c["level"], c["source"], c["method"], c["endpoint"], c["status"],
            c["latency_ms"], c["bytes"], c["user_agent"], c["message"], c["raw_format"]) == (
        when, "WARN", "nginx-1", "POST", "/api/cart", 404, None, 0,
        'Mozilla/5.0 \\"quoted\\"', "POST /api/cart?id=7 HTTP/1.1", "combined")
    assert c["event_id"] == "t1-2-100"
    assert (m["ts"], m["level"], m["source"], m["method"], m["endpoint"], m["status"],
            m["bytes"], m["user_agent"], m["message"], m["raw_format"]) == (
        when, "ERROR", "access-log", "GET", "/", 503, 512, None, "GET / HTTP/1.1", "common")
    # Same answer as the Python parser of the sources helper.
    py = access_log.parse_line(combined, "combined")
    assert (py["endpoint"], py["status"], py["bytes"], py["message"], py["level"]) == (
        c["endpoint"], c["status"], c["bytes"], c["message"], c["level"])


def test_event_id_from_body_then_header_then_coordinates(spark):
    line = access_log.format_common("10.1.1.1", NOW_MS, "GET", "/", 200, 1)
    df = parse(spark, [event(event_id="body-id"), event(event_id=...), line, line],
               headers=[{"event_id": "hdr-a"}, {"event_id": "hdr-b"}, {"event_id": "f:9:123"}, {}])
    ids = [r.event_id for r in df.orderBy("kafka_offset").collect()]
    assert ids == ["body-id", "hdr-b", "f:9:123", "t1-2-103"]


BAD_UTF8 = "invalid UTF-8: the message body is not UTF-8 text"
MALFORMED = [
    ("bad json", b'{"ts": 1, "status": 200', "malformed JSON: the body is not one JSON object"),
    ("json array", b"[1, 2, 3]", "unrecognised format: neither a JSON object nor a "
                                 "combined/common access-log line"),
    ("binary garbage", bytes(range(0x80, 0x100)), BAD_UTF8),
    ("invalid utf8 in json", b'{"message": "caf\xe9"}', BAD_UTF8),
    ("empty", b"", "empty message"),
    ("blank", b"   \n", "empty message"),
    ("oversize", json.dumps(event(message="x" * 20_000)).encode(),
     "oversize: 20{n} bytes > max_message_bytes 10000"),
    ("missing fields", event(source=..., status=...), "missing field: source, status"),
    ("empty string field", event(endpoint=""), "missing field: endpoint"),
    ("wrong types", event(status="200", latency_ms="fast"),
     "wrong type: status (expected a number), latency_ms (expected a number)"),
    ("bad ts string", event(ts="yesterday"), "wrong type: ts (expected a number)"),
    ("ts not epoch ms", event(ts=-5),
     "bad timestamp: ts is not epoch milliseconds or an ISO-8601 time"),
    ("too old", event(ts=NOW_MS - 7200_000),
     "timestamp too old: 2026-03-01T10:00:00Z is 7200 s before ingest time (limit 3600 s)"),
    ("future", event(ts=NOW_MS + 120_000),
     "timestamp in future: 2026-03-01T12:02:00Z is 120 s after ingest time (limit 60 s)"),
    ("bad level", event(level="loud"),
     "invalid value: level 'LOUD' is not one of DEBUG, INFO, WARN, ERROR"),
    ("bad status", event(status=999), "invalid value: status 999 is outside 100-599"),
    ("negative latency", event(latency_ms=-1.5), "invalid value: latency_ms -1.5 is negative"),
    ("negative bytes", event(bytes=-3), "invalid value: bytes -3 is negative"),
    ("plain text", b"hello there", "unrecognised format: neither a JSON object nor a "
                                   "combined/common access-log line"),
    ("bad access time", b'1.2.3.4 - - [31/Foo/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5',
     "bad timestamp: '31/Foo/2026:10:00:00 +0000' is not dd/MMM/yyyy:HH:mm:ss Z"),
]


def test_each_malformed_kind_gets_its_reason(spark):
    values = [v for _, v, _ in MALFORMED]
    # A header that names a format the body does not follow.
    values.append(b"not an access log line")
    headers = [{} for _ in MALFORMED] + [{"format": "combined"}]
    parsed = parse(spark, values, headers=headers)
    assert valid_logs(parsed).count() == 0
    rows = {r.kafka_offset: r for r in quarantined(parsed).collect()}
    assert len(rows) == len(values)
    for i, (kind, raw, reason) in enumerate(MALFORMED):
        got = rows[100 + i]
        if "{n}" in reason:
            reason = reason.replace("20{n}", str(len(raw)))
        assert got.reason == reason, kind
        assert bytes(got.raw) == (raw if isinstance(raw, bytes) else json.dumps(raw).encode())
        assert (got.kafka_topic, got.kafka_partition, got.date) == ("t1", 2, NOW.date())
    last = rows[100 + len(MALFORMED)]
    assert last.reason == "no match: the line is not a combined access-log line"


def test_output_frames_have_the_contract_schemas(spark):
    parsed = parse(spark, [event(), b"junk"])
    assert [(f.name, f.dataType.simpleString()) for f in valid_logs(parsed).schema] == [
        (n, t.lower().replace("bigint", "bigint")) for n, t in LOGS_COLUMNS
    ]
    assert [f.name for f in quarantined(parsed).schema] == [n for n, _ in QUARANTINE_COLUMNS]


def test_dedup_key_distinguishes_valid_ids_from_rejected_rows(spark):
    parsed = dedup_key(parse(spark, [event(), event(), b"junk", b"junk"]))
    keys = [r.dedup_key for r in parsed.orderBy("kafka_offset").collect()]
    assert keys == ["e:ev-1", "e:ev-1", "q:t1:2:102", "q:t1:2:103"]
    assert parsed.dropDuplicates(["dedup_key"]).count() == 3


def _logs_frame(spark, rows):
    schema = "ts timestamp, source string, endpoint string, level string, status int, " \
             "latency_ms double, bytes bigint"
    return spark.createDataFrame(rows, schema)


def test_window_metrics_equal_hand_computed_values(spark):
    t0 = datetime(2026, 3, 1, 12, 0, 0)
    s = timedelta(seconds=1)
    rows = [
        (t0 + 1 * s, "web", "/a", "INFO", 200, 10.0, 100),
        (t0 + 2 * s, "web", "/a", "INFO", 200, 30.0, 200),
        (t0 + 3 * s, "web", "/a", "INFO", 404, 20.0, 50),
        (t0 + 4 * s, "web", "/a", "INFO", 503, 40.0, None),   # error by status
        (t0 + 9 * s, "web", "/a", "INFO", 301, None, 10),     # no latency
        (t0 + 12 * s, "web", "/a", "INFO", 200, 5.0, 1),      # next 10 s window
        (t0 + 5 * s, "web", "/a", "ERROR", 200, 7.0, 3),      # error by level
    ]
    m = window_metrics(_logs_frame(spark, rows), "10s")
    assert [(f.name) for f in m.schema] == [n for n, _ in METRICS_COLUMNS]
    got = {(r.window_start, r.level): r.asDict() for r in m.collect()}
    assert len(got) == 3
    a = got[(t0, "INFO")]
    latencies = {k: a.pop(k) for k in ("latency_p50", "latency_p95", "latency_p99")}
    assert a == {
        "window_start": t0, "window_end": t0 + 10 * s, "window_size": "10s", "source": "web",
        "endpoint": "/a", "level": "INFO", "requests": 5, "errors": 1, "error_rate": 0.2,
        "bytes": 360,
        "status_2xx": 2, "status_3xx": 1, "status_4xx": 1, "status_5xx": 1, "status_404": 1,
    }
    # the exact values (rank ceil(p n) of 10, 20, 30, 40) within the histograms' 1 %
    assert latencies == pytest.approx({"latency_p50": 20.0, "latency_p95": 40.0,
                                       "latency_p99": 40.0}, rel=ALPHA)
    e = got[(t0, "ERROR")]
    assert (e["requests"], e["errors"], e["error_rate"]) == (1, 1, 1.0)
    assert e["latency_p50"] == pytest.approx(7.0, rel=ALPHA)
    b = got[(t0 + 10 * s, "INFO")]
    assert (b["requests"], b["errors"], b["bytes"]) == (1, 0, 1)
    assert b["latency_p99"] == pytest.approx(5.0, rel=ALPHA)
    one_min = window_metrics(_logs_frame(spark, rows), "1m").collect()
    by_level = {r.level: r for r in one_min}
    assert by_level["INFO"].requests == 6 and by_level["INFO"].window_size == "1m"
    assert by_level["INFO"].window_end == t0 + timedelta(minutes=1)
    # sorted 5,10,20,30,40 -> rank ceil(2.5)=3
    assert by_level["INFO"].latency_p50 == pytest.approx(20.0, rel=ALPHA)


def test_partials_merge_to_the_whole_and_fold_changes_nothing(spark):
    """Partials of one window written by three batches merge to the single-batch answer, in
    every window size, and folding them into one row per window gives the same answers."""
    import random

    rnd = random.Random(5)
    t0 = datetime(2026, 3, 1, 12, 0, 0)
    rows = [(t0 + timedelta(milliseconds=rnd.randint(0, 179_999)), rnd.choice(["web", "api"]),
             "/a", rnd.choice(["INFO", "ERROR"]), rnd.choice([200, 404, 503]),
             None if i % 40 == 0 else rnd.lognormvariate(3, 1.2), 10) for i in range(3000)]
    logs = _logs_frame(spark, rows)
    # the stream's form (one shuffle into `partitions` tasks) and the table form agree
    parts = [batch_partials(logs.where(f"pmod(hash(latency_ms), 3) = {k}"), batch_id=k,
                            watermark_us=None, partitions=(None, 1, 2)[k]) for k in range(3)]
    assert parts[1].rdd.getNumPartitions() == 1
    # computed once: every assertion below re-reads them (unpersisted at the end)
    partials = parts[0].unionByName(parts[1]).unionByName(parts[2]).cache()
    folded = fold_partials(partials).cache()
    assert folded.count() < partials.count()
    for size in ("10s", "1m", "5m"):
        whole = {(r.window_start, r.source, r.level): r
                 for r in window_metrics(logs, size).collect()}
        for frame in (partials, folded):
            merged = {(r.window_start, r.source, r.level): r
                      for r in merge_partials(frame, size).collect()}
            assert set(merged) == set(whole)
            for key, r in merged.items():
                assert r.asDict() == {**whole[key].asDict(), "provisional": True}, key
    # the SQL view text gives what the DataFrame merge gives
    partials.createOrReplaceTempView("partials_under_test")
    view = {(r.window_start, r.source, r.level): r.asDict()
            for r in spark.sql(merged_view_sql("partials_under_test", "1m")).collect()}
    assert view == {(r.window_start, r.source, r.level): r.asDict()
                    for r in merge_partials(partials, "1m").collect()}
    folded.unpersist()
    partials.unpersist()


def test_histogram_percentiles_within_alpha_of_exact(spark):
    """The documented bound, on heavy-tailed data: every percentile within 1 % of exact."""
    import math
    import random

    rnd = random.Random(9)
    t0 = datetime(2026, 3, 1, 12, 0, 0)
    values = [rnd.paretovariate(1.2) * 3 for _ in range(5000)] + [0.0, 1e-6, 250_000.0]
    rows = [(t0, "web", "/a", "INFO", 200, v, 1) for v in values]
    r = window_metrics(_logs_frame(spark, rows), "10s").first()
    ordered = sorted(values)
    for p, col in ((0.5, "latency_p50"), (0.95, "latency_p95"), (0.99, "latency_p99")):
        exact = ordered[math.ceil(p * len(ordered)) - 1]
        assert abs(getattr(r, col) - exact) <= ALPHA * exact, col
    assert quantiles(histogram(values)) == pytest.approx(
        [r.latency_p50, r.latency_p95, r.latency_p99], rel=1e-12)


def test_window_metrics_rejects_unknown_size(spark):
    with pytest.raises(ValueError, match="window_size"):
        window_metrics(_logs_frame(spark, []), "2m")


def test_analytics_reports_exact(spark):
    t0 = datetime(2026, 3, 1, 12, 0, 0)
    rows = [(t0, "web", "/a", "INFO", 200, 10.0, 1, "1.1.1.1"),
            (t0, "web", "/a", "INFO", 500, 20.0, 1, "1.1.1.1"),
            (t0 + timedelta(hours=1), "api", "/b", "INFO", 404, 30.0, 1, "2.2.2.2")]
    logs = spark.createDataFrame(
        rows, "ts timestamp, source string, endpoint string, level string, status int, "
              "latency_ms double, bytes bigint, client_ip string")
    top = analytics.top_endpoints(logs).collect()
    assert [(r.source, r.endpoint, r.requests, r.errors) for r in top] == [
        ("web", "/a", 2, 1), ("api", "/b", 1, 0)]
    er = analytics.error_rate_by_source_hour(logs).collect()
    assert [(r.source, r.hour, r.error_rate) for r in er] == [
        ("api", t0 + timedelta(hours=1), 0.0), ("web", t0, 0.5)]
    dist = {r.status: (r.requests, r.share) for r in analytics.status_distribution(logs).collect()}
    assert dist == {200: (1, 1 / 3), 404: (1, 1 / 3), 500: (1, 1 / 3)}
    ips = analytics.top_client_ips(logs).collect()
    assert [(r.client_ip, r.requests, r.status_404) for r in ips] == [
        ("1.1.1.1", 2, 0), ("2.2.2.2", 1, 1)]
    lat = analytics.latency_by_endpoint_hour(logs).collect()
    assert [(r.endpoint, r.latency_p50) for r in lat] == [("/b", 30.0), ("/a", 10.0)]
    assert math.isclose(top[0].latency_p95, 20.0)
