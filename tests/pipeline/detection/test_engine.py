"""Anomaly detection core (pure pandas): metrics mirror, features, baseline, detectors,
patterns, model persistence and evaluation, on the real seeded generator's events."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest

from pipeline.detection.baseline import nanmedian_axis1
from pipeline.detection.classify import classify, deviating
from pipeline.detection.engine import Detector, DetectorConfig, anomaly_id
from pipeline.detection.evaluation import GroundTruth, evaluate, labels_from
from pipeline.detection.features import (
    FEATURES,
    SERVICE_ENTITY,
    events_to_metrics,
    events_to_partials,
    metrics_to_features,
)
from pipeline.detection.iforest import ModelVersionError, load_model, save_model
from pipeline.detection.patterns import PatternDetector
from pipeline.detection.pooling import LatencyPool
from pipeline.detection.simulate import SIM_START_MS, simulate_events
from pipeline.latency_hist import histogram
from pipeline.schemas import ANOMALY_KINDS, METRIC_PARTIALS_DDL, METRICS_DDL, column_names
from pipeline.sources.scenarios import INJECTABLE_KINDS, Scenario

T0 = pd.Timestamp("2026-01-01 10:00:00")


def _ev(offset_s: float, source: str, endpoint: str, status: int, latency: float,
        level: str | None = None, message: str = "m") -> dict:
    if level is None:
        level = "ERROR" if status >= 500 else "WARN" if status >= 400 else "INFO"
    ts = int((T0 + pd.Timedelta(seconds=offset_s)).value // 1_000_000)
    return {"ts": ts, "level": level, "source": source, "endpoint": endpoint, "status": status,
            "latency_ms": latency, "bytes": 100, "message": message}


# -- metrics mirror and features ---------------------------------------------------------
def test_events_to_metrics_matches_the_metrics_contract():
    events = pd.DataFrame(
        [_ev(i, "web-01", "/a", 200, float(i + 1)) for i in range(10)]       # 10 x INFO
        + [_ev(1, "web-01", "/a", 503, 30_000.0)]                             # 1 x ERROR
        + [_ev(2, "web-01", "/a", 200, 5.0, level="ERROR")]                   # ERROR, 200
        + [_ev(3, "api-01", "/b", 404, 2.0), _ev(12, "api-01", "/b", 302, 1.0)]
    )
    m = events_to_metrics(events, "10s")
    assert list(m.columns) == column_names(METRICS_DDL)
    assert len(m) == 4  # (w0,web,/a,INFO) (w0,web,/a,ERROR) (w0,api,/b,WARN) (w1,api,/b,INFO)
    info = m[(m.window_start == T0) & (m.level == "INFO")].iloc[0]
    assert (info.requests, info.errors, info.status_2xx) == (10, 0, 10)
    # rank ceil(p*n): p50 of 1..10 -> 5th = 5.0; p95 -> 10th = 10.0
    assert (info.latency_p50, info.latency_p95, info.latency_p99) == (5.0, 10.0, 10.0)
    assert info.window_end == T0 + pd.Timedelta(seconds=10)
    assert info.window_size == "10s"
    err = m[(m.window_start == T0) & (m.level == "ERROR")].iloc[0]
    assert (err.requests, err.errors, err.status_5xx, err.status_2xx) == (2, 2, 1, 1)
    assert err.error_rate == 1.0
    warn = m[m.level == "WARN"].iloc[0]
    assert (warn.status_4xx, warn.status_404, warn.errors) == (1, 1, 0)
    later = m[m.window_start == T0 + pd.Timedelta(seconds=10)]
    assert later[["source", "level", "requests", "status_3xx"]].values.tolist() == [
        ["api-01", "INFO", 1, 1]]


def test_events_to_partials_mirror_the_processor_batches():
    events = pd.DataFrame([_ev(i, "web-01", "/a", 200, float(i + 1)) for i in range(25)]
                          + [_ev(3, "web-01", "/a", 200, 7.0)])  # arrives after 24 s: late
    parts = events_to_partials(events, batch_size=4, delay_s=2.0)
    assert list(parts.columns) == column_names(METRIC_PARTIALS_DDL)
    assert parts.batch_id.tolist() == [0, 1, 2, 2, 3, 4, 5, 6]  # a row per batch and window
    # the watermark after each batch: newest event so far minus the delay
    assert parts.watermark.iloc[-1] == T0 + pd.Timedelta(seconds=22)
    by_window = parts.groupby("window_start")
    assert by_window.requests.sum().tolist() == [10, 10, 5]  # the late event left out
    first = parts.iloc[0]
    assert first.latency_hist == histogram([1.0, 2.0, 3.0, 4.0])
    assert first.latency_p95 == pytest.approx(4.0, rel=0.01)
    merged = events_to_metrics(events.iloc[:25]).set_index("window_start")
    assert by_window.bytes.sum().tolist() == merged.bytes.tolist()


def test_features_aggregate_per_entity_and_ignore_error_latency():
    events = pd.DataFrame(
        [_ev(0, "web-01", "/a", 200, 10.0) for _ in range(30)]
        + [_ev(0, "web-01", "/b", 404, 50.0) for _ in range(10)]
        + [_ev(0, "api-01", "/a", 504, 30_000.0) for _ in range(20)]
    )
    f = metrics_to_features(events_to_metrics(events)).set_index(["entity_type", "entity"])
    svc = f.loc[("service", SERVICE_ENTITY)]
    assert (svc.requests, svc.errors, svc.status_404) == (60, 20, 10)
    assert svc.error_rate == pytest.approx(20 / 60)
    assert svc.share_404 == pytest.approx(10 / 60)
    assert svc.share_4xx == pytest.approx(10 / 60)
    # latency: request-weighted median of the non-ERROR groups' p95 (30 x 10 ms, 10 x 50 ms)
    assert svc.latency_p95 == 10.0
    assert svc.latency_requests == 40
    assert f.loc[("source", "web-01")].requests == 40
    assert f.loc[("endpoint", "/a")].requests == 50
    assert f.loc[("endpoint", "/a")].latency_p95 == 10.0
    assert np.isnan(f.loc[("source", "api-01")].latency_p95)  # only failing requests


def test_nanmedian_matches_numpy():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(5, 17, 4))
    a[rng.random(a.shape) < 0.3] = np.nan
    a[0, :, 1] = np.nan
    med, n = nanmedian_axis1(a)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(a, axis=1)
    np.testing.assert_allclose(med, expected, equal_nan=True)
    assert n[0, 1] == 0


# -- detection on the seeded generator ----------------------------------------------------
WARMUP_S = 600
SCHEDULE = [Scenario(kind, WARMUP_S + 60 + i * 240, 90) for i, kind in
            enumerate(INJECTABLE_KINDS)]


def _run(events: pd.DataFrame, warmup_s: float = WARMUP_S, **flags) -> tuple[Detector,
                                                                             pd.DataFrame]:
    metrics = events_to_metrics(events)
    logs = events[["ts", "message", "level", "status"]]
    cut = pd.Timestamp(SIM_START_MS, unit="ms") + pd.Timedelta(seconds=warmup_s)
    cut_ms = SIM_START_MS + int(warmup_s * 1000)
    det = Detector(DetectorConfig(**flags))
    first = det.process(metrics[metrics.window_start < cut], logs[logs.ts < cut_ms])
    det.end_learning()
    det.train()
    rest = det.process(metrics[metrics.window_start >= cut], logs[logs.ts >= cut_ms])
    return det, pd.concat([first, rest], ignore_index=True)


@pytest.fixture(scope="module")
def scenario_run():
    sim = WARMUP_S + 60 + len(SCHEDULE) * 240
    events, labels = simulate_events(seed=5, sim_seconds=sim, rate=100, scenarios=SCHEDULE)
    det, anomalies = _run(events)
    return events, labels, det, anomalies


def test_every_kind_is_detected_and_classified(scenario_run):
    _events, labels, _det, anomalies = scenario_run
    assert sorted(lab.kind for lab in labels) == sorted(INJECTABLE_KINDS)
    result = evaluate(anomalies, labels_from(labels), "10s")
    for kind in INJECTABLE_KINDS:
        k = result["per_kind"][kind]
        assert k["recall"] == 1.0, (kind, k)
        assert k["precision"] == 1.0, (kind, k, result["labels_detail"])
        assert k["median_delay_windows"] <= 2, (kind, k)
    assert result["false_positives"] == 0, result["false_positive_incidents"]
    assert set(anomalies["kind"]) <= set(ANOMALY_KINDS)
    # the label's own entity is flagged with the right kind
    for lab in labels:
        if lab.entity_type in ("source", "endpoint", "service"):
            own = anomalies[(anomalies.entity_type == lab.entity_type)
                            & (anomalies.entity == lab.entity) & (anomalies.kind == lab.kind)]
            assert len(own) > 0, lab
    new = anomalies[anomalies.kind == "new_pattern"]
    assert new.iloc[0].entity.split()[:3] == next(
        lab for lab in labels if lab.kind == "new_pattern").entity.split()[:3]


def test_anomaly_rows_are_explained(scenario_run):
    _events, labels, _det, anomalies = scenario_run
    burst = next(lab for lab in labels if lab.kind == "error_burst")
    row = anomalies[(anomalies.entity == burst.entity) & (anomalies.kind == "error_burst")].iloc[0]
    feats = json.loads(row.features)
    assert feats["error_rate"]["observed"] > 0.3 > feats["error_rate"]["expected"]
    assert feats["error_rate"]["z"] >= 6
    contributors = json.loads(row.top_contributors)
    assert {"field": "level", "value": "ERROR"}.items() <= contributors[
        [c["field"] for c in contributors].index("level")].items()
    assert row.explanation.startswith(f"error burst on source {burst.entity}: error rate")
    assert row.severity in ("medium", "high", "critical")
    assert row.detector in ("baseline", "combined")
    assert row.anomaly_id == anomaly_id(row.window_start, "source", burst.entity, "error_burst")
    scan = next(lab for lab in labels if lab.kind == "scan_404")
    srow = anomalies[(anomalies.entity == scan.entity) & (anomalies.kind == "scan_404")].iloc[0]
    assert json.loads(srow.top_contributors)[-1]["value"] == "404"


def test_clean_thirty_minutes_flag_nothing():
    events, labels = simulate_events(seed=21, sim_seconds=1800, rate=100)
    assert labels == []
    _det, anomalies = _run(events, warmup_s=600)
    assert len(anomalies) == 0, anomalies[["window_start", "entity", "kind", "explanation"]]


@pytest.mark.parametrize("kind", ["traffic_drop", "traffic_surge"])
def test_long_service_wide_incident_is_flagged_throughout_and_recovery_is_not(kind):
    """A 25-minute service-wide change outlasts the 15-minute trailing baseline: flagged
    while it lasts, and its end (traffic back to normal) is not the opposite anomaly."""
    warmup, length, after = 900, 1500, 900
    events, labels = simulate_events(seed=8, sim_seconds=warmup + length + after, rate=50,
                                     scenarios=[Scenario(kind, warmup, length)])
    _det, anomalies = _run(events, warmup_s=warmup)
    lab = labels_from(labels)[0]
    service = anomalies[(anomalies.entity_type == "service") & (anomalies.kind == kind)]
    covered = pd.to_datetime(service.window_start)
    assert covered.min() - lab.start <= pd.Timedelta(seconds=20)
    assert lab.end - covered.max() <= pd.Timedelta(seconds=20)
    result = evaluate(anomalies, [lab], "10s")
    assert result["false_positives"] == 0, result["false_positive_incidents"]


def test_rerun_gives_identical_ids(scenario_run):
    events, _labels, _det, anomalies = scenario_run
    _det2, again = _run(events)
    assert sorted(again.anomaly_id) == sorted(anomalies.anomaly_id)
    assert not anomalies.anomaly_id.duplicated().any()


def test_peek_scores_open_windows_without_learning_from_them(scenario_run):
    """Peeking at every window before processing it (the stream detector on open windows)
    changes no final verdict; the peeked findings are the final ones, marked provisional."""
    events, _labels, _det, anomalies = scenario_run
    metrics = events_to_metrics(events)
    logs = events[["ts", "message", "level", "status"]]
    det = Detector(DetectorConfig())
    finals, peeked = [], []
    cut = pd.Timestamp(SIM_START_MS, unit="ms") + pd.Timedelta(seconds=WARMUP_S)
    logs_of = dict(tuple(logs.groupby(logs.ts // 10_000 * 10_000, sort=False)))
    no_logs = logs.iloc[:0]
    for ws, window in metrics.groupby("window_start", sort=True):
        if ws == cut:
            det.end_learning()
            det.train()
        half = window.assign(requests=window.requests // 2, errors=window.errors // 2)
        peeked.append(det.peek(half))  # half the counts: as if half of it had arrived
        peeked.append(det.peek(window))
        ms = (ws - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)
        finals.append(det.process(window, logs_of.get(ms, no_logs)))
    final = pd.concat(finals, ignore_index=True)
    assert sorted(final.anomaly_id) == sorted(anomalies.anomaly_id)
    assert set(final.status) == {"final"}
    full = pd.concat(peeked[1::2], ignore_index=True)
    assert set(full.status) == {"provisional"}
    metric_findings = final[final.detector != "pattern"]  # templates wait for the final
    assert set(full.anomaly_id) == set(metric_findings.anomaly_id)

# -- model persistence --------------------------------------------------------------------
def test_model_round_trip_gives_identical_scores(scenario_run, tmp_path):
    _events, _labels, det, _a = scenario_run
    model = det.model
    assert model is not None and model.train_rows >= 200
    path = save_model(model, tmp_path / "m.pkl")
    loaded = load_model(path)
    z = np.array(list(det.train_rows)[-500:])
    np.testing.assert_array_equal(model.score(z), loaded.score(z))
    assert loaded.model_version == model.model_version
    assert loaded.describe()["features"] == list(model.features)
    assert set(loaded.versions) == {"sklearn", "numpy", "lakewatch", "format"}
    # the pattern snapshot restores the same known templates
    restored = Detector(DetectorConfig(), model=loaded)
    assert restored.patterns.known == det.patterns.known or \
        restored.patterns.known <= det.patterns.known


@pytest.mark.parametrize("lib", ["sklearn", "numpy", "lakewatch"])
def test_model_version_mismatch_is_refused(scenario_run, tmp_path, lib):
    _events, _labels, det, _a = scenario_run
    path = save_model(det.model, tmp_path / "m.pkl")
    payload = pickle.loads(path.read_bytes())
    payload["meta"]["versions"][lib] = "0.0.1"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(ModelVersionError, match=rf"{lib} '0\.0\.1' in the model, '[^']+' running"):
        load_model(path)


def test_missing_model_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="lakewatch detect --mode train"):
        load_model(tmp_path / "nope.pkl")


# -- log patterns ---------------------------------------------------------------------------
def test_new_template_is_flagged_once_and_known_ones_never():
    det = PatternDetector(min_count=3)
    base = [f"GET /item/{i} completed with 200" for i in range(50)] + \
           [f"user {i} logged in from 10.0.0.{i % 9}" for i in range(20)]
    for w in range(15):
        ws = T0 + pd.Timedelta(seconds=10 * w)
        assert det.process(ws, pd.DataFrame({"message": base})) == []
    det.learning = False
    ws = T0 + pd.Timedelta(seconds=160)
    msgs = base + ["TLS handshake with upstream payments-gw failed: certificate has expired"] * 4
    found = det.process(ws, pd.DataFrame({"message": msgs}))
    assert [(f.kind, f.count, f.new) for f in found] == [("new_pattern", 4, True)]
    assert found[0].template.startswith("TLS handshake with upstream")
    again = det.process(ws + pd.Timedelta(seconds=10), pd.DataFrame({"message": msgs}))
    assert [f.kind for f in again] == []


def test_template_share_jump_reports_its_signal():
    det = PatternDetector(min_count=3)
    normal = [f"GET /p/{i} completed with 200" for i in range(95)] + \
             ["POST /pay failed with 503: circuit open"] * 5
    levels = ["INFO"] * 95 + ["ERROR"] * 5
    for w in range(15):
        det.process(T0 + pd.Timedelta(seconds=10 * w),
                    pd.DataFrame({"message": normal, "level": levels}))
    det.learning = False
    burst = [f"GET /p/{i} completed with 200" for i in range(60)] + \
            ["POST /pay failed with 503: circuit open"] * 40
    found = det.process(T0 + pd.Timedelta(seconds=200),
                        pd.DataFrame({"message": burst, "level": ["INFO"] * 60 + ["ERROR"] * 40}))
    assert [(f.kind, f.new, f.count) for f in found] == [("error_burst", False, 40)]
    assert found[0].expected_share == pytest.approx(0.05)


def test_commonest_template_returning_after_a_new_pattern_is_not_a_jump():
    """A new pattern takes a third of the messages for twenty minutes: the commonest
    template's share falls meanwhile and is not learned, so its return is no finding."""
    det = PatternDetector(min_count=3, baseline_windows=90, min_history=12)
    get = [f"GET /p/{i} completed with 200" for i in range(60)]
    other = [f"user {i} logged in from 10.0.0.{i % 9}" for i in range(40)]
    tls = ["TLS handshake with upstream payments-gw failed: certificate has expired"] * 50
    w = 0

    def window(msgs: list[str]) -> list[str]:
        nonlocal w
        w += 1
        return [(f.kind, f.new) for f in det.process(T0 + pd.Timedelta(seconds=10 * w),
                                                     pd.DataFrame({"message": msgs}))]

    for _ in range(20):
        assert window(get + other) == []
    det.learning = False
    assert window(get + other + tls) == [("new_pattern", True)]
    during = [window(get + other + tls) for _ in range(119)]  # 20 minutes in all
    assert all(f == [] for f in during)
    assert [window(get + other) for _ in range(30)] == [[]] * 30  # GET: 40 % -> 60 %
    # a rise that is a real surge of a template is still one
    burst = get + other[:10] + ["user 7 logged in from 10.0.0.7"] * 120
    assert window(burst) == [("other", False)]

