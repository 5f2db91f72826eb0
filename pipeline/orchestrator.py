"""``lakewatch pipeline start|stop|status|restart [component...]``: run the whole pipeline.

``start`` leaves a detached supervisor process running (``lakewatch pipeline supervise``) that
starts the components in dependency order (broker -> processor -> detector -> generator),
restarts crashed ones with exponential backoff and stops them in reverse order on SIGTERM.
``lakewatch --start-pipeline`` runs the same supervisor in the foreground
(:func:`run_foreground`). The CLI talks to a running supervisor through two files in
``settings.run_dir``: its pid file (``stop`` sends SIGTERM) and ``pipeline.control.json``
(which components it should run; ``start``/``stop``/``restart`` of single components).

The original project's ``python -m pipeline.orchestrator --action start|stop|status`` works too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import psutil

from pipeline import components as comps
from pipeline.components import component_argv  # noqa: F401 - re-exported for callers
from pipeline.settings import Settings
from pipeline.status import read_status
from pipeline.supervisor import (
    SUPERVISOR,
    ChildSpec,
    Supervisor,
    log_path,
    pid_path,
    read_pid_file,
    terminate_tree,
    write_pid_file,
)

log = logging.getLogger(__name__)

ACTIONS = ("start", "stop", "status", "restart", "supervise")
CONTROL_FILE = "pipeline.control.json"
_POLL_S = 0.25
#: a running component whose heartbeat is older than this shows as "stale"
STALE_HEARTBEAT_S = 60.0


# -- building the children -------------------------------------------------------------------


def child_env(settings: Settings) -> dict[str, str]:
    """This process's environment minus any LAKEWATCH_* of its own, plus ``settings``' config.

    Dropping inherited LAKEWATCH_* variables matters: a value overridden on our command line
    back to its default would otherwise reach the child from the old variable.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEWATCH_")}
    env.update(settings.to_env())
    env["PYTHONUNBUFFERED"] = "1"
    return env


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
    path = settings.run_dir / CONTROL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
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
        from pipeline.status import write_status

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
    stop = threading.Event()
    restore = _install_stop_handlers(stop)
    try:
        return supervise(settings, names, stop)
    finally:
        restore()


def _install_stop_handlers(stop: threading.Event) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    sigs = [signal.SIGTERM, signal.SIGINT] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    old = {s: signal.getsignal(s) for s in sigs}

    def handler(signum: int, frame: object) -> None:
        log.info("received %s; stopping the pipeline", signal.Signals(signum).name)
        stop.set()

    for s in sigs:
        signal.signal(s, handler)

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return restore


# -- the CLI actions -------------------------------------------------------------------------


