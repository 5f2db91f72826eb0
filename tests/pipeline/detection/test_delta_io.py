"""The detector over real Delta tables with the shared SparkSession: idempotent MERGE into
``anomalies``, ``detect --mode analyze|train`` and the stream service's incremental polls."""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np
import pandas as pd
import pytest

from pipeline.commands import detect
from pipeline.detection import anomaly_table, delta_io
from pipeline.detection.engine import Detector, DetectorConfig
from pipeline.detection.features import events_to_metrics, events_to_partials
from pipeline.detection.iforest import load_model
from pipeline.detection.runner import DetectorService, model_path, start_in_session
from pipeline.detection.simulate import SIM_START_MS, simulate_events
from pipeline.latency_hist import ALPHA
from pipeline.schemas import LOGS_DDL, METRIC_PARTIALS_DDL, column_names
from pipeline.settings import Settings
from pipeline.sources.scenarios import Scenario
from pipeline.status import read_status

SIM_S = 16 * 60
BURST_AT_S = 12 * 60
START = pd.Timestamp(SIM_START_MS, unit="ms")


@pytest.fixture(scope="module")
def sim():
    events, labels = simulate_events(seed=3, sim_seconds=SIM_S, rate=40,
                                     scenarios=[Scenario("error_burst", BURST_AT_S, 60)])
    return events, labels


def _logs_frame(events: pd.DataFrame) -> pd.DataFrame:
    ts = pd.to_datetime(events["ts"].astype("int64"), unit="ms")
    cols = column_names(LOGS_DDL)
    out = pd.DataFrame({c: None for c in cols}, index=events.index)
    out["event_id"] = [f"e{i}" for i in range(len(events))]
    out["ts"] = ts
    for c in ("level", "source", "endpoint", "message"):
        out[c] = events[c].astype(str)
    out["status"] = events["status"].astype("int32")
    out["latency_ms"] = events["latency_ms"].astype(float)
    out["bytes"] = events["bytes"].astype("int64")
    out["raw_format"] = "json"
    out["ingest_ts"] = ts
    out["date"] = ts.dt.date
    return out[cols]


def write_partials(spark, settings: Settings, partials: pd.DataFrame) -> None:
    """Append ``metrics`` partials with delta-rs (quick, no Python workers in the JVM) to the
    table the processor's own ``ensure_tables`` (Spark) creates."""
    from deltalake import write_deltalake

    from pipeline.delta_tables import ensure_tables

    ensure_tables(spark, settings)
    write_deltalake(str(settings.table_path("metrics")),
                    delta_io.to_arrow(partials, METRIC_PARTIALS_DDL), mode="append")


def write_tables(spark, settings: Settings, events: pd.DataFrame) -> None:
    """Append events' metrics partials (pandas mirror, several per window) and logs rows.

    The last batch's watermark is moved past the newest window, as if the stream had moved
    on: every window written is final.
    """
    from deltalake import write_deltalake

    partials = events_to_partials(events, batch_size=150)
    last = partials["batch_id"] == partials["batch_id"].max()
    partials.loc[last, "watermark"] = partials["window_end"].max()
    write_partials(spark, settings, partials)
    write_deltalake(str(settings.table_path("logs")),
                    delta_io.to_arrow(_logs_frame(events), LOGS_DDL), mode="append")


def _args(**kw) -> argparse.Namespace:
    base = {"mode": "analyze", "start": None, "end": None, "labels": None, "output": None,
            "no_model": False, "no_write": False, "seed": 0}
    base.update(kw)
    return argparse.Namespace(**base)


T0 = pd.Timestamp("2026-01-01 10:00:00")
TEN_S = pd.Timedelta(seconds=10)
KEYS = ["window_start", "source", "endpoint", "level"]
COUNTS = ["requests", "errors", "bytes", "status_2xx", "status_3xx", "status_4xx",
          "status_5xx", "status_404"]


def _assert_same_windows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same windows, equal counts, percentiles within the histograms' 1 % of the exact."""
    assert list(got.columns) == list(delta_io.METRIC_COLUMNS)
    got, want = (f.assign(window_start=pd.to_datetime(f.window_start).astype("datetime64[ns]"))
                 .set_index(KEYS).sort_index() for f in (got, want))
    assert got.index.equals(want.index)
    assert (got[COUNTS].astype("int64") == want[COUNTS].astype("int64")).all().all()
    for col in ("latency_p50", "latency_p95", "latency_p99"):
        assert (abs(got[col] - want[col]) <= ALPHA * want[col] + 1e-9).all(), col