# -- evaluation ---------------------------------------------------------------------------
def test_evaluation_counts_exactly():
    w = pd.Timedelta(seconds=10)

    def a(ws_s, et, ent, kind):
        ws = T0 + pd.Timedelta(seconds=ws_s)
        return {"window_start": ws, "window_end": ws + w, "entity_type": et, "entity": ent,
                "kind": kind}

    anomalies = pd.DataFrame([
        a(100, "source", "web-01", "error_burst"), a(110, "source", "web-01", "error_burst"),
        a(110, "service", "all", "error_burst"),          # related: service
        a(120, "source", "api-01", "error_burst"),        # same type, other entity -> FP
        a(500, "endpoint", "/x", "latency_spike"),        # no label -> FP
        a(300, "source", "web-01", "traffic_surge"),      # overlaps the drop label: misclassified
    ])
    labels = [
        GroundTruth("error_burst", "source", "web-01", T0 + pd.Timedelta(seconds=95),
                    T0 + pd.Timedelta(seconds=125)),
        GroundTruth("traffic_drop", "service", "all", T0 + pd.Timedelta(seconds=290),
                    T0 + pd.Timedelta(seconds=330)),
    ]
    r = evaluate(anomalies, labels, "10s", sim_hours=0.5)
    eb = r["per_kind"]["error_burst"]
    assert (eb["labels"], eb["detected"], eb["incidents"], eb["matching_incidents"]) == (1, 1, 3, 2)
    assert eb["median_delay_windows"] == 1  # label starts in window 90, first flag window 100
    assert r["per_kind"]["traffic_drop"]["recall"] == 0.0
    assert r["per_kind"]["traffic_surge"]["precision"] == 0.0
    assert r["false_positives"] == 2 and r["false_positives_per_hour"] == 4.0
    assert r["recall"] == 0.5 and r["precision"] == 0.4  # 2 of 5 incidents match


