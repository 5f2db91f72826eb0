"""The event generator in-process: determinism, shape, scenarios and their labels."""

from __future__ import annotations

import subprocess
import sys
import uuid

import numpy as np
import orjson
import pytest

from pipeline.schemas import EVENT_FIELDS, LEVELS
from pipeline.sources import catalog
from pipeline.sources.batch import EventBatch
from pipeline.sources.events import EventGenerator
from pipeline.sources.sampling import daily_curve, source_names
from pipeline.sources.scenarios import (
    INJECTABLE_KINDS,
    LabelWriter,
    Scenario,
    ScenarioError,
    load_scenarios,
    random_scenarios,
    read_labels,
)

START = 1_767_268_800_000  # 2026-01-01T12:00:00Z


def collect(gen: EventGenerator, **kw) -> EventBatch:
    parts = list(gen.batches(**kw))
    cols = {f: [] for f in EVENT_FIELDS}
    for b in parts:
        for f in EVENT_FIELDS:
            cols[f].extend(getattr(b, f).tolist() if isinstance(getattr(b, f), np.ndarray)
                           else getattr(b, f))
    return EventBatch(**{f: (np.array(v) if f in ("ts", "status", "latency_ms", "bytes") else v)
                         for f, v in cols.items()})


def test_same_seed_same_events_however_consumed():
    a = EventGenerator(seed=42, start_ms=START, rate=5000, speedup=10)
    b = EventGenerator(seed=42, start_ms=START, rate=5000, speedup=10)
    first = [e for batch in a.batches(count=20_000) for e in batch.serialized()]
    # the same stream consumed in two calls (7,777 then the rest) is the same stream
    second = [e for batch in b.batches(count=7_777) for e in batch.serialized()]
    second += [e for batch in b.batches(count=20_000 - 7_777) for e in batch.serialized()]
    assert len(first) == 20_000
    assert first == second
    other = EventGenerator(seed=43, start_ms=START, rate=5000, speedup=10)
    third = [e for batch in other.batches(count=100) for e in batch.serialized()]
    assert third != first[:100]


def test_event_fields_types_and_ids():
    gen = EventGenerator(seed=1, start_ms=START, rate=2000, speedup=60)
    events = [e for b in gen.batches(count=30_000) for e in b.dicts()]
    assert len(events) == 30_000
    assert all(tuple(e) == EVENT_FIELDS for e in events)
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == 30_000
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids[:1000])
    ts = [e["ts"] for e in events]
    assert ts == sorted(ts) and ts[0] >= START
    e = events[0]
    assert isinstance(e["ts"], int) and isinstance(e["status"], int)
    assert isinstance(e["latency_ms"], float) and isinstance(e["bytes"], int)
    assert {ev["source"] for ev in events} == set(source_names(6))
    # the JSON value parses back to exactly the dict
    batch = next(EventGenerator(seed=1, start_ms=START, rate=2000, speedup=60).batches(count=50))
    assert [orjson.loads(v) for v in batch.serialized()] == batch.dicts()
    assert batch.keys() == [s.encode() for s in batch.source]


def test_level_follows_status_exactly():
    ev = collect(EventGenerator(seed=5, start_ms=START, rate=20_000, speedup=1), count=200_000)
    status = ev.status
    level = np.array(ev.level)
    assert set(level.tolist()) == set(LEVELS)
    np.testing.assert_array_equal(level == "ERROR", status >= 500)
    np.testing.assert_array_equal(level == "WARN", (status >= 400) & (status < 500))
    assert set(level[status < 400].tolist()) == {"INFO", "DEBUG"}
    debug_share = (level == "DEBUG").sum() / (status < 400).sum()
    assert abs(debug_share - catalog.DEBUG_SHARE) < 0.005
    # error messages name the status; 304 / 204 have no body
    msgs = np.array(ev.message, dtype=object)
    assert all(f"failed with {s}" in m for m, s in zip(msgs[status >= 500], status[status >= 500],
                                                       strict=True))
    assert (ev.bytes[(status == 304) | (status == 204)] == 0).all()
    assert set(np.array(ev.method)[status == 201].tolist()) == {"POST"}


