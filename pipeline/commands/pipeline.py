"""``lakewatch pipeline start|stop|status|restart [component...]``: run the whole pipeline.

``start`` leaves a detached supervisor process running (``lakewatch pipeline supervise``) that
starts the components in dependency order (broker -> processor -> detector -> generator),
restarts crashed ones with exponential backoff and stops them in reverse order on SIGTERM.
``lakewatch --start-pipeline`` runs the same supervisor in the foreground
(:func:`~pipeline.supervisor.daemon.run_foreground`). The CLI talks to a running supervisor
through two files in ``settings.run_dir``: its pid file (``stop`` sends SIGTERM) and
``pipeline.control.json`` (which components it should run; ``start``/``stop``/``restart`` of
single components). The library is :mod:`pipeline.supervisor`.

The original project's ``python -m pipeline.orchestrator --action start|stop|status`` works too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from pipeline import components as comps
from pipeline.settings import Settings
from pipeline.supervisor.control import restart, start, status, stop
from pipeline.supervisor.daemon import run_foreground

ACTIONS = ("start", "stop", "status", "restart", "supervise")


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
            if args.foreground:
                return run_foreground(settings, names)
            return start(settings, names, show_status=_print_table)
        if action == "stop":
            return stop(settings, names)
        if action == "restart":
            return restart(settings, names, show_status=_print_table)
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


def _print_table(st: dict[str, Any]) -> None:
    print(format_table(st))


# -- the status table ------------------------------------------------------------------------


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
