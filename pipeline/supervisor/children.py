"""Process supervision: start children in dependency order, restart crashes, stop cleanly.

The :class:`Supervisor` is a small state machine driven by :meth:`Supervisor.poll`; it knows
nothing about Kafka or Spark, only :class:`ChildSpec` (argv, environment, what it needs, an
optional readiness probe). Each child gets a pid file and a log file in ``settings.run_dir``
and runs in its own session, so a Ctrl+C in the terminal reaches only the supervisor, which
then stops the children in reverse order: SIGTERM, a grace period, then SIGKILL for the
child and anything it spawned (the broker's and Spark's JVMs). Those files and the stopping
of a process tree are :mod:`pipeline.supervisor.processes`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psutil

from pipeline.settings import Settings
from pipeline.status import write_status
from pipeline.supervisor.processes import (
    kill_group,
    log_banner,
    log_path,
    log_tail,
    pid_path,
    read_pid_file,
    rotate_log,
    terminate_tree,
    unlink_quietly,
    write_pid_file,
)

log = logging.getLogger(__name__)

SUPERVISOR = "supervisor"


@dataclass(frozen=True)
class ChildSpec:
    """How to run one supervised child process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    #: names of children that must be ``running`` before this one starts
    needs: tuple[str, ...] = ()
    #: probe called while the child is ``starting``; None means ready once spawned
    ready: Callable[[], bool] | None = None
    ready_timeout_s: float = 60.0
    stop_timeout_s: float = 30.0


# -- the supervisor --------------------------------------------------------------------------


@dataclass
class _Child:
    spec: ChildSpec
    wanted: bool = False
    state: str = "stopped"  # stopped | waiting | starting | running | stopping | backoff
    proc: psutil.Process | None = None
    own: bool = False  # spawned by us (we can read its exit code) rather than adopted
    started_at: float | None = None
    ready_deadline: float = 0.0
    next_start_at: float = 0.0
    restarts: int = 0
    crashes: int = 0
    consecutive: int = 0
    last_crash: dict[str, Any] | None = None
    after_crash: bool = False