def test_distribution_shape():
    ev = collect(EventGenerator(seed=9, start_ms=START, rate=20_000, speedup=1), count=200_000)
    endpoint = np.array(ev.endpoint, dtype=object)
    source = np.array(ev.source, dtype=object)
    # Zipf within a service: on web-01, rank-1 "/" beats rank 2 beats rank 3, with the
    # expected share of the service's traffic
    web = endpoint[source == "web-01"]
    paths = [e.path for e in catalog.ENDPOINTS if e.service == "web"]
    counts = [int((web == p).sum()) for p in paths]
    assert counts[0] > counts[1] > counts[2]
    w = 1 / np.arange(1, len(paths) + 1) ** catalog.ZIPF_S
    assert abs(counts[0] / len(web) - w[0] / w.sum()) < 0.02
    # sources' traffic is skewed: web-01 (rank 1) > static-01 (rank 6)
    assert (source == "web-01").sum() > 1.8 * (source == "static-01").sum()
    # log-normal latency: the median of successful requests matches the catalog's median
    ok = ev.status < 500
    for ep in (catalog.ENDPOINTS[0], catalog.ENDPOINTS[7], catalog.ENDPOINTS[13]):
        lat = ev.latency_ms[(endpoint == ep.path) & ok]
        assert abs(np.median(lat) / ep.latency_median_ms - 1) < 0.08, ep.path
        assert abs(np.std(np.log(lat)) - ep.latency_sigma) < 0.05, ep.path
    # a handful of hot clients, many cold ones
    ips, ip_counts = np.unique(np.array(ev.client_ip, dtype=object), return_counts=True)
    assert len(ips) > 5000 and ip_counts.max() > 20 * np.median(ip_counts)


