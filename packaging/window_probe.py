"""Start Lakewatch on an X display, time how long until its window is on screen, screenshot it.

Run under a real X server (the bundle test and ``bench/bundle_startup.py`` use ``xvfb-run -a``):

    xvfb-run -a -s "-screen 0 1600x1000x24" python packaging/window_probe.py \
        --runs 3 --screenshot artifacts/bundle-window.png -- dist/lakewatch/lakewatch

Each run gets a fresh data dir (no remembered layout) and ends with SIGTERM, which the app
answers by closing its window. "On screen" is the first root-window grab that differs from the
empty screen grabbed before the start; the screenshot is taken ``--settle`` seconds later.
Prints one JSON object: per-run seconds, their median, exit codes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _grab(app):  # -> QImage of the whole screen
    return app.primaryScreen().grabWindow(0).toImage()


def _differs(image, empty, step: int = 16) -> bool:
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            if image.pixel(x, y) != empty.pixel(x, y):
                return True
    return False


def probe_once(app, command: list[str], screenshot: Path | None, settle: float,
               timeout: float) -> dict:
    from PySide6.QtCore import QCoreApplication

    with tempfile.TemporaryDirectory(prefix="lakewatch-probe-") as tmp:
        env = dict(os.environ)
        env["QT_QPA_PLATFORM"] = "xcb"
        env["LAKEWATCH_STORAGE__DATA_DIR"] = tmp
        empty = _grab(app)
        started = time.monotonic()
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        shown = None
        while time.monotonic() - started < timeout and proc.poll() is None:
            QCoreApplication.processEvents()
            if _differs(_grab(app), empty):
                shown = time.monotonic() - started
                break
            time.sleep(0.05)
        saved = None
        if shown is not None and screenshot is not None:
            time.sleep(settle)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            if _grab(app).save(str(screenshot)):
                saved = str(screenshot)
        alive = proc.poll() is None
        if alive:
            proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
        return {
            "seconds_to_window": None if shown is None else round(shown, 2),
            "alive_until_sigterm": alive,
            "exit_code": proc.returncode,
            "screenshot": saved,
            "stderr_tail": err.decode(errors="replace")[-1500:],
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--screenshot", type=Path, help="PNG of the last run's screen")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds between the window appearing and the screenshot")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("command", nargs="+", help="the app's command line (after --)")
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        parser.error("needs an X display: run it under xvfb-run -a")
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication([sys.argv[0]])
    runs = []
    for i in range(args.runs):
        last = i == args.runs - 1
        runs.append(probe_once(app, args.command, args.screenshot if last else None,
                               args.settle, args.timeout))
    times = [r["seconds_to_window"] for r in runs if r["seconds_to_window"] is not None]
    print(json.dumps({
        "command": args.command,
        "runs": runs,
        "median_seconds_to_window": round(statistics.median(times), 2) if times else None,
    }))
    return 0 if len(times) == len(runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