# -- sparse entities -------------------------------------------------------------------
def test_latency_pool_pools_sparse_windows_only():
    pool = LatencyPool(min_requests=5, pool_requests=20, max_windows=8)
    key = ("endpoint", "/logo.png")
    assert pool.latency(key, 5.0, 10.0, 12.0, 3) == (5.0, 10.0, 12.0, 3)  # too few, even pooled
    p50, p95, p99, n = pool.latency(key, 15.0, 30.0, 31.0, 4)  # with the one before: 7
    assert (p50, p95, n) == (15.0, 30.0, 7) and math.isnan(p99)
    assert pool.latency(key, 25.0, 50.0, 60.0, 40) == (25.0, 50.0, 60.0, 40)  # busy: as is
    # sparse again: request-weighted medians of the last windows up to 20 requests, so the
    # busy window outweighs this one's slow requests
    p50, p95, p99, n = pool.latency(key, 40.0, 80.0, 90.0, 4)
    assert (p50, p95, n) == (25.0, 50.0, 44) and math.isnan(p99)
    # a window without requests has no latency, pooled or not
    nan = math.nan
    assert all(math.isnan(v) for v in pool.latency(key, nan, nan, nan, 0)[:3])
    for _ in range(9):  # idle for longer than the pool: forgotten
        pool.end_window()
    assert pool.latency(key, 40.0, 80.0, 90.0, 4) == (40.0, 80.0, 90.0, 4)