def test_read_metrics_merges_partials_into_final_windows(spark, settings: Settings):
    rng = np.random.default_rng(7)
    n = 1800  # 30 s of events: three 10 s windows of two sources
    events = pd.DataFrame({
        "ts": np.sort(rng.integers(0, 30_000, n)) + T0.value // 1_000_000,
        "source": rng.choice(["web-01", "api-01"], n), "endpoint": "/a", "level": "INFO",
        "status": rng.choice([200, 404, 503], n, p=[0.9, 0.05, 0.05]),
        "latency_ms": rng.lognormal(3.0, 1.2, n), "bytes": rng.integers(0, 5000, n),
    })
    # watermark = newest event time: the third window (and the 1 m one) is provisional
    partials = events_to_partials(events, batch_size=70, delay_s=0.0)
    assert partials.groupby(KEYS).size().min() >= 2  # merging is exercised everywhere
    write_partials(spark, settings, partials)
    exact = events_to_metrics(events, "10s")
    final = exact[exact.window_end <= T0 + 2 * TEN_S]

    _assert_same_windows(delta_io.read_metrics(spark, settings, "10s"), final)
    _assert_same_windows(
        delta_io.read_metrics(spark, settings, "10s", include_provisional=True), exact)
    assert delta_io.read_metrics(spark, settings, "1m").empty
    _assert_same_windows(delta_io.read_metrics(spark, settings, "1m", include_provisional=True),
                         events_to_metrics(events, "1m"))
    # exact filters on the merged window_start, whatever the partials' own starts
    _assert_same_windows(delta_io.read_metrics(spark, settings, "10s", after=T0),
                         final[final.window_start > T0])
    _assert_same_windows(delta_io.read_metrics(spark, settings, "1m", end=T0 + TEN_S,
                                               include_provisional=True),
                         events_to_metrics(events, "1m"))
    assert delta_io.read_metrics(spark, settings, "1m", start=T0 + TEN_S,
                                 include_provisional=True).empty
    assert delta_io.metrics_window_range(spark, settings, "10s") == (T0, T0 + TEN_S)
    assert delta_io.metrics_window_range(spark, settings, "10s", include_provisional=True) == (
        T0, T0 + 2 * TEN_S)
    assert delta_io.metrics_window_range(spark, settings, "1m") == (None, None)
    # read_windows: the final ones, and no provisional one (the third is still filling)
    final_w, open_w = delta_io.read_windows(spark, settings, "10s")
    _assert_same_windows(final_w, final)
    assert open_w.empty and list(open_w.columns) == list(delta_io.METRIC_COLUMNS)

    # a later partial moves the table's watermark: windows outside the slice read become final
    later = partials.tail(1).assign(
        window_start=T0 + 30 * TEN_S, window_end=T0 + 31 * TEN_S,
        watermark=T0 + 31 * TEN_S, batch_id=partials.batch_id.max() + 1)
    write_partials(spark, settings, later)
    _assert_same_windows(delta_io.read_metrics(spark, settings, "10s", end=T0 + 3 * TEN_S),
                         exact)
    assert delta_io.metrics_window_range(spark, settings, "1m") == (T0, T0)


def test_merge_is_idempotent(spark, settings: Settings, sim):
    events, _labels = sim
    anomalies = Detector(DetectorConfig()).process(
        events_to_metrics(events), events[["ts", "message", "level", "status"]])
    assert len(anomalies) > 0
    first = anomaly_table.insert_new(spark, settings, anomalies)
    second = anomaly_table.insert_new(spark, settings, anomalies)
    back = anomaly_table.read(spark, settings)
    assert (first, second) == (len(anomalies), 0)
    assert len(back) == len(anomalies)
    assert sorted(back.anomaly_id) == sorted(anomalies.anomaly_id)
    assert back.anomaly_id.is_unique
    schema = spark.read.format("delta").load(str(settings.table_path("anomalies"))).schema
    assert [f.name for f in schema] == column_names(anomaly_table.TABLE_DDL)
    row = back.set_index("anomaly_id").loc[anomalies.anomaly_id.iloc[0]]
    assert row.kind == anomalies.kind.iloc[0]
    assert json.loads(row.features) == json.loads(anomalies.features.iloc[0])
    assert pd.Timestamp(row.window_start) == pd.Timestamp(anomalies.window_start.iloc[0])


