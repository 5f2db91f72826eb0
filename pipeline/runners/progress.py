"""What the running queries report: counters, Kafka lag, Delta commits, the status fields.

The stream job writes ``pipeline.status.write_status(settings, "processor", ...)`` every
``processor.status_interval_s`` with :func:`status_fields`, fed by :class:`ProcessorStats`
(updated by the ingest writer and a StreamingQueryListener, see :func:`make_listener`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.runners.checkpoints import INGEST
from pipeline.schemas import TABLE_LOGS
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger(__name__)


class ProcessorStats:
    """Counters fed by the ingest writer and the query listener, read by the status loop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows_logged = 0
        self.rows_quarantined = 0
        self.last_batch: dict[str, Any] = {}
        self.last_commit_ts: float | None = None
        self.late_events = 0
        self.progress: dict[str, dict[str, Any]] = {}
        self.optimize: dict[str, Any] = {}

    def batch_written(self, batch_id: int, n_ok: int, n_bad: int, n_late: int = 0,
                      seconds: dict[str, float] | None = None) -> None:
        """``seconds``: where the batch's time went (read + parse + dedup, logs, metrics)."""
        with self.lock:
            self.rows_logged += n_ok
            self.rows_quarantined += n_bad
            self.late_events += n_late
            self.last_batch = {"batch_id": batch_id, "logged": n_ok, "quarantined": n_bad,
                               "late": n_late, "seconds": seconds or {}}
            if n_ok or n_bad:
                self.last_commit_ts = time.time()

    def on_progress(self, progress: dict[str, Any]) -> None:
        name = progress.get("name")
        with self.lock:
            self.progress[name] = progress


def make_listener(stats: ProcessorStats):
    from pyspark.sql.streaming import StreamingQueryListener

    class _Listener(StreamingQueryListener):
        def onQueryStarted(self, event) -> None:
            pass

        def onQueryProgress(self, event) -> None:
            try:
                stats.on_progress(json.loads(event.progress.json))
            except Exception:  # a listener must never break the query
                log.exception("reading query progress")

        def onQueryIdle(self, event) -> None:
            pass

        def onQueryTerminated(self, event) -> None:
            pass

    return _Listener()


def _offsets(value: Any) -> dict[str, dict[str, int]] | None:
    """A Kafka source offset of a query progress (JSON text or dict): topic -> partition ->
    offset; None if absent or unreadable."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def processed_offsets(progress: dict[str, Any]) -> int | None:
    """Sum of the end offsets of the batch a progress reports (None before the first)."""
    ends = [_offsets(src.get("endOffset")) for src in progress.get("sources") or []]
    known = [int(off) for end in ends if end for parts in end.values() for off in parts.values()]
    return sum(known) if known else None


def kafka_lag(progress: dict[str, Any]) -> int | None:
    """Records in Kafka not yet processed: latest offsets minus the batch's end offsets."""
    total, known = 0, False
    for src in progress.get("sources") or []:
        end, latest = _offsets(src.get("endOffset")), _offsets(src.get("latestOffset"))
        if end is None or latest is None:
            continue
        for topic, parts in latest.items():
            for part, off in parts.items():
                done = (end.get(topic) or {}).get(part)
                if done is not None:
                    total += max(0, int(off) - int(done))
                    known = True
    return total if known else None


def delta_version(path: Path) -> tuple[int, float] | None:
    """(latest commit version, its mtime) from the table's _delta_log, without Spark."""
    log_dir = path / "_delta_log"
    best = None
    with contextlib.suppress(FileNotFoundError):
        for entry in log_dir.iterdir():
            name = entry.name
            if name.endswith(".json") and name[:-5].isdigit():
                v = int(name[:-5])
                if best is None or v > best[0]:
                    best = (v, entry)
    if best is None:
        return None
    with contextlib.suppress(FileNotFoundError):
        return best[0], best[1].stat().st_mtime
    return None


def is_data_loss(error: str) -> bool:
    text = error.lower()
    return "data_loss" in text or "data may have been lost" in text or "dataloss" in text


def concise_error(error: str, data_loss: bool) -> str:
    """The informative line of a (py4j-wrapped) Spark error, not the whole trace."""
    lines = [ln.strip() for ln in error.splitlines() if ln.strip()]
    keys = ("data_loss", "data may have been lost", "dataloss") if data_loss else (
        "exception:", "error:")
    for ln in lines:
        if any(k in ln.lower() for k in keys) and not ln.startswith(("File ", "at ")):
            prefix = "Kafka data lost before processing (retention?): " if data_loss else ""
            return prefix + ln.lstrip(": ")[:2000]
    return (lines[-1] if lines else error)[:2000]


def status_fields(stats: ProcessorStats, settings: Settings,
                  queries: dict[str, StreamingQuery]) -> dict[str, Any]:
    with stats.lock:
        progress = dict(stats.progress)
        fields: dict[str, Any] = {
            "rows_logged_total": stats.rows_logged,
            "rows_quarantined_total": stats.rows_quarantined,
            "last_batch": dict(stats.last_batch),
            "late_events": stats.late_events,
            "optimize": dict(stats.optimize),
        }
    per_query = {}
    for name, q in queries.items():
        p = progress.get(name) or {}
        per_query[name] = {
            "active": q.isActive,
            "batch_id": p.get("batchId"),
            "input_rows_per_s": p.get("inputRowsPerSecond"),
            "processed_rows_per_s": p.get("processedRowsPerSecond"),
            "num_input_rows": p.get("numInputRows"),
            "batch_ms": (p.get("durationMs") or {}).get("triggerExecution"),
            "timestamp": p.get("timestamp"),
        }
    ingest = progress.get(INGEST) or {}
    commit = delta_version(settings.table_path(TABLE_LOGS))
    fields.update(
        queries=per_query,
        batch_id=ingest.get("batchId"),
        input_rows_per_s=ingest.get("inputRowsPerSecond"),
        processed_rows_per_s=ingest.get("processedRowsPerSecond"),
        events_per_s=ingest.get("processedRowsPerSecond"),
        lag=kafka_lag(ingest),
        last_commit_version=commit[0] if commit else None,
        last_commit_ts=commit[1] if commit else None,
    )
    return fields