def test_latency_spike_on_a_sparse_endpoint_is_found():
    """An endpoint with ~4 requests per 10 s window (too few for a per-window p95) turns
    8x slower: its pooled latency is flagged as a latency spike on that endpoint within a
    minute, and nothing is flagged before."""
    rng = np.random.default_rng(3)
    spike_s, end_s = 1200, 1500
    events = []
    for t in np.sort(rng.uniform(0, end_s, int(end_s * 0.4))):
        factor = 8.0 if t >= spike_s else 1.0
        events.append(_ev(t, "web-1", "/static/logo.png", 200,
                          float(rng.lognormal(np.log(20), 0.4)) * factor))
    for t in np.sort(rng.uniform(0, end_s, end_s * 5)):
        events.append(_ev(t, rng.choice(["web-1", "web-2"]), "/api/items", 200,
                          float(rng.lognormal(np.log(40), 0.3))))
    ev = pd.DataFrame(events).sort_values("ts", kind="stable").reset_index(drop=True)
    metrics = events_to_metrics(ev)
    det = Detector(DetectorConfig())
    cut = T0 + pd.Timedelta(seconds=600)
    det.process(metrics[metrics.window_start < cut])
    det.train()
    found = det.process(metrics[metrics.window_start >= cut])
    spike_ws = T0 + pd.Timedelta(seconds=spike_s)
    assert (found.window_start < spike_ws).sum() == 0, found[["window_start", "entity", "kind"]]
    logo = found[(found.entity == "/static/logo.png") & (found.kind == "latency_spike")]
    assert len(logo) > 0, found[["window_start", "entity", "kind"]]
    # the pool (up to 8 windows, 40 requests) turns once the spike holds most of it
    assert logo.window_start.min() <= spike_ws + pd.Timedelta(seconds=60)
    assert set(found.entity) <= {"/static/logo.png", "web-1", SERVICE_ENTITY}