def start(settings: Settings, names: list[str] | None = None, timeout: float | None = None) -> int:
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
    print(format_table(status(settings)))
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
            argv, env=child_env(settings), stdin=subprocess.DEVNULL, stdout=out,
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
        st = read_status(settings, SUPERVISOR) or {}
        fresh = sup is not None and st.get("pid") == sup.pid and st.get("heartbeat", 0) >= t0 - 1
        rows = st.get("components", {}) if fresh else {}
        if rows and all(rows.get(n, {}).get("state") == "running" for n in names):
            return True
        for n in names:
            crash = rows.get(n, {}).get("last_crash")
            if crash and crash.get("at", 0) >= t0:
                print(f"lakewatch: {n} {crash['reason']}; the supervisor keeps restarting it "
                      f"(log: {log_path(settings.run_dir, n)})", file=sys.stderr)
                for line in crash.get("log_tail", [])[-10:]:
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
        st = read_status(settings, SUPERVISOR) or {}
        rows = st.get("components", {})
        if st.get("pid") == sup.pid and all(
            rows.get(n, {}).get("state", "stopped") == "stopped" for n in names
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


def restart(settings: Settings, names: list[str] | None = None) -> int:
    """Restart everything (stop, start) or just the named components."""
    if not names:
        stop(settings)
        return start(settings)
    needed = comps.resolve(names, settings)  # the named ones plus what they need
    targets = restart_targets(names, settings)
    if not targets:
        print(f"nothing to restart: {', '.join(names)} not run in this configuration")
        return 0
    sup = running_supervisor(settings)
    if sup is None:
        return start(settings, names)
    t0 = time.time()
    current = read_control(settings).get("want", [])
    want = [n for n in comps.ORDER if n in {*current, *needed}]
    write_control(settings, want, restart=targets)
    print(f"asking the supervisor (pid {sup.pid}) to restart {', '.join(targets)}")
    # wait for the restart to have happened: each target running with a new start time
    deadline = time.monotonic() + 60.0 + settings.broker.ready_timeout_s
    while time.monotonic() < deadline:
        rows = (read_status(settings, SUPERVISOR) or {}).get("components", {})
        if all(
            rows.get(n, {}).get("state") == "running"
            and (rows.get(n, {}).get("started_at") or 0) >= t0
            for n in targets
        ):
            print(format_table(status(settings)))
            return 0
        time.sleep(_POLL_S)
    print("lakewatch: restart timed out", file=sys.stderr)
    return 1


# -- status ----------------------------------------------------------------------------------

#: heartbeat keys the components write (first present wins)
_EPS_KEYS = ("events_per_s", "input_rows_per_s", "rate")
_LAG_KEYS = ("lag", "kafka_lag", "consumer_lag")
_COMMIT_KEYS = ("last_commit_ts", "last_delta_commit_ts", "last_commit")


def status(settings: Settings) -> dict[str, Any]:
    """Everything ``lakewatch pipeline status`` shows, as a JSON-ready dict."""
    now = time.time()
    sup = running_supervisor(settings)
    sup_status = read_status(settings, SUPERVISOR) or {}
    rows = sup_status.get("components", {}) if sup and sup_status.get("pid") == sup.pid else {}
    out: dict[str, Any] = {
        "supervisor": {
            "running": sup is not None,
            "pid": sup.pid if sup else None,
            "state": sup_status.get("state") if sup else "stopped",
            "log": str(log_path(settings.run_dir, SUPERVISOR)),
        },
        "attached": settings.attached,
        "bootstrap_servers": settings.bootstrap_servers,
        "components": {},
    }
    for spec in build_specs(settings):
        proc = read_pid_file(pid_path(settings.run_dir, spec.name), spec.argv[1:])
        row = rows.get(spec.name, {})
        hb = read_status(settings, spec.name) or {}
        if proc is None or hb.get("pid") not in (proc.pid, None):
            # a heartbeat of an earlier run (or of a process the pid file doesn't name)
            hb_current = proc is not None and _is_descendant(hb.get("pid"), proc)
            hb = hb if hb_current else {"heartbeat": hb.get("heartbeat"),
                                        "last_error": hb.get("last_error")}
        crash = row.get("last_crash")
        started = proc.create_time() if proc else None
        last_error = hb.get("last_error") or (crash or {}).get("reason")
        hb_age = _age(now, hb.get("heartbeat"))
        state = row.get("state") or ("running" if proc else "stopped")
        if state == "running" and hb_age is not None and hb_age > STALE_HEARTBEAT_S:
            state = "stale"  # alive but not reporting: wedged, or stuck in a long batch
        out["components"][spec.name] = {
            "running": proc is not None,
            "state": state,
            "pid": proc.pid if proc else None,
            "uptime_s": round(now - started, 1) if started else None,
            "last_heartbeat_age_s": hb_age,
            "events_per_s": _first(hb, _EPS_KEYS),
            "kafka_lag": _first(hb, _LAG_KEYS),
            "last_commit_age_s": _age(now, _first(hb, _COMMIT_KEYS)),
            "restarts": row.get("restarts", 0),
            "last_crash": crash,
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


def _first(d: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def _age(now: float, ts: Any) -> float | None:
    if isinstance(ts, int | float):
        return round(max(0.0, now - ts), 1)
    if isinstance(ts, str):  # ISO timestamps from Spark progress
        from datetime import datetime

        with contextlib.suppress(ValueError):
            return round(max(0.0, now - datetime.fromisoformat(ts.replace("Z", "+00:00"))
                             .timestamp()), 1)
    return None


def format_table(st: dict[str, Any]) -> str:
    """The status as an aligned text table."""
    sup = st["supervisor"]
    head = (f"supervisor: {sup['state'] or 'unknown'} (pid {sup['pid']})" if sup["running"]
            else "supervisor: not running")
    head += f"   kafka: {st['bootstrap_servers']}{' (attached)' if st['attached'] else ''}"
    cols = ["component", "state", "pid", "uptime", "heartbeat", "events/s", "lag",
            "last commit", "restarts", "last error"]
    lines = []
    for name, r in st["components"].items():
        lines.append([
            name, r["state"], str(r["pid"] or "-"), _dur(r["uptime_s"]),
            _dur(r["last_heartbeat_age_s"], suffix=" ago"), _num(r["events_per_s"]),
            _num(r["kafka_lag"]), _dur(r["last_commit_age_s"], suffix=" ago"),
            str(r["restarts"]), _clip(r["last_error"]),
        ])
    widths = [max(len(c), *(len(row[i]) for row in lines)) if lines else len(c)
              for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    body = [fmt.format(*cols)] + [fmt.format(*row) for row in lines]
    return "\n".join([head, *(b.rstrip() for b in body)])


def _dur(seconds: float | None, suffix: str = "") -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        text = f"{seconds:.0f}s" if s < 10 else f"{s}s"
    elif s < 3600:
        text = f"{s // 60}m{s % 60:02d}s"
    else:
        text = f"{s // 3600}h{s % 3600 // 60:02d}m"
    return text + suffix


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _clip(text: Any, width: int = 60) -> str:
    if not text:
        return "-"
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _tail_text(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


# -- command line ----------------------------------------------------------------------------


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=ACTIONS,
                        help="start | stop | status | restart (supervise: internal)")
    parser.add_argument("components", nargs="*", metavar="COMPONENT",
                        help=f"some of {', '.join(comps.ORDER)} (default: the whole pipeline)")
    parser.add_argument("--action", dest="action_opt", choices=ACTIONS[:4],
                        help="same as the positional action (the original project's CLI)")
    parser.add_argument("--json", action="store_true", help="status as JSON")
    parser.add_argument("--foreground", action="store_true",
                        help="start: run the supervisor in this terminal until Ctrl+C")
    parser.add_argument("--detach", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace, settings: Settings) -> int:
    action = args.action or args.action_opt
    if action is None:
        print("lakewatch pipeline: choose start, stop, status or restart", file=sys.stderr)
        return 2
    names = list(args.components or [])
    try:
        if names:
            comps.resolve(names, settings)  # unknown names: a clear error before anything runs
        if action == "start":
            return run_foreground(settings, names) if args.foreground else start(settings, names)
        if action == "stop":
            return stop(settings, names)
        if action == "restart":
            return restart(settings, names)
        if action == "status":
            st = status(settings)
            print(json.dumps(st, indent=2, default=str) if args.json else format_table(st))
            return 0 if st["supervisor"]["running"] else 3
        return _supervise_main(settings, names, detach=args.detach)
    except ValueError as exc:
        print(f"lakewatch pipeline: {exc}", file=sys.stderr)
        return 2


def _supervise_main(settings: Settings, names: list[str], detach: bool) -> int:
    # Double fork: the starter reaps the intermediate at once, so the daemon is nobody's
    # child (no zombie in a long-lived starter such as the desktop app).
    if detach and hasattr(os, "fork") and os.fork() > 0:
        os._exit(0)
    return run_foreground(settings, names or None)


if __name__ == "__main__":
    from pipeline.commands.main import run_module

    raise SystemExit(run_module(sys.modules[__name__]))
