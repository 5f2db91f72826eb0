"""Consumer lag and end-to-end freshness, computed in one place from the processor's heartbeat
and the ``logs`` table's newest Delta commit.

The desktop dashboard and health panel both show these (:func:`measure` plus a
:class:`LagHistory` each); ``lakewatch pipeline status`` shows the lag through
:func:`processor_lag`.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import schemas
from pipeline.settings import Settings, interval_seconds
from pipeline.status import Heartbeat, ProcessorStatus

#: one sample per second for a day (the dashboard's longest range)
DAY_OF_SAMPLES = 24 * 3600


def processor_lag(status: Heartbeat | None) -> int | None:
    """Records in Kafka the processor has not processed yet; None when it hasn't said (or
    ``status`` is not the processor's)."""
    return status.lag if isinstance(status, ProcessorStatus) else None


def trigger_seconds(text: str) -> float:
    """'2 seconds' / '1 minute' -> seconds (best effort; 2.0 when unparsable)."""
    try:
        return interval_seconds(text)
    except ValueError:
        return 2.0


def last_commit_ms(table_path: Path) -> int | None:
    """Modification time of the newest Delta commit file, without reading the table."""
    log = table_path / "_delta_log"
    newest: int | None = None
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(log):
            if entry.name.endswith(".json") and entry.name[:-5].isdigit():
                mtime = int(entry.stat().st_mtime * 1000)
                newest = mtime if newest is None or mtime > newest else newest
    return newest


def batch_seconds(status: ProcessorStatus | None, trigger_s: float) -> float:
    """How long the batch in flight takes: the slowest query's last trigger execution
    (``queries.*.batch_ms``), at least one trigger interval."""
    longest = trigger_s
    for query in (status.queries.values() if status is not None else ()):
        if query.batch_ms is not None:
            longest = max(longest, query.batch_ms / 1000.0)
    return longest


def end_to_end_freshness_s(commit_age_s: float | None, lag: float | None,
                           rows_per_s: float | None, trigger_s: float = 0.0) -> float | None:
    """How old is the newest data a reader of Delta can see, in seconds.

    Time since the last Delta commit, plus the backlog still in Kafka expressed as time (lag
    divided by the rate the streaming query processes rows), plus the batch in flight
    (``trigger_s``: see ``batch_seconds``) when there is a backlog. None until there is a
    commit.
    """
    if commit_age_s is None:
        return None
    backlog = 0.0
    if lag and lag > 0:
        backlog = lag / rows_per_s if rows_per_s and rows_per_s > 0 else float("inf")
    return commit_age_s + backlog + (trigger_s if lag else 0.0)


@dataclass(frozen=True)
class Freshness:
    """One look at the processor's progress."""

    now: float
    #: the processor heartbeat's time (the lag sample's time), None without a heartbeat
    heartbeat: float | None
    lag: float | None
    rows_per_s: float | None
    #: seconds since the newest ``logs`` commit, None without a table
    commit_age_s: float | None
    trigger_s: float
    freshness_s: float | None


def measure(settings: Settings, processor: ProcessorStatus | None,
            now: float | None = None) -> Freshness:
    """Lag, processing rate, commit age and end-to-end freshness from ``processor``'s
    heartbeat and the ``logs`` table's newest commit."""
    now = time.time() if now is None else now
    commit_ms = last_commit_ms(settings.table_path(schemas.TABLE_LOGS))
    commit_age = None if commit_ms is None else max(0.0, now - commit_ms / 1000.0)
    trigger = trigger_seconds(settings.processor.trigger_interval)
    reported = processor_lag(processor)
    lag = None if reported is None else float(reported)
    rate = processor.rows_per_s if processor is not None else None
    return Freshness(
        now=now,
        heartbeat=processor.heartbeat if processor is not None else None,
        lag=lag,
        rows_per_s=rate,
        commit_age_s=commit_age,
        trigger_s=trigger,
        freshness_s=end_to_end_freshness_s(commit_age, lag, rate,
                                           batch_seconds(processor, trigger)),
    )


class LagHistory:
    """Preallocated ring of (time, lag) samples of the processor's consumer lag; a sample not
    newer than the last one (the same heartbeat read twice) is ignored."""

    def __init__(self, capacity: int = DAY_OF_SAMPLES) -> None:
        self.t = np.zeros(capacity)
        self.v = np.zeros(capacity)
        self.n = 0
        self.head = 0

    def add(self, t: float, value: float) -> None:
        if self.n and t <= self.t[(self.head - 1) % len(self.t)]:
            return
        self.t[self.head] = t
        self.v[self.head] = value
        self.head = (self.head + 1) % len(self.t)
        self.n = min(self.n + 1, len(self.t))

    def record(self, seen: Freshness) -> None:
        """Add ``seen``'s lag, timed by its heartbeat (or the time it was measured)."""
        if seen.lag is not None:
            self.add(seen.heartbeat if seen.heartbeat is not None else seen.now, seen.lag)

    def since(self, start_s: float) -> tuple[np.ndarray, np.ndarray]:
        order = np.arange(self.head - self.n, self.head) % len(self.t)
        t, v = self.t[order], self.v[order]
        keep = t >= start_s
        return t[keep], v[keep]

    def samples(self) -> list[tuple[float, float]]:
        """Every kept sample, oldest first."""
        t, v = self.since(float("-inf"))
        return [(float(a), float(b)) for a, b in zip(t, v, strict=True)]