def test_daily_curve_in_simulated_time():
    assert daily_curve(START + 3 * 3_600_000) == pytest.approx(1.55)  # 15:00 UTC peak
    assert daily_curve(START - 9 * 3_600_000) == pytest.approx(0.45)  # 03:00 UTC trough
    day = np.arange(0, 86_400_000, 60_000) + START
    assert daily_curve(day).mean() == pytest.approx(1.0)
    # one simulated day at 1 event/s of wall time, speedup 86400 -> ~86400 events... spread
    gen = EventGenerator(seed=2, start_ms=START - 12 * 3_600_000, rate=1000, speedup=300)
    ev = collect(gen, sim_duration_s=86_400)
    hours = ((ev.ts - (START - 12 * 3_600_000)) // 3_600_000).astype(int)
    per_hour = np.bincount(hours, minlength=24)
    assert len(per_hour) == 24 and ev.ts.max() < START + 12 * 3_600_000
    assert per_hour.sum() == pytest.approx(86_400 * 1000 / 300, rel=0.02)
    assert per_hour[15] / per_hour[3] == pytest.approx(1.55 / 0.45, rel=0.12)


SCHEDULE = [
    {"kind": "error_burst", "start": "60s", "duration": "60s", "entity": "api-01"},
    {"kind": "latency_spike", "start": "180s", "duration": "60s", "entity": "/search/query"},
    {"kind": "traffic_surge", "start": "300s", "duration": "60s"},
    {"kind": "traffic_drop", "start": "420s", "duration": "60s", "entity": "web-01"},
    {"kind": "scan_404", "start": "540s", "duration": "60s", "entity": "checkout-01"},
    {"kind": "new_pattern", "start": "660s", "duration": "60s"},
]


@pytest.fixture(scope="module")
def scenario_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("labels") / "labels.jsonl"
    with LabelWriter(path) as writer:
        gen = EventGenerator(seed=11, start_ms=START, rate=500, speedup=1,
                             scenarios=load_scenarios(orjson.dumps(SCHEDULE).decode()),
                             on_label=writer.write)
        ev = collect(gen, sim_duration_s=780)
    return ev, read_labels(path), gen


def test_labels_record_each_window(scenario_run):
    ev, labels, gen = scenario_run
    assert labels == gen.labels
    assert [(lb.kind, lb.entity_type, lb.entity, lb.start_ms, lb.end_ms) for lb in labels] == [
        ("error_burst", "source", "api-01", START + 60_000, START + 120_000),
        ("latency_spike", "endpoint", "/search/query", START + 180_000, START + 240_000),
        ("traffic_surge", "service", "all", START + 300_000, START + 360_000),
        ("traffic_drop", "source", "web-01", START + 420_000, START + 480_000),
        ("scan_404", "source", "checkout-01", START + 540_000, START + 600_000),
        ("new_pattern", "pattern", labels[5].entity, START + 660_000, START + 720_000),
    ]
    assert labels[5].entity in catalog.NEW_PATTERNS
    assert ev.ts.max() < START + 780_000


def _window(ev, label, before=False):
    lo, hi = label.start_ms, label.end_ms
    if before:
        lo, hi = lo - (hi - lo), lo
    return (ev.ts >= lo) & (ev.ts < hi)


def test_error_burst_hits_one_source_in_its_window(scenario_run):
    ev, labels, _ = scenario_run
    lb = labels[0]
    src = np.array(ev.source, dtype=object)
    err = ev.status >= 500
    inside, before = _window(ev, lb), _window(ev, lb, before=True)
    target = src == "api-01"
    assert err[inside & target].mean() > 0.4
    assert err[before & target].mean() < 0.05
    assert err[inside & ~target].mean() < 0.05
    assert err[~inside & target].mean() < 0.05


def test_latency_spike_hits_one_endpoint_in_its_window(scenario_run):
    ev, labels, _ = scenario_run
    lb = labels[1]
    ep = np.array(ev.endpoint, dtype=object) == "/search/query"
    inside = _window(ev, lb)
    ratio = np.median(ev.latency_ms[inside & ep]) / np.median(ev.latency_ms[~inside & ep])
    assert 6 < ratio < 11
    other = np.array(ev.endpoint, dtype=object) == "/search/suggest"
    lat = ev.latency_ms
    ratio_other = np.median(lat[inside & other]) / np.median(lat[~inside & other])
    assert 0.75 < ratio_other < 1.3


def test_traffic_surge_and_drop(scenario_run):
    ev, labels, _ = scenario_run
    surge, drop = labels[2], labels[3]
    assert _window(ev, surge).sum() / _window(ev, surge, before=True).sum() == pytest.approx(
        4.0, rel=0.1)
    web = np.array(ev.source, dtype=object) == "web-01"
    assert (_window(ev, drop) & web).sum() / (_window(ev, drop, before=True) & web).sum() == (
        pytest.approx(0.15, abs=0.04))
    # the drop is on web-01 only
    assert (_window(ev, drop) & ~web).sum() / (_window(ev, drop, before=True) & ~web).sum() == (
        pytest.approx(1.0, abs=0.12))


def test_scan_404_from_one_client_on_unknown_paths(scenario_run):
    ev, labels, _ = scenario_run
    lb = labels[4]
    ip = np.array(ev.client_ip, dtype=object)
    scanner = ip == lb.extra["client_ip"]
    inside = _window(ev, lb)
    assert scanner.sum() == (scanner & inside).sum() > 100
    assert (ev.status[scanner] == 404).all()
    src = np.array(ev.source, dtype=object)
    assert set(src[scanner].tolist()) == {"checkout-01"}
    known = {e.path for e in catalog.ENDPOINTS}
    paths = set(np.array(ev.endpoint, dtype=object)[scanner].tolist())
    assert paths <= set(catalog.SCAN_PATHS) and not paths & known and len(paths) > 20
    assert set(np.array(ev.user_agent, dtype=object)[scanner].tolist()) == {lb.extra["user_agent"]}


def test_new_pattern_only_inside_its_window(scenario_run):
    ev, labels, _ = scenario_run
    lb = labels[5]
    new = np.array(ev.message, dtype=object) == lb.entity
    inside = _window(ev, lb)
    assert new[~inside].sum() == 0
    assert new[inside].mean() == pytest.approx(0.2, abs=0.04)


def test_inject_on_command_starts_at_sim_now():
    gen = EventGenerator(seed=3, start_ms=START, rate=1000, speedup=1)
    list(gen.batches(sim_duration_s=5))
    label = gen.inject("error_burst", entity="web-01", duration_s=10, magnitude=1.0)
    assert label.start_ms == START + 5000 and label.end_ms == START + 15_000
    ev = collect(gen, sim_duration_s=20)
    web = np.array(ev.source, dtype=object) == "web-01"
    inside = (ev.ts >= label.start_ms) & (ev.ts < label.end_ms)
    assert (ev.status[web & inside] >= 500).all()
    assert (ev.status[web & ~inside] >= 500).mean() < 0.05
    assert gen.labels == [label]


def test_labels_only_for_scenarios_reached():
    plan = [Scenario("traffic_surge", 1.0, 5.0), Scenario("error_burst", 3600.0, 5.0)]
    gen = EventGenerator(seed=3, start_ms=START, rate=1000, speedup=1, scenarios=plan)
    list(gen.batches(count=3000))  # ~3 s of simulated time
    assert [lb.kind for lb in gen.labels] == ["traffic_surge"]


def test_random_scenarios_deterministic_and_disjoint():
    a = random_scenarios(7, 6 * 3600, n=6)
    assert a == random_scenarios(7, 6 * 3600, n=6)
    assert a != random_scenarios(8, 6 * 3600, n=6)
    assert sorted(s.kind for s in a) == sorted(INJECTABLE_KINDS)
    spans = sorted((s.start_s, s.start_s + s.duration_s) for s in a)
    assert spans[0][0] >= 0.2 * 6 * 3600 and spans[-1][1] <= 6 * 3600
    assert all(prev[1] <= nxt[0] for prev, nxt in zip(spans, spans[1:], strict=False))
    assert all(s.duration_s >= 30 for s in a)
    # entities come from the seed too
    g1 = EventGenerator(seed=7, start_ms=START, rate=10, speedup=600, scenarios=a)
    g2 = EventGenerator(seed=7, start_ms=START, rate=10, speedup=600, scenarios=a)
    list(g1.batches(sim_duration_s=6 * 3600))
    list(g2.batches(sim_duration_s=6 * 3600))
    assert g1.labels == g2.labels and len(g1.labels) == 6


@pytest.mark.parametrize("spec, message", [
    ('[{"kind": "meteor", "start": 1, "duration": 1}]', "unknown scenario kind 'meteor'"),
    ('[{"kind": "error_burst", "start": 1}]', "needs kind, start and duration"),
    ('[{"kind": "error_burst", "start": "soon", "duration": 1}]', "not a duration"),
    ('[{"kind": "error_burst", "start": 1, "duration": 1, "when": 2}]', "unknown keys"),
    ("/nonexistent/schedule.json", "does not exist"),
])
def test_bad_schedules_are_clear_errors(spec, message):
    with pytest.raises(ScenarioError, match=message):
        load_scenarios(spec)


def test_unknown_entities_are_clear_errors():
    with pytest.raises(ScenarioError, match="unknown source 'db-09'"):
        EventGenerator(seed=1, start_ms=START,
                       scenarios=[Scenario("error_burst", 0, 1, entity="db-09")])
    with pytest.raises(ScenarioError, match="endpoint '/nope' is not served"):
        EventGenerator(seed=1, start_ms=START,
                       scenarios=[Scenario("latency_spike", 0, 1, entity="/nope")])


def test_cli_stdout_is_deterministic_and_writes_labels(tmp_path):
    def run(labels):
        out = subprocess.run(
            [sys.executable, "-m", "pipeline.log_generator", "--stdout", "--count", "3000",
             "--seed", "21", "--rate", "1000", "--speedup", "60",
             "--start-time", "2026-01-01T12:00:00Z", "--scenarios",
             '[{"kind": "scan_404", "start": "30s", "duration": "60s"}]',
             "--labels", str(labels), "--set", f"storage.data_dir={tmp_path / 'data'}"],
            capture_output=True, check=True, timeout=60)
        return out.stdout.splitlines()

    a, b = run(tmp_path / "a.jsonl"), run(tmp_path / "b.jsonl")
    assert len(a) == 3000 and a == b
    assert orjson.loads(a[0])["ts"] >= START
    la, lb = read_labels(tmp_path / "a.jsonl"), read_labels(tmp_path / "b.jsonl")
    assert la == lb and [(x.kind, x.start_ms) for x in la] == [("scan_404", START + 30_000)]
    scans = [e for e in map(orjson.loads, a) if e["client_ip"] == la[0].extra["client_ip"]]
    assert scans and all(la[0].start_ms <= e["ts"] < la[0].end_ms for e in scans)


def test_serialization_survives_hostile_messages():
    nasty = 'oops"},{"event_id":"x", \\ \u00e9 \n end'
    gen = EventGenerator(seed=4, start_ms=START, rate=5000, speedup=1)
    gen.inject("new_pattern", entity=nasty, duration_s=5, magnitude=1.0)
    batch = next(gen.batches(count=3000))
    values = batch.serialized()
    assert len(values) == 3000
    assert [orjson.loads(v) for v in values] == batch.dicts()
    assert sum(orjson.loads(v)["message"] == nasty for v in values) == 3000
    assert next(EventGenerator(seed=4, start_ms=START).batches(count=1)).serialized()[0][:13] == (
        b'{"event_id":"')
