"""Gathers health facts off the GUI thread: heartbeat files, pid liveness, a TCP probe of the
broker, the age of the last Delta commit and consumer-lag samples.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from desktop_app.health import checks
from pipeline import components as comps
from pipeline import freshness
from pipeline.settings import Settings
from pipeline.status import Heartbeat, ProcessorStatus, read_status
from pipeline.supervisor.daemon import running_supervisor

#: lag samples the lag verdict looks at (ten minutes at one heartbeat a second)
LAG_SAMPLES_KEPT = 600


class HealthWorker(QObject):
    """``poll()`` (queued from a timer) emits ``facts(dict)``; runs on its own QThread."""

    facts = Signal(dict)

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.lag = freshness.LagHistory(LAG_SAMPLES_KEPT)

    @Slot()
    def poll(self) -> None:
        self.facts.emit(self.gather())

    def gather(self) -> dict[str, Any]:
        now = time.time()
        statuses: dict[str, Heartbeat | None] = {}
        alive: dict[str, bool] = {}
        for name in comps.ORDER:
            status = read_status(self.settings, name)
            if status is not None:
                alive[name] = checks.pid_alive(status.pid)
            statuses[name] = status
        supervisor = running_supervisor(self.settings)
        reachable, probe = checks.probe_tcp(self.settings.bootstrap_servers)
        processor = statuses.get(comps.PROCESSOR)
        seen = freshness.measure(
            self.settings, processor if isinstance(processor, ProcessorStatus) else None, now)
        self.lag.record(seen)
        return {
            "now": now,
            "statuses": statuses,
            "alive": alive,
            "supervisor_pid": supervisor.pid if supervisor is not None else None,
            "broker_reachable": reachable,
            "broker_probe": probe,
            "commit_age_s": seen.commit_age_s,
            "lag": seen.lag,
            "lag_samples": self.lag.samples(),
            "rows_per_s": seen.rows_per_s,
            "freshness_s": seen.freshness_s,
            "trigger_s": seen.trigger_s,
        }