class Supervisor:
    """Keeps the wanted children running; not thread-safe (one thread drives it)."""

    def __init__(self, settings: Settings, specs: Iterable[ChildSpec]) -> None:
        self.settings = settings
        self.run_dir = settings.run_dir
        self._children: dict[str, _Child] = {s.name: _Child(s) for s in specs}
        self._order = list(self._children)
        self._stopping = False
        self._last_status = 0.0
        orch = settings.orchestrator
        self.backoff_initial_s = orch.backoff_initial_s
        self.backoff_max_s = orch.backoff_max_s
        self.healthy_after_s = orch.healthy_after_s

    # -- what the caller asks for ------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self._order)

    def want(self, names: Iterable[str]) -> None:
        """Start these (when their needs are running); already running ones are left alone."""
        for name in names:
            child = self._child(name)
            if not child.wanted:
                child.wanted = True
                if child.state == "stopped":
                    child.state = "waiting"
                    child.next_start_at = 0.0
                    child.consecutive = 0

    def unwant(self, names: Iterable[str]) -> None:
        """Stop these now, in reverse start order."""
        chosen = [n for n in reversed(self._order) if n in set(names)]
        for name in chosen:
            child = self._child(name)
            child.wanted = False
            self._stop_child(child)

    def set_wanted(self, names: Iterable[str]) -> None:
        names = set(names)
        self.unwant([n for n in self._order if n not in names and self._children[n].wanted])
        self.want([n for n in self._order if n in names])

    def restart(self, names: Iterable[str]) -> None:
        """Stop these (reverse order) and start them again right away (start order)."""
        chosen = [n for n in self._order if n in set(names)]
        for name in reversed(chosen):
            self._stop_child(self._child(name))
        for name in chosen:
            child = self._child(name)
            child.wanted = True
            child.state = "waiting"
            child.next_start_at = 0.0
            child.consecutive = 0
        self.poll()

    def stop_all(self) -> None:
        self._stopping = True
        self.unwant(self._order)
        self._write_status(force=True)

    # -- the loop ----------------------------------------------------------------------------
    def run(
        self,
        stop: threading.Event,
        interval: float = 0.5,
        on_tick: Callable[[Supervisor], None] | None = None,
    ) -> None:
        """Poll until ``stop`` is set, then stop every child; always leaves no child running."""
        try:
            while not stop.is_set():
                try:
                    if on_tick is not None:
                        on_tick(self)
                    self.poll()
                except Exception:  # e.g. a full disk: keep supervising what runs
                    log.exception("supervisor step failed; retrying")
                stop.wait(interval)
        finally:
            self.stop_all()

    def poll(self) -> None:
        """One step: notice exits, finish readiness, start what is due."""
        now = time.time()
        for name in self._order:
            child = self._children[name]
            if child.state in ("starting", "running"):
                code, exited = self._exit_code(child)
                if exited:
                    self._on_crash(child, code, now)
                    continue
            if child.state == "starting":
                self._check_ready(child, now)
            due = child.state in ("waiting", "backoff") and now >= child.next_start_at
            if due and child.wanted and not self._stopping and self._needs_running(child):
                self._spawn(child)
        self._write_status()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per child: state, pid, uptime, restarts, last crash: what ``status`` shows."""
        now = time.time()
        out: dict[str, dict[str, Any]] = {}
        for name in self._order:
            c = self._children[name]
            pid = c.proc.pid if c.proc is not None and c.state in ("starting", "running") else None
            out[name] = {
                "state": c.state,
                "wanted": c.wanted,
                "pid": pid,
                "started_at": c.started_at if pid else None,
                "uptime_s": round(now - c.started_at, 1) if pid and c.started_at else None,
                "restarts": c.restarts,
                "crashes": c.crashes,
                "next_start_at": c.next_start_at if c.state == "backoff" else None,
                "last_crash": c.last_crash,
                "log": str(log_path(self.run_dir, name)),
            }
        return out

    def overall_state(self) -> str:
        wanted = [c for c in self._children.values() if c.wanted]
        if self._stopping:
            return "stopping"
        if not wanted:
            return "idle"
        if all(c.state == "running" for c in wanted):
            return "running"
        if any(c.state == "backoff" for c in wanted):
            return "degraded"
        return "starting"

    # -- internals ---------------------------------------------------------------------------
    def _child(self, name: str) -> _Child:
        try:
            return self._children[name]
        except KeyError:
            known = ", ".join(self._order)
            raise ValueError(f"unknown component {name!r}; known: {known}") from None

    def _needs_running(self, child: _Child) -> bool:
        return all(
            self._children[n].state == "running"
            for n in child.spec.needs
            if n in self._children
        )

    def _spawn(self, child: _Child) -> None:
        spec = child.spec
        self.run_dir.mkdir(parents=True, exist_ok=True)
        pid_file = pid_path(self.run_dir, spec.name)
        existing = read_pid_file(pid_file, spec.argv[1:])
        if existing is not None:
            # Started by an earlier supervisor that died: adopt it instead of duplicating it.
            log.info("%s already running (pid %d); adopting it", spec.name, existing.pid)
            child.proc, child.own = existing, False
            child.started_at = existing.create_time()
        else:
            logfile = log_path(self.run_dir, spec.name)
            rotate_log(logfile)
            handle = logfile.open("ab", buffering=0)
            handle.write(log_banner(f"starting {spec.name}: {' '.join(spec.argv)}"))
            try:
                popen = psutil.Popen(
                    spec.argv,
                    env=spec.env,
                    stdin=subprocess.DEVNULL,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                self._on_crash(child, None, time.time(), error=f"could not start: {exc}")
                return
            finally:
                handle.close()  # the child has its own copy
            child.proc, child.own = popen, True
            child.started_at = time.time()
            write_pid_file(pid_file, popen)
            if child.after_crash:
                child.restarts += 1
                child.after_crash = False
            log.info("started %s (pid %d)", spec.name, popen.pid)
        child.state = "starting"
        child.ready_deadline = time.time() + spec.ready_timeout_s
        self._check_ready(child, time.time())

    def _check_ready(self, child: _Child, now: float) -> None:
        probe = child.spec.ready
        try:
            ready = probe is None or bool(probe())
        except Exception as exc:  # a probe that raises just means "not yet"
            log.debug("%s readiness probe: %s", child.spec.name, exc)
            ready = False
        if ready:
            child.state = "running"
            log.info("%s is ready", child.spec.name)
        elif now >= child.ready_deadline:
            msg = f"not ready after {child.spec.ready_timeout_s:.0f} s"
            log.error("%s %s; restarting it", child.spec.name, msg)
            code = self._terminate(child)
            self._on_crash(child, code, time.time(), error=msg)

    def _exit_code(self, child: _Child) -> tuple[int | None, bool]:
        proc = child.proc
        if proc is None:
            return None, True
        if child.own:
            code = proc.poll()  # type: ignore[attr-defined]
            return code, code is not None
        try:
            gone = not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            gone = True
        return None, gone

    def _on_crash(
        self, child: _Child, code: int | None, now: float, error: str | None = None
    ) -> None:
        spec = child.spec
        uptime = now - child.started_at if child.started_at else 0.0
        if uptime >= self.healthy_after_s:
            child.consecutive = 0
        child.consecutive += 1
        child.crashes += 1
        delay = min(self.backoff_initial_s * 2 ** (child.consecutive - 1), self.backoff_max_s)
        reason = error or _describe_exit(code)
        logfile = log_path(self.run_dir, spec.name)
        child.last_crash = {
            "at": now,
            "exit_code": code,
            "reason": reason,
            "uptime_s": round(uptime, 1),
            "restart_in_s": delay,
            "log_tail": log_tail(logfile, 20),
        }
        msg = f"{spec.name} {reason} after {uptime:.1f} s; restarting in {delay:.1f} s"
        log.error("%s (log: %s)", msg, logfile)
        with contextlib.suppress(OSError), logfile.open("ab") as fh:
            fh.write(log_banner(msg))
        unlink_quietly(pid_path(self.run_dir, spec.name))
        if child.own and child.proc is not None:
            # A crashed child may leave its JVM behind (holding ports and locks): sweep it.
            kill_group(child.proc.pid, spec.stop_timeout_s)
        child.proc = None
        child.started_at = None
        child.state = "backoff"
        child.after_crash = True
        child.next_start_at = now + delay
        self._write_status(force=True)

    def _stop_child(self, child: _Child) -> None:
        if child.state in ("starting", "running") and child.proc is not None:
            child.state = "stopping"
            self._write_status(force=True)
            log.info("stopping %s (pid %d)", child.spec.name, child.proc.pid)
            code = self._terminate(child)
            log.info("%s stopped (%s)", child.spec.name, _describe_exit(code))
            with contextlib.suppress(OSError), log_path(self.run_dir, child.spec.name).open(
                "ab"
            ) as fh:
                fh.write(log_banner(f"stopped {child.spec.name} ({_describe_exit(code)})"))
        child.proc = None
        child.started_at = None
        child.state = "stopped"
        unlink_quietly(pid_path(self.run_dir, child.spec.name))
        self._write_status(force=True)

    def _terminate(self, child: _Child) -> int | None:
        assert child.proc is not None
        return terminate_tree(child.proc, child.spec.stop_timeout_s)

    def _write_status(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_status < 1.0:
            return
        self._last_status = now
        try:
            write_status(
                self.settings, SUPERVISOR, state=self.overall_state(), components=self.snapshot()
            )
        except OSError as exc:  # a full disk must not kill the supervisor
            log.warning("cannot write supervisor status: %s", exc)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "exited"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"
