"""The detector's modes over the Delta tables: ``train``, ``stream``, ``analyze``.

All of them use the process's shared SparkSession (``get_spark``) only to read ``metrics`` /
``logs`` into pandas and MERGE into ``anomalies``; detection itself is ``engine.Detector``.
``stream`` raises findings on open (provisional) windows and settles them when the windows
close (``anomaly_table``); ``train`` and ``analyze`` see final windows only.

Models live in ``settings.data_dir/models/detector-<window>.pkl`` (``iforest.save_model``).
A model made by other library versions is refused with ``ModelVersionError``: ``train`` and
``analyze`` exit with its message; ``stream`` reports it in its status and runs on the robust
baseline alone until its scheduled retrain replaces the model.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline.delta_tables import WriterLockBusy
from pipeline.detection import anomaly_table, delta_io
from pipeline.detection.engine import Detector, DetectorConfig, empty_anomalies
from pipeline.detection.evaluation import evaluate, read_labels
from pipeline.detection.features import window_freq, window_label
from pipeline.detection.iforest import IForestModel, ModelVersionError, load_model, save_model
from pipeline.schemas import TABLE_METRICS
from pipeline.settings import Settings
from pipeline.status import write_status

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

COMPONENT = "detector"
#: Logs read to learn templates when training / warming up (newest windows of the span).
PATTERN_LOG_ROWS = 300_000


def model_path(settings: Settings) -> Path:
    return settings.data_dir / "models" / f"detector-{window_label(settings.detector.window)}.pkl"


def parse_time(value: str | None) -> pd.Timestamp | None:
    """ISO time (naive = UTC) -> naive UTC Timestamp; raises ValueError naming the value."""
    if value in (None, ""):
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a time: {value!r} (use ISO 8601, e.g. 2026-11-27T10:00)") from exc
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _detector(settings: Settings, model: IForestModel | None) -> Detector:
    return Detector(DetectorConfig.from_settings(settings), model=model)


# -- train -------------------------------------------------------------------------------
def train(spark: SparkSession, settings: Settings, start: pd.Timestamp | None = None,
          end: pd.Timestamp | None = None, seed: int = 0) -> tuple[IForestModel, Path]:
    """Fit on ``metrics`` windows in [start, end) and persist; returns (model, path)."""
    wsize = window_label(settings.detector.window)
    metrics = delta_io.read_metrics(spark, settings, wsize, start=start, end=end)
    if metrics.empty:
        raise ValueError(f"no {wsize} metrics in {TABLE_METRICS} between {start} and {end}")
    det = _detector(settings, None)
    lo = pd.Timestamp(metrics["window_start"].min())
    hi = pd.Timestamp(metrics["window_end"].max())
    logs = delta_io.read_logs(spark, settings, lo, hi, limit=PATTERN_LOG_ROWS)
    det.process(metrics, logs)
    det.end_learning()
    model = det.train(seed=seed)
    model.trained_from = (start or lo).isoformat()
    model.trained_to = (end or hi).isoformat()
    path = save_model(model, model_path(settings))
    return model, path


# -- analyze -----------------------------------------------------------------------------
def analyze(spark: SparkSession, settings: Settings, start: pd.Timestamp | None,
            end: pd.Timestamp | None, labels_path: Path | None = None,
            output: Path | None = None, use_model: bool = True,
            write: bool = True) -> dict[str, Any]:
    """Detect over [start, end) in one batch; MERGE the anomalies; score against labels."""
    wsize = window_label(settings.detector.window)
    model = load_model(model_path(settings)) if use_model and model_path(settings).is_file() \
        else None
    metrics = delta_io.read_metrics(spark, settings, wsize, start=start, end=end)
    det = _detector(settings, model)
    anomalies = empty_anomalies()
    if not metrics.empty:
        lo = pd.Timestamp(metrics["window_start"].min())
        hi = pd.Timestamp(metrics["window_end"].max())
        logs = delta_io.read_logs(spark, settings, lo, hi)
        anomalies = det.process(metrics, logs)
    inserted = 0
    if write:
        lock = anomaly_table.AnomaliesLock(settings)
        try:
            lock.acquire(timeout=10.0)
        except WriterLockBusy as exc:
            raise WriterLockBusy(
                f"{exc}; a stream detector owns the anomalies table - use --no-write") from None
        try:  # settles provisional rows a stopped stream detector left in the range
            if not metrics.empty:
                inserted = anomaly_table.settle(
                    spark, settings, anomalies, pd.Timestamp(metrics["window_start"].min()),
                    pd.Timestamp(metrics["window_start"].max()))["inserted"]
        finally:
            lock.release()
    result: dict[str, Any] = {
        "windows": int(metrics["window_start"].nunique()) if not metrics.empty else 0,
        "anomalies": len(anomalies), "inserted": inserted,
        "by_kind": anomalies["kind"].value_counts().to_dict() if len(anomalies) else {},
        "model_version": model.model_version if model else None,
    }
    if labels_path is not None:
        labels = read_labels(labels_path)
        hours = None
        if not metrics.empty:
            span = pd.Timestamp(metrics["window_end"].max()) - pd.Timestamp(
                metrics["window_start"].min())
            hours = span / pd.Timedelta(hours=1)
        result["evaluation"] = evaluate(anomalies, labels, window_freq(settings.detector.window),
                                        sim_hours=hours)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2, default=str))
    return result


# -- stream ------------------------------------------------------------------------------
class DetectorService:
    """Polls ``metrics``; heartbeats; retrains on schedule.

    Each poll that finds a new table version reads the windows after the last final one in
    one go. Windows final since the last poll are processed (the detector learns from them)
    and their findings settled: provisional rows confirmed or withdrawn, new ones inserted
    (``anomaly_table``). Windows still open (their first partials are in Delta within a
    trigger of their end; final about ``processor.watermark`` later) are only ``peek``-ed:
    their findings are inserted as provisional rows and nothing learns from them.
    """

    def __init__(self, spark: SparkSession, settings: Settings,
                 stop_event: threading.Event) -> None:
        self.spark = spark
        self.settings = settings
        self.stop_event = stop_event
        self.window_size = window_label(settings.detector.window)
        self.model_error: str | None = None
        model = None
        path = model_path(settings)
        if path.is_file():
            try:
                model = load_model(path)
            except ModelVersionError as exc:
                self.model_error = str(exc)
                log.error("%s", exc)
        self.detector = _detector(settings, model)
        self.last_version: int | None = None
        self.windows = 0
        self.written = 0
        #: provisional findings raised / confirmed / withdrawn since the start
        self.provisional = 0
        self.confirmed = 0
        self.withdrawn = 0
        #: provisional anomaly ids written and not settled yet -> their window_start
        self._open_ids: dict[str, pd.Timestamp] = {}
        self.last_error: str | None = None
        self.last_train = time.monotonic()
        self.started = time.time()

    def warm_up(self) -> int:
        """Replay the last ``history_hours`` of final windows (MERGE makes re-flagging a
        no-op)."""
        _lo, hi = delta_io.metrics_window_range(self.spark, self.settings, self.window_size)
        if hi is None:
            return 0
        start = hi - pd.Timedelta(hours=self.settings.detector.history_hours)
        # Templates are learned from the newest windows only: hours of raw logs are too many.
        learn = self.detector.window * (self.detector.config.pattern_learn_windows + 1)
        return self._detect(delta_io.read_metrics(self.spark, self.settings, self.window_size,
                                                  start=start), logs_since=hi - learn,
                            settle_always=True)

    def poll_once(self) -> int:
        """Settle windows final since the last poll, peek at the open ones; returns the
        anomaly rows inserted (final and provisional).

        Windows become final in window order and never change afterwards, so the final ones
        after the last window processed are exactly the new ones.
        """
        path = self.settings.table_path(TABLE_METRICS)
        version = delta_io.table_version(self.spark, path)
        if version is None or version == self.last_version:
            return 0
        final, open_ = delta_io.read_windows(self.spark, self.settings, self.window_size,
                                             after=self.detector.last_window)
        self.last_version = version
        return self._detect(final) + self._peek(open_)

    def _detect(self, metrics: pd.DataFrame, logs_since: pd.Timestamp | None = None,
                settle_always: bool = False) -> int:
        """Process final windows; settle their findings (``settle_always``: even when this
        process wrote no provisional row for them, e.g. rows a previous run left)."""
        if metrics.empty:
            return 0
        lo = pd.Timestamp(metrics["window_start"].min())
        if logs_since is not None:
            lo = max(lo, logs_since)
        hi = pd.Timestamp(metrics["window_end"].max())
        logs = delta_io.read_logs(self.spark, self.settings, lo, hi, limit=None)
        before = self.detector.windows_seen
        anomalies = self.detector.process(metrics, logs)
        self.windows += self.detector.windows_seen - before
        first = pd.Timestamp(metrics["window_start"].min())
        last = pd.Timestamp(metrics["window_start"].max())
        settled = [k for k, ws in self._open_ids.items() if ws <= last]
        if anomalies.empty and not settled and not settle_always:
            return 0
        got = anomaly_table.settle(self.spark, self.settings, anomalies, first, last)
        for k in settled:
            del self._open_ids[k]
        self.confirmed += got["confirmed"]
        self.withdrawn += got["withdrawn"]
        self.written += got["inserted"]
        return got["inserted"]

    def _peek(self, metrics: pd.DataFrame) -> int:
        """Provisional findings of open windows; each is written once (insert-only)."""
        if metrics.empty:
            return 0
        found = self.detector.peek(metrics)
        found = found[~found["anomaly_id"].isin(list(self._open_ids))]
        if found.empty:
            return 0
        inserted = anomaly_table.insert_new(self.spark, self.settings, found)
        self._open_ids.update(zip(found["anomaly_id"], pd.to_datetime(found["window_start"]),
                                  strict=True))
        self.provisional += inserted
        self.written += inserted
        return inserted

    def maybe_retrain(self, force: bool = False) -> bool:
        d = self.settings.detector
        # the first model waits for a full baseline span of windows, not just enough rows
        enough = len(self.detector.train_rows) >= d.iforest_min_train_rows and \
            self.detector.windows_seen >= d.baseline_windows
        due = force or (time.monotonic() - self.last_train >= d.retrain_every_s) or (
            self.detector.model is None and enough)
        if not due or not enough:
            return False
        self.detector.end_learning()
        model = self.detector.train()
        save_model(model, model_path(self.settings))
        self.model_error = None
        self.last_train = time.monotonic()
        log.info("detector model %s trained on %d windows", model.model_version, model.train_rows)
        return True

    def heartbeat(self, state: str) -> None:
        m = self.detector.model
        write_status(self.settings, COMPONENT, state=state, window=self.window_size,
                     windows_processed=self.windows, anomalies_written=self.written,
                     provisional_raised=self.provisional, provisional_confirmed=self.confirmed,
                     provisional_withdrawn=self.withdrawn,
                     last_window=str(self.detector.last_window) if self.detector.last_window
                     is not None else None,
                     model_version=m.model_version if m else None,
                     model_error=self.model_error, last_error=self.last_error,
                     uptime_s=round(time.time() - self.started, 1))

    def run(self) -> None:
        """Until ``stop_event``: poll, heartbeat, retrain; errors are reported and retried."""
        interval = self.settings.detector.poll_interval_s
        lock = anomaly_table.AnomaliesLock(self.settings)
        try:
            lock.acquire(timeout=0.0)
        except WriterLockBusy as exc:
            self.last_error = str(exc)
            log.error("detector not started: %s", exc)
            self.heartbeat("error")
            return
        try:
            self._run(interval)
        finally:
            lock.release()

    def _run(self, interval: float) -> None:
        self.heartbeat("starting")
        try:
            self.warm_up()
        except Exception as exc:  # a bad table must not kill the host process
            self.last_error = f"warm-up: {exc}"
            log.exception("detector warm-up failed")
        while not self.stop_event.is_set():
            state = "running"
            try:
                self.poll_once()
                self.maybe_retrain()
                self.last_error = None
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                state = "error"
                log.exception("detector poll failed")
            self.heartbeat(state)
            self.stop_event.wait(interval)
        self.heartbeat("stopped")


def start_in_session(spark: SparkSession, settings: Settings,
                     stop_event: threading.Event) -> threading.Thread:
    """Run the stream detector in a daemon thread of a process that owns ``spark``.

    The streaming processor hosts the detector this way; set ``stop_event`` and join the
    thread to stop it (it finishes its current poll first).
    """
    service = DetectorService(spark, settings, stop_event)
    thread = threading.Thread(target=service.run, name="lakewatch-detector", daemon=True)
    thread.service = service  # type: ignore[attr-defined]
    thread.start()
    return thread
