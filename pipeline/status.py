"""Component heartbeats: each long-running component writes a small JSON status file.

The orchestrator's ``status`` and the desktop app's health panel read these files instead of
talking to the components, so a wedged component shows up as a stale heartbeat.

Each component's file has one model here (``MODELS``): :class:`BrokerStatus`,
:class:`ProcessorStatus`, :class:`DetectorStatus`, :class:`GeneratorStatus` and
:class:`ShipperStatus` (both written by the producer wrapper), :class:`SupervisorStatus`.
Every file carries ``version`` (:data:`STATUS_VERSION`; a file without one is version 0).
Reading is tolerant: missing keys take their defaults, unknown keys are kept (as extra
attributes), and a key whose value does not fit its type reads as the default, so a file
written by an older or newer release still reads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.files import atomic_write
from pipeline.settings import Settings

log = logging.getLogger(__name__)

#: schema version of the status files this release writes
STATUS_VERSION = 1

BROKER = "broker"
PROCESSOR = "processor"
DETECTOR = "detector"
GENERATOR = "generator"
SHIPPER = "shipper"
SUPERVISOR = "supervisor"

#: ``state`` values of a component that ended on purpose
STOPPED_STATES = ("stopped", "finished", "exited")


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class Heartbeat(_Model):
    """What every status file has; also the model of a component this module doesn't know."""

    version: int = STATUS_VERSION
    component: str = ""
    pid: int | None = None
    #: time.time() of the write
    heartbeat: float | None = None
    state: str | None = None
    last_error: str | None = None

    def age_s(self, now: float) -> float | None:
        """Seconds since the heartbeat (never negative), None without one."""
        return None if self.heartbeat is None else max(0.0, now - self.heartbeat)


class BrokerStatus(Heartbeat):
    """``lakewatch broker run``: the wrapper around the embedded Kafka JVM."""

    component: str = BROKER

    broker_pid: int | None = None
    ready: bool | None = None


class QueryProgress(_Model):
    """One streaming query's last progress, as the processor reports it."""

    active: bool | None = None
    batch_id: int | None = None
    input_rows_per_s: float | None = None
    processed_rows_per_s: float | None = None
    num_input_rows: int | None = None
    #: the last trigger's execution time
    batch_ms: float | None = None
    timestamp: str | None = None


class ProcessorStatus(Heartbeat):
    """``lakewatch process --mode stream``: Kafka -> Delta (the ``ingest`` query) + metrics."""

    component: str = PROCESSOR

    mode: str | None = None
    data_loss: bool = False
    #: why the status fields could not be gathered (the processor keeps running)
    status_error: str | None = None
    rows_logged_total: int | None = None
    rows_quarantined_total: int | None = None
    last_batch: dict[str, Any] = Field(default_factory=dict)
    #: events kept in ``logs`` but too late for their (already final) metrics window
    late_events: int = 0
    #: what the last start migrated from an older layout (None: nothing)
    migrated: str | None = None
    optimize: dict[str, Any] = Field(default_factory=dict)
    queries: dict[str, QueryProgress] = Field(default_factory=dict)
    #: the ingest query's last batch
    batch_id: int | None = None
    input_rows_per_s: float | None = None
    processed_rows_per_s: float | None = None
    events_per_s: float | None = None
    #: records in Kafka not yet processed (consumer lag)
    lag: int | None = None
    last_commit_version: int | None = None
    #: mtime of the newest ``logs`` Delta commit
    last_commit_ts: float | None = None

    @property
    def rows_per_s(self) -> float | None:
        """Rows per second the ingest query processes (its input rate until it reports one)."""
        return self.processed_rows_per_s if self.processed_rows_per_s is not None \
            else self.input_rows_per_s


class DetectorStatus(Heartbeat):
    """``lakewatch detect --mode stream`` (or the detector inside the processor)."""

    component: str = DETECTOR

    window: str | None = None
    windows_processed: int = 0
    anomalies_written: int = 0
    last_window: str | None = None
    model_version: str | None = None
    model_error: str | None = None
    uptime_s: float | None = None


class ProducerStatus(Heartbeat):
    """What ``LogProducer`` reports for any producing component."""

    events_per_s: float | None = None
    sent: int = 0
    acked: int = 0
    failed: int = 0
    in_flight: int = 0
    topic: str | None = None


