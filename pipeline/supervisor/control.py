"""``start``, ``stop``, ``restart`` and ``status`` of the pipeline from outside its supervisor.

The functions here talk to a running supervisor (:mod:`pipeline.supervisor.daemon`) through
two files in ``settings.run_dir``: its pid file (``stop`` sends SIGTERM) and
``pipeline.control.json`` (which components it should run; ``start``/``stop``/``restart`` of
single components). ``start`` spawns a detached supervisor when none runs; ``stop`` sweeps
components a killed supervisor left behind; :func:`status` reads the heartbeat files.
They report progress on stdout and failures on stderr and return an exit code;
``show_status``, when given, is called with :func:`status` where the command shows the table.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from pipeline import components as comps
from pipeline.freshness import processor_lag
from pipeline.settings import Settings
from pipeline.status import (
    Heartbeat,
    ProcessorStatus,
    ProducerStatus,
    read_status,
    read_supervisor,
)
from pipeline.supervisor.children import SUPERVISOR
from pipeline.supervisor.daemon import (
    CONTROL_FILE,
    build_specs,
    read_control,
    running_supervisor,
    write_control,
)
from pipeline.supervisor.processes import log_path, pid_path, read_pid_file, terminate_tree

_POLL_S = 0.25
#: a running component whose heartbeat is older than this shows as "stale"
STALE_HEARTBEAT_S = 60.0

ShowStatus = Callable[[dict[str, Any]], None]


# -- the actions -----------------------------------------------------------------------------


def start(settings: Settings, names: list[str] | None = None, timeout: float | None = None,
          show_status: ShowStatus | None = None) -> int:
    """Start the pipeline (or the named components) under a detached supervisor.

    Returns when they are running (0) or one failed to start or crashed (1). A second start
    starts nothing that already runs.
    """
    targets = comps.resolve(names, settings) if names else comps.default_components(settings)
    if timeout is None:
        timeout = 60.0 + (settings.broker.ready_timeout_s if comps.BROKER in targets else 0.0)
    sup = running_supervisor(settings)
    t0 = time.time()
    if sup is not None:
        current = read_control(settings).get("want", [])
        missing = [n for n in targets if n not in current]
        if not missing:
            print(f"pipeline already running (supervisor pid {sup.pid}): "
                  f"{', '.join(current)}; nothing started")
        else:
            write_control(settings, [n for n in comps.ORDER if n in {*current, *targets}])
            print(f"asking the supervisor (pid {sup.pid}) to start {', '.join(missing)}")
    else:
        logfile = log_path(settings.run_dir, SUPERVISOR)
        if not _spawn_daemon(settings, targets):
            print(f"lakewatch: the supervisor failed to start; its log ({logfile}):\n"
                  f"{_tail_text(logfile)}", file=sys.stderr)
            return 1
        print(f"started the pipeline supervisor; log: {logfile}")
    ok = _wait_running(settings, targets, t0, timeout)
    if show_status is not None:
        show_status(status(settings))
    return 0 if ok else 1


def _spawn_daemon(settings: Settings, names: list[str]) -> bool:
    """Start the detached supervisor; False if it failed before detaching."""
    run_dir = settings.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (run_dir / CONTROL_FILE).unlink()
    logfile = log_path(run_dir, SUPERVISOR)
    argv = [*comps.supervisor_argv(), *names, "--detach"]
    with logfile.open("ab") as out:
        kwargs: dict[str, Any] = {}
        if os.name == "nt":  # pragma: no cover - no fork there
            flags = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]  # noqa: E501
            kwargs["creationflags"] = flags
        else:
            kwargs["start_new_session"] = True
        proc = subprocess.Popen(
            argv, env=comps.child_env(settings), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, close_fds=True, **kwargs,
        )
    if os.name != "nt":
        # the intermediate process exits as soon as it has forked the daemon
        try:
            return proc.wait(60) == 0
        except subprocess.TimeoutExpired:
            return True
    return True


def _wait_running(settings: Settings, names: list[str], t0: float, timeout: float) -> bool:
    """Wait for the supervisor to report ``names`` running; print why not otherwise."""
    deadline = time.monotonic() + timeout
    seen_supervisor = False
    while time.monotonic() < deadline:
        sup = running_supervisor(settings)
        seen_supervisor = seen_supervisor or sup is not None
        st = read_supervisor(settings)
        fresh = (sup is not None and st is not None and st.pid == sup.pid
                 and (st.heartbeat or 0) >= t0 - 1)
        rows = st.components if st is not None and fresh else {}
        if rows and all(n in rows and rows[n].state == "running" for n in names):
            return True
        for n in names:
            crash = rows[n].last_crash if n in rows else None
            if crash and (crash.at or 0) >= t0:
                print(f"lakewatch: {n} {crash.reason}; the supervisor keeps restarting it "
                      f"(log: {log_path(settings.run_dir, n)})", file=sys.stderr)
                for line in crash.log_tail[-10:]:
                    print(f"  | {line}", file=sys.stderr)
                return False
        if sup is None and (seen_supervisor or time.monotonic() - deadline + timeout > 15):
            print("lakewatch: the supervisor is not running; its log:", file=sys.stderr)
            print(_tail_text(log_path(settings.run_dir, SUPERVISOR)), file=sys.stderr)
            return False
        time.sleep(_POLL_S)
    print(f"lakewatch: not all of {', '.join(names)} running after {timeout:.0f} s",
          file=sys.stderr)
    return False


def stop_targets(names: list[str], settings: Settings) -> list[str]:
    """What ``stop NAMES`` stops: the names and what needs them, never what they need
    (stopping the processor leaves the broker running)."""
    applicable = comps.resolve(list(comps.ORDER), settings)
    return [n for n in comps.dependents(names) if n in applicable]


def restart_targets(names: list[str], settings: Settings) -> list[str]:
    """What ``restart NAMES`` restarts: only the names (a detector hosted by the processor
    means the processor)."""
    targets = [n for n in comps.resolve(names, settings) if n in names]
    if not targets and comps.DETECTOR in names and settings.detector.in_processor:
        targets = [comps.PROCESSOR]
    return targets


def stop(settings: Settings, names: list[str] | None = None, timeout: float | None = None) -> int:
    """Stop the pipeline (or the named components and what needs them), reverse order."""
    sup = running_supervisor(settings)
    if names:
        targets = stop_targets(names, settings)
        if sup is not None:
            current = read_control(settings).get("want", [])
            affected = [n for n in targets if n in current]
            if not affected:
                print(f"nothing to stop: {', '.join(names)} not running under the supervisor")
                return 0
            write_control(settings, [n for n in current if n not in targets])
            ok = _wait_stopped(settings, affected, sup, timeout or 120.0)
            print(f"stopped {', '.join(affected)}" if ok else "lakewatch: stop timed out")
            return 0 if ok else 1
        stopped = _sweep(settings, targets)
        print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")
        return 0
    if sup is not None:
        grace = timeout or sum(s.stop_timeout_s + 5 for s in build_specs(settings)) + 10
        print(f"stopping the pipeline (supervisor pid {sup.pid})...")
        terminate_tree(sup, grace)
    stopped = _sweep(settings, list(comps.ORDER))
    if stopped:
        print(f"stopped leftover {', '.join(stopped)}")
    print("pipeline stopped" if sup is not None or stopped else "pipeline was not running")
    return 0


def _wait_stopped(
    settings: Settings, names: list[str], sup: psutil.Process, timeout: float
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = read_supervisor(settings)
        rows = st.components if st is not None else {}
        if st is not None and st.pid == sup.pid and all(
            (rows[n].state if n in rows else "stopped") == "stopped" for n in names
        ):
            return True
        if not sup.is_running():
            return True
        time.sleep(_POLL_S)
    return False


def _sweep(settings: Settings, names: list[str]) -> list[str]:
    """Stop components left without a supervisor (it was killed), found by pid file."""
    stopped = []
    specs = {s.name: s for s in build_specs(settings)}
    for name in reversed(comps.ORDER):
        spec = specs.get(name)
        if name not in names or spec is None:
            continue
        proc = read_pid_file(pid_path(settings.run_dir, name), spec.argv[1:])
        if proc is not None:
            terminate_tree(proc, spec.stop_timeout_s)
            stopped.append(name)
        with contextlib.suppress(FileNotFoundError):
            pid_path(settings.run_dir, name).unlink()
    return stopped


def restart(settings: Settings, names: list[str] | None = None,
            show_status: ShowStatus | None = None) -> int:
    """Restart everything (stop, start) or just the named components."""
    if not names:
        stop(settings)
        return start(settings, show_status=show_status)
    needed = comps.resolve(names, settings)  # the named ones plus what they need
    targets = restart_targets(names, settings)
    if not targets:
        print(f"nothing to restart: {', '.join(names)} not run in this configuration")
        return 0
    sup = running_supervisor(settings)
    if sup is None:
        return start(settings, names, show_status=show_status)
    t0 = time.time()
    current = read_control(settings).get("want", [])
    want = [n for n in comps.ORDER if n in {*current, *needed}]
    write_control(settings, want, restart=targets)
    print(f"asking the supervisor (pid {sup.pid}) to restart {', '.join(targets)}")
    # wait for the restart to have happened: each target running with a new start time
    deadline = time.monotonic() + 60.0 + settings.broker.ready_timeout_s
    while time.monotonic() < deadline:
        st = read_supervisor(settings)
        rows = st.components if st is not None else {}
        if all(
            n in rows and rows[n].state == "running" and (rows[n].started_at or 0) >= t0
            for n in targets
        ):
            if show_status is not None:
                show_status(status(settings))
            return 0
        time.sleep(_POLL_S)
    print("lakewatch: restart timed out", file=sys.stderr)
    return 1


# -- status ----------------------------------------------------------------------------------

def status(settings: Settings) -> dict[str, Any]:
    """Everything ``lakewatch pipeline status`` shows, as a JSON-ready dict."""
    now = time.time()
    sup = running_supervisor(settings)
    sup_status = read_supervisor(settings)
    rows = (sup_status.components
            if sup and sup_status is not None and sup_status.pid == sup.pid else {})
    out: dict[str, Any] = {
        "supervisor": {
            "running": sup is not None,
            "pid": sup.pid if sup else None,
            "state": (sup_status.state if sup_status is not None else None) if sup else "stopped",
            "log": str(log_path(settings.run_dir, SUPERVISOR)),
        },
        "attached": settings.attached,
        "bootstrap_servers": settings.bootstrap_servers,
        "components": {},
    }
    for spec in build_specs(settings):
        proc = read_pid_file(pid_path(settings.run_dir, spec.name), spec.argv[1:])
        row = rows.get(spec.name)
        hb = read_status(settings, spec.name)
        # a heartbeat of an earlier run (or of a process the pid file doesn't name) only
        # tells when it was written and its last error
        current = hb is not None and proc is not None and (
            hb.pid in (proc.pid, None) or _is_descendant(hb.pid, proc))
        crash = row.last_crash if row is not None else None
        started = proc.create_time() if proc else None
        last_error = (hb.last_error if hb is not None else None) or (crash.reason if crash
                                                                       else None)
        hb_age = _age(now, hb.heartbeat if hb is not None else None)
        state = row.state if row is not None else ("running" if proc else "stopped")
        if state == "running" and hb_age is not None and hb_age > STALE_HEARTBEAT_S:
            state = "stale"  # alive but not reporting: wedged, or stuck in a long batch
        out["components"][spec.name] = {
            "running": proc is not None,
            "state": state,
            "pid": proc.pid if proc else None,
            "uptime_s": round(now - started, 1) if started else None,
            "last_heartbeat_age_s": hb_age,
            "events_per_s": _events_per_s(hb) if current else None,
            "kafka_lag": processor_lag(hb) if current else None,
            "last_commit_age_s": _age(now, hb.last_commit_ts) if current
            and isinstance(hb, ProcessorStatus) else None,
            "restarts": row.restarts if row is not None else 0,
            "last_crash": crash.model_dump() if crash is not None else None,
            "last_error": last_error,
            "log": str(log_path(settings.run_dir, spec.name)),
        }
    return out


def _is_descendant(pid: Any, proc: psutil.Process) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        return any(c.pid == pid for c in proc.children(recursive=True))
    except psutil.Error:
        return False


def _events_per_s(hb: Heartbeat | None) -> float | None:
    if isinstance(hb, ProcessorStatus):
        return hb.events_per_s if hb.events_per_s is not None else hb.input_rows_per_s
    return hb.events_per_s if isinstance(hb, ProducerStatus) else None


def _age(now: float, ts: Any) -> float | None:
    if isinstance(ts, int | float):
        return round(max(0.0, now - ts), 1)
    if isinstance(ts, str):  # ISO timestamps from Spark progress
        from datetime import datetime

        with contextlib.suppress(ValueError):
            return round(max(0.0, now - datetime.fromisoformat(ts.replace("Z", "+00:00"))
                             .timestamp()), 1)
    return None


def _tail_text(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"