def test_404_share_is_a_scan_on_a_source_but_competes_on_an_endpoint():
    devs = {"requests": 10.4, "share_404": 6.8}
    assert classify(devs, "source") == "scan_404"
    assert classify(devs, "service") == "scan_404"
    assert classify(devs, "endpoint") == "traffic_surge"
    assert classify({"share_404": 9.0, "requests": 7.0}, "endpoint") == "scan_404"


def _z(**values: float) -> np.ndarray:
    z = np.full(len(FEATURES), np.nan)
    for name, v in values.items():
        z[FEATURES.index(name)] = v
    return z


@pytest.mark.parametrize(("n", "p50", "z50", "flagged"), [
    (24, 30.0, 1.0, False),    # few requests, median unchanged: one slow request
    (24, 65.0, 2.0, False),    # median up, but within its noise
    (24, 65.0, 4.0, True),     # the bulk got slower
    (400, 30.0, 1.0, True),    # enough requests: the tail stands on its own
])
def test_tail_latency_of_few_requests_needs_the_median_to_rise(n, p50, z50, flagged):
    observed = {"latency_p95": 300.0, "latency_p50": p50, "latency_requests": n}
    expected = {"latency_p95": 80.0, "latency_p50": 30.0}
    devs = deviating(_z(latency_p95=7.0, latency_p50=z50), observed, expected, threshold=6.0)
    assert ("latency_p95" in devs) is flagged


