"""Pure health rules: turn facts (process state, heartbeat files, Delta commit times, lag
samples; lag and freshness themselves come from ``pipeline.freshness``) into a green / amber /
red / off verdict with a reason a person can act on.

No Qt and no I/O here except where named (``probe_tcp``, ``pid_alive``);
the health worker gathers the facts on its own thread and the panel only paints verdicts.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psutil

from pipeline.status import STOPPED_STATES, Heartbeat, ProcessorStatus

State = Literal["green", "amber", "red", "off"]

#: heartbeat older than this turns amber, older than 3x turns red
HEARTBEAT_STALE_S = 15.0
#: a component may take this long to write its first heartbeat (Spark start-up is slow)
STARTUP_GRACE_S = 90.0


@dataclass(frozen=True)
class Verdict:
    state: State
    reason: str


@dataclass(frozen=True)
class ProcessFacts:
    """What the app knows about a component process it may or may not have started."""

    owned: bool = False          # started by this app
    running: bool = False        # owned and still running
    started_at: float | None = None
    exit_reason: str | None = None  # owned and ended: why
    stop_requested: bool = False


def pid_alive(pid: Any) -> bool:
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        proc = psutil.Process(pid)
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def probe_tcp(bootstrap_servers: str, timeout_s: float = 0.5) -> tuple[bool, str]:
    """Can we open a TCP connection to any bootstrap server? (reason names the failure)"""
    errors = []
    for server in (s.strip() for s in bootstrap_servers.split(",") if s.strip()):
        host, _, port = server.rpartition(":")
        host = host.strip("[]") or "localhost"
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_s):
                return True, f"{server} accepts connections"
        except (OSError, ValueError) as exc:
            errors.append(f"{server}: {exc}")
    return False, "; ".join(errors) or "no bootstrap servers configured"


def component_verdict(
    name: str,
    facts: ProcessFacts,
    status: Heartbeat | None,
    now: float,
    stale_s: float = HEARTBEAT_STALE_S,
    alive: bool | None = None,
) -> Verdict:
    """A long-running component (generator, processor, detector) from process + heartbeat.

    ``alive``: whether the heartbeat's pid runs (checked here when None).
    """
    if facts.owned and not facts.running:
        if facts.stop_requested or facts.exit_reason is None:
            return Verdict("off", f"{name} stopped")
        return Verdict("red", f"{name} died: {facts.exit_reason}")
    age = status.age_s(now) if status is not None else None
    external = not facts.owned
    if external:
        if status is None:
            return Verdict("off", f"{name} not running")
        if status.state in STOPPED_STATES:
            return Verdict("off", f"{name} stopped")
        if not (alive if alive is not None else pid_alive(status.pid)):
            return Verdict("red", f"{name} (pid {status.pid}) is not running; "
                                  f"last heartbeat {age:.0f} s ago" if age is not None else
                                  f"{name} (pid {status.pid}) is not running")
    where = "" if facts.owned else " (started outside the app)"
    if status is not None and status.state == "failed":
        return Verdict("red", f"{name}{where} failed: {status.last_error or 'no reason'}")
    if isinstance(status, ProcessorStatus) and status.data_loss:
        return Verdict("red", f"{name}{where}: Kafka data was deleted before it was processed")
    if status is None or age is None or (facts.started_at
                                         and (status.heartbeat or 0.0) < facts.started_at):
        since = now - (facts.started_at or now)
        if since <= STARTUP_GRACE_S:
            return Verdict("amber", f"{name} starting ({since:.0f} s), no heartbeat yet")
        return Verdict("red", f"{name} wrote no heartbeat in {since:.0f} s")
    error = status.last_error
    if age > 3 * stale_s:
        return Verdict("red", f"{name}{where}: no heartbeat for {age:.0f} s (wedged?)")
    if age > stale_s:
        return Verdict("amber", f"{name}{where}: heartbeat {age:.0f} s old")
    if error:
        return Verdict("amber", f"{name}{where}: last error: {str(error)[:200]}")
    return Verdict("green", f"{name}{where} running; heartbeat {age:.0f} s ago"
                   + _detail(status))


def _detail(status: Heartbeat) -> str:
    bits = []
    for key in ("events_per_s", "batch_id", "lag"):
        value = getattr(status, key, None)
        if value is not None:
            bits.append(f"{key}={value:.0f}" if isinstance(value, float) else f"{key}={value}")
    return ("; " + ", ".join(bits)) if bits else ""


def broker_verdict(attached: bool, facts: ProcessFacts, reachable: bool, probe: str) -> Verdict:
    if facts.owned and not facts.running and not facts.stop_requested and facts.exit_reason:
        return Verdict("red", f"broker died: {facts.exit_reason}")
    if reachable:
        kind = "external cluster" if attached else "embedded broker"
        return Verdict("green", f"{kind}: {probe}")
    if facts.owned and facts.running:
        return Verdict("amber", f"broker starting: {probe}")
    if attached:
        return Verdict("red", f"external Kafka unreachable: {probe}")
    return Verdict("off", f"broker not running ({probe})")


def freshness_verdict(commit_age_s: float | None, processor_running: bool,
                      trigger_s: float = 2.0) -> Verdict:
    if commit_age_s is None:
        return Verdict("amber" if processor_running else "off", "no Delta logs table yet")
    green_s = max(30.0, 5 * trigger_s)
    text = f"last Delta commit {commit_age_s:.0f} s ago"
    if commit_age_s <= green_s:
        return Verdict("green", text)
    if commit_age_s <= 4 * green_s or not processor_running:
        return Verdict("amber", text + ("" if processor_running else " (processor not running)"))
    return Verdict("red", text + " while the processor runs: is it stuck?")


def lag_verdict(samples: Sequence[tuple[float, float]], red_lag: float = 1_000_000) -> Verdict:
    """Consumer lag from (time, lag) samples: level and trend over the last minute."""
    if not samples:
        return Verdict("off", "no consumer lag reported yet")
    now, lag = samples[-1]
    recent = [(t, v) for t, v in samples if t >= now - 60]
    rising = len(recent) >= 3 and all(b[1] > a[1] for a, b in zip(recent, recent[1:], strict=False))
    text = f"lag {lag:,.0f} messages"
    if lag >= red_lag:
        return Verdict("red", text + f" (>= {red_lag:,.0f})")
    if rising and recent[-1][0] - recent[0][0] >= 60 * 0.8 and lag > 10_000:
        return Verdict("red", text + ", rising for a minute: the processor is falling behind")
    if rising:
        return Verdict("amber", text + ", rising")
    return Verdict("green", text + ("" if lag else " (caught up)"))
