"""The supervisor process of ``lakewatch pipeline``: the components as children, run until told
to stop.

:func:`supervise` runs a :class:`~pipeline.supervisor.children.Supervisor` over
:func:`build_specs` (broker -> processor -> detector -> generator) in this process, holding an
exclusive lock and a pid file in ``settings.run_dir`` so there is only ever one per run dir.
``lakewatch pipeline start`` leaves it running detached (``lakewatch pipeline supervise``);
``lakewatch --start-pipeline`` runs it in the foreground (:func:`run_foreground`). While it
runs it obeys ``pipeline.control.json`` (:func:`write_control`): which components to run and
which to restart now.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import psutil

from pipeline import components as comps
from pipeline.components import child_env
from pipeline.files import atomic_write
from pipeline.settings import Settings
from pipeline.signals import STOP_SIGNALS_AND_HUP, stop_on_signals
from pipeline.status import write_status
from pipeline.supervisor.children import SUPERVISOR, ChildSpec, Supervisor
from pipeline.supervisor.processes import pid_path, read_pid_file, write_pid_file

log = logging.getLogger(__name__)

CONTROL_FILE = "pipeline.control.json"


# -- building the children -------------------------------------------------------------------


def kafka_ready(settings: Settings, timeout: float = 2.0) -> bool:
    """True when Kafka answers a metadata request with at least one broker."""
    from confluent_kafka.admin import AdminClient

    from pipeline.kafka_config import admin_config

    conf = {**admin_config(settings), "socket.timeout.ms": int(timeout * 1000), "log_level": 0}
    try:
        md = AdminClient(conf).list_topics(timeout=timeout)
    except Exception:  # KafkaException: not reachable (yet)
        return False
    return bool(md.brokers)


def build_specs(settings: Settings) -> list[ChildSpec]:
    """One ChildSpec per component this configuration can run, in start order."""
    env = child_env(settings)
    orch = settings.orchestrator
    specs = []
    for name in comps.resolve(list(comps.ORDER), settings):
        needs = tuple(n for n in comps.COMPONENTS[name].needs)
        ready = None
        ready_timeout = 60.0
        stop_timeout = orch.stop_timeout_s
        if name == comps.BROKER:
            ready = _probe(settings)
            ready_timeout = settings.broker.ready_timeout_s + 30.0  # JVM start + formatting
            # the wrapper itself waits broker.stop_timeout_s for the JVM before killing it
            stop_timeout = max(stop_timeout, settings.broker.stop_timeout_s + 15.0)
        specs.append(
            ChildSpec(
                name=name,
                argv=comps.component_argv(name, settings),
                env=env,
                needs=needs,
                ready=ready,
                ready_timeout_s=ready_timeout,
                stop_timeout_s=stop_timeout,
            )
        )
    return specs


def _probe(settings: Settings) -> Callable[[], bool]:
    def ready() -> bool:
        return kafka_ready(settings, timeout=1.0)

    return ready


# -- the supervisor process ------------------------------------------------------------------


def running_supervisor(settings: Settings) -> psutil.Process | None:
    """The live supervisor of this run dir (daemon or foreground), or None."""
    return read_pid_file(pid_path(settings.run_dir, SUPERVISOR))


def read_control(settings: Settings) -> dict[str, Any]:
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        return json.loads((settings.run_dir / CONTROL_FILE).read_text())
    return {"want": [], "restart": [], "seq": 0}


def write_control(
    settings: Settings, want: list[str], restart: list[str] | None = None
) -> dict[str, Any]:
    """Tell the supervisor which components to run (and which to restart now)."""
    current = read_control(settings)
    data = {"want": want, "restart": restart or [], "seq": int(current.get("seq", 0)) + 1}
    atomic_write(settings.run_dir / CONTROL_FILE, json.dumps(data))
    return data


class _ControlWatcher:
    """Applies ``pipeline.control.json`` changes to a Supervisor on each tick."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.seq = read_control(settings).get("seq", 0)

    def __call__(self, sup: Supervisor) -> None:
        data = read_control(self.settings)
        if data.get("seq", 0) == self.seq:
            return
        self.seq = data.get("seq", 0)
        known = set(sup.names)
        want = [n for n in data.get("want", []) if n in known]
        log.info("control: run %s, restart %s", want, data.get("restart") or "nothing")
        sup.set_wanted(want)
        restart = [n for n in data.get("restart", []) if n in known]
        if restart:
            sup.restart(restart)


def supervise(settings: Settings, names: list[str], stop: threading.Event) -> int:
    """Run the supervisor in this process until ``stop`` is set; 1 if one already runs."""
    run_dir = settings.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock(run_dir / "supervisor.lock")
    if lock is None:
        other = running_supervisor(settings)
        print(
            f"lakewatch: a pipeline supervisor is already running"
            f"{f' (pid {other.pid})' if other else ''}; nothing started",
            file=sys.stderr,
        )
        return 1
    me = psutil.Process()
    write_pid_file(pid_path(run_dir, SUPERVISOR), me)
    write_control(settings, names)
    sup = Supervisor(settings, build_specs(settings))
    sup.want(names)
    log.info("supervisor %d running %s", me.pid, ", ".join(names) or "nothing")
    try:
        sup.run(stop, on_tick=_ControlWatcher(settings))
    finally:
        with contextlib.suppress(OSError):
            write_status(settings, SUPERVISOR, state="stopped", components=sup.snapshot())
        with contextlib.suppress(FileNotFoundError):
            pid_path(run_dir, SUPERVISOR).unlink()
        lock.close()
        log.info("supervisor %d stopped", me.pid)
    return 0


def _lock(path: Path) -> TextIO | None:
    """An exclusive lock held for the supervisor's lifetime: two supervisors can't race."""
    fh = path.open("a+")
    try:
        import fcntl
    except ImportError:  # Windows: the pid file check is all we have
        return fh
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    return fh


def run_foreground(settings: Settings, names: list[str] | None = None) -> int:
    """The headless pipeline in this process until Ctrl+C or SIGTERM; children stop cleanly."""
    names = comps.resolve(names, settings) if names else comps.default_components(settings)
    with stop_on_signals(STOP_SIGNALS_AND_HUP, on_signal=_log_stop_signal) as stop:
        return supervise(settings, names, stop)


def _log_stop_signal(signum: int) -> None:
    log.info("received %s; stopping the pipeline", signal.Signals(signum).name)
