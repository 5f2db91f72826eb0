"""Gathers health facts off the GUI thread: heartbeat files, pid liveness, a TCP probe of the
broker, the age of the last Delta commit and consumer-lag samples.
"""

from __future__ import annotations

import collections
import time
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from desktop_app.health import checks
from pipeline import schemas
from pipeline.settings import Settings
from pipeline.status import read_status

STATUS_COMPONENTS = ("broker", "generator", "processor", "detector")
LAG_KEYS = ("lag", "kafka_lag", "consumer_lag")
RATE_KEYS = ("processed_rows_per_s", "processedRowsPerSecond", "rows_per_s",
             "input_rows_per_s", "events_per_s")


class HealthWorker(QObject):
    """``poll()`` (queued from a timer) emits ``facts(dict)``; runs on its own QThread."""

    facts = Signal(dict)

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.lag_samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=600)

    @Slot()
    def poll(self) -> None:
        self.facts.emit(self.gather())

    def gather(self) -> dict[str, Any]:
        now = time.time()
        statuses: dict[str, dict[str, Any] | None] = {}
        for name in STATUS_COMPONENTS:
            status = read_status(self.settings, name)
            if status is not None:
                status["_pid_alive"] = checks.pid_alive(status.get("pid"))
            statuses[name] = status
        supervisor = _running_supervisor(self.settings)
        reachable, probe = checks.probe_tcp(self.settings.bootstrap_servers)
        commit_ms = checks.last_commit_ms(self.settings.table_path(schemas.TABLE_LOGS))
        processor = statuses.get("processor")
        lag = checks.status_number(processor, *LAG_KEYS)
        if lag is not None and processor is not None:
            beat = float(processor.get("heartbeat", now))
            if not self.lag_samples or beat > self.lag_samples[-1][0]:
                self.lag_samples.append((beat, lag))
        rate = checks.status_number(processor, *RATE_KEYS)
        commit_age = None if commit_ms is None else max(0.0, now - commit_ms / 1000.0)
        trigger = checks.trigger_seconds(self.settings.processor.trigger_interval)
        return {
            "now": now,
            "statuses": statuses,
            "supervisor_pid": supervisor,
            "broker_reachable": reachable,
            "broker_probe": probe,
            "commit_age_s": commit_age,
            "lag": lag,
            "lag_samples": list(self.lag_samples),
            "rows_per_s": rate,
            "freshness_s": checks.end_to_end_freshness_s(
                commit_age, lag, rate, checks.batch_seconds(processor, trigger)),
            "trigger_s": trigger,
        }


def _running_supervisor(settings: Settings) -> int | None:
    """Pid of a ``lakewatch pipeline`` supervisor already running for this data dir."""
    try:
        from pipeline.orchestrator import running_supervisor
    except ImportError:
        return None
    proc = running_supervisor(settings)
    return proc.pid if proc is not None else None