class GeneratorStatus(ProducerStatus):
    """``lakewatch generate``: the synthetic web-log generator."""

    component: str = GENERATOR

    seed: int | None = None
    rate: float | None = None
    speedup: float | None = None
    sim_time_ms: int | None = None
    labels: int | None = None


class ShipperStatus(ProducerStatus):
    """``lakewatch ship``: tails an access log into Kafka."""

    component: str = SHIPPER

    path: str | None = None
    format: str | None = None
    source: str | None = None
    lines: int = 0
    file_id: str | None = None
    offset: int | None = None


class CrashReport(_Model):
    at: float | None = None
    exit_code: int | None = None
    reason: str = ""
    uptime_s: float | None = None
    restart_in_s: float | None = None
    log_tail: list[str] = Field(default_factory=list)


class ChildStatus(_Model):
    """The supervisor's view of one child process."""

    state: str = "stopped"
    wanted: bool = False
    pid: int | None = None
    started_at: float | None = None
    uptime_s: float | None = None
    restarts: int = 0
    crashes: int = 0
    next_start_at: float | None = None
    last_crash: CrashReport | None = None
    log: str | None = None


class SupervisorStatus(Heartbeat):
    """``lakewatch pipeline supervise``: the state of every child it runs."""

    component: str = SUPERVISOR

    components: dict[str, ChildStatus] = Field(default_factory=dict)


MODELS: dict[str, type[Heartbeat]] = {
    BROKER: BrokerStatus,
    PROCESSOR: ProcessorStatus,
    DETECTOR: DetectorStatus,
    GENERATOR: GeneratorStatus,
    SHIPPER: ShipperStatus,
    SUPERVISOR: SupervisorStatus,
}

H = TypeVar("H", bound=Heartbeat)


def model_for(component: str) -> type[Heartbeat]:
    return MODELS.get(component, Heartbeat)


def status_path(settings: Settings, component: str) -> Path:
    return settings.run_dir / f"{component}.status.json"


def write(settings: Settings, status: Heartbeat) -> None:
    """Atomically replace ``status.component``'s file (stamps version, pid, heartbeat)."""
    if not status.component:
        raise ValueError("a status needs its component name")
    status.version = STATUS_VERSION
    status.pid = os.getpid()
    status.heartbeat = time.time()
    text = json.dumps(status.model_dump(), default=str)
    atomic_write(status_path(settings, status.component), text)


def write_status(settings: Settings, component: str, **fields: Any) -> None:
    """``write`` of ``component``'s model built from ``fields``.

    A field whose value does not fit the model is left out (and logged): a status must never
    take its component down.
    """
    status = _validate({**fields, "component": component}, model_for(component), logging.WARNING)
    if status is not None:
        write(settings, status)


def parse(data: Any, model: type[H]) -> H | None:
    """``data`` (a decoded status file) as ``model``; None when it is not an object.

    Keys whose values don't validate are dropped (they read as their defaults).
    """
    if not isinstance(data, dict):
        return None
    return _validate({"version": 0, **data}, model, logging.DEBUG)


def _validate(data: dict[str, Any], model: type[H], level: int) -> H | None:
    for _ in range(len(data) + 1):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            bad = {err["loc"][0] for err in exc.errors() if err["loc"]}
            if not bad & set(data):
                return None
            log.log(level, "%s status: leaving out invalid %s: %s", data.get("component"),
                    ", ".join(map(str, sorted(bad, key=str))), exc)
            data = {k: v for k, v in data.items() if k not in bad}
    return None


def read_status(settings: Settings, component: str) -> Heartbeat | None:
    """``component``'s last status as its model (``MODELS``), None without a readable file."""
    return read_as(settings, model_for(component), component)


def read_as(settings: Settings, model: type[H], component: str | None = None) -> H | None:
    """``component``'s (default: the model's component's) last status as ``model``; None
    without a readable file."""
    name = component or model.model_fields["component"].default
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return parse(json.loads(status_path(settings, name).read_text()), model)
    return None


def read_processor(settings: Settings) -> ProcessorStatus | None:
    return read_as(settings, ProcessorStatus)


def read_supervisor(settings: Settings) -> SupervisorStatus | None:
    return read_as(settings, SupervisorStatus)