def test_analyze_train_and_rerun(spark, settings: Settings, sim, tmp_path, capsys):
    events, labels = sim
    write_tables(spark, settings, events)
    labels_file = tmp_path / "labels.jsonl"
    labels_file.write_text("".join(json.dumps(lab.to_json()) + "\n" for lab in labels))
    out = tmp_path / "eval.json"

    # train on the clean part, then analyze everything with the model
    assert detect.run(_args(mode="train", end=str(START + pd.Timedelta(
        seconds=BURST_AT_S - 60))), settings) == 0
    model = load_model(model_path(settings))
    assert model.trained_to == (START + pd.Timedelta(seconds=BURST_AT_S - 60)).isoformat()
    assert model.train_rows >= 200
    assert detect.run(_args(labels=labels_file, output=out), settings) == 0
    printed = capsys.readouterr().out
    assert "error_burst" in printed and "ALL" in printed
    result = json.loads(out.read_text())
    assert result["windows"] == SIM_S // 10
    assert result["model_version"] == model.model_version
    ev = result["evaluation"]
    assert ev["per_kind"]["error_burst"]["recall"] == 1.0
    assert ev["per_kind"]["error_burst"]["median_delay_windows"] <= 1
    assert ev["false_positives"] == 0
    stored = anomaly_table.read(spark, settings)
    assert len(stored) == result["anomalies"] == result["inserted"] > 0
    assert set(stored.kind) == {"error_burst"}

    # the same range again: nothing new
    assert detect.run(_args(), settings) == 0
    assert len(anomaly_table.read(spark, settings)) == len(stored)


def test_bad_arguments_are_clear_errors(settings: Settings, capsys, tmp_path):
    assert detect.run(_args(start="yesterday-ish"), settings) == 2
    assert "not a time: 'yesterday-ish'" in capsys.readouterr().err
    assert detect.run(_args(labels=tmp_path / "none.jsonl"), settings) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow  # two Delta appends, a history replay and two MERGEs: ~1-5 min here
def test_stream_service_reads_only_new_windows(spark, settings: Settings, sim):
    events, labels = sim
    cut_ms = SIM_START_MS + BURST_AT_S * 1000
    write_tables(spark, settings, events[events.ts < cut_ms])
    service = DetectorService(spark, settings, threading.Event())
    service.warm_up()
    assert service.windows == BURST_AT_S // 10
    assert service.poll_once() == 0  # no new version: nothing read
    assert len(anomaly_table.read(spark, settings)) == 0

    write_tables(spark, settings, events[events.ts >= cut_ms])
    inserted = service.poll_once()
    assert service.windows == SIM_S // 10
    stored = anomaly_table.read(spark, settings)
    assert inserted == len(stored) > 0
    burst = labels[0]
    first = stored[stored.kind == "error_burst"].window_start.min()
    assert pd.Timestamp(first) <= pd.Timestamp(burst.start_ms, unit="ms").floor("10s") + \
        pd.Timedelta(seconds=10)
    service.heartbeat("running")
    status = read_status(settings, "detector")
    assert status.windows_processed == SIM_S // 10
    assert status.anomalies_written == inserted


def test_start_in_session_stops_on_event(spark, settings: Settings, capsys):
    settings.detector.poll_interval_s = 0.2
    stop = threading.Event()
    thread = start_in_session(spark, settings, stop)
    deadline = time.monotonic() + 30
    while getattr(read_status(settings, "detector"), "state", None) != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # one anomalies writer per data dir: a second detector and a writing analyze are refused
    second = start_in_session(spark, settings, threading.Event())
    second.join(30)
    assert not second.is_alive() and thread.is_alive()
    assert "being written by another process" in second.service.last_error
    assert detect.run(_args(), settings) == 2
    assert "use --no-write" in capsys.readouterr().err
    stop.set()
    thread.join(30)
    assert not thread.is_alive()
    assert read_status(settings, "detector").state == "stopped"