class _AlwaysAnomalous:
    """Stands in for a trained forest that scores every window as anomalous."""

    threshold = 0.5
    extra: dict = {}

    def score(self, zs: np.ndarray) -> np.ndarray:
        return np.ones(len(zs))


def test_forest_continues_an_incident_but_opens_none():
    """A 5 % error rate (z ~4: under the threshold, over the forest's corroboration level)
    is reported right after the same source's burst, as the forest's verdict, and not on a
    source that was quiet."""
    events = []
    for k in range(9000):  # 900 s, 10 requests/s per source
        t = k * 0.1
        st1 = 500 if ((700 <= t < 730 and k % 2 == 0) or (730 <= t < 740 and k % 20 == 0)) \
            else 200
        st2 = 500 if 800 <= t < 810 and k % 20 == 0 else 200
        events.append(_ev(t, "web-1", "/a", st1, 30.0 + (k % 7)))
        events.append(_ev(t + 0.05, "web-2", "/b", st2, 30.0 + (k % 5)))
    metrics = events_to_metrics(pd.DataFrame(events))
    det = Detector(DetectorConfig(), model=_AlwaysAnomalous())
    found = det.process(metrics)
    found = found[found.entity_type == "source"]
    web1 = found[found.entity == "web-1"].set_index("window_start")
    assert set(web1.loc[T0 + pd.Timedelta(seconds=700):T0 + pd.Timedelta(seconds=720),
                        "detector"]) <= {"baseline", "combined"}
    assert web1.loc[T0 + pd.Timedelta(seconds=730), "detector"] == "iforest"
    assert "web-2" not in set(found.entity), found[["window_start", "entity", "detector"]]
