"""Save a PNG of the Lakewatch main window, rendered by a real X server (Xvfb).

    python tests/screenshot_app.py OUT.png [--tab Dashboard] [--demo-data | --pipeline]
                                           [--theme light]

Without ``$DISPLAY`` it re-runs itself under ``xvfb-run``. ``--demo-data`` writes a small
synthetic ``metrics``/``anomalies`` Delta table (with delta-rs) into a temporary data dir so
the charts have something to show. ``--pipeline`` instead starts the embedded pipeline from
the window (Start all: broker, generator, processor with the detector) in a temporary data dir
on free ports, waits until events are in the live table and rows in Delta ``logs``, then
takes the picture and closes the window, which stops what it started. It prints one JSON
line with what it saw. Without either, the app reads the configured data dir.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_demo_data(data_dir: Path) -> None:
    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    from pipeline import latency_hist

    ts = pa.timestamp("us", tz="UTC")
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    now -= dt.timedelta(seconds=now.second % 10)
    rows: dict[str, list] = {k: [] for k in (
        "window_start", "window_end", "window_size", "source", "endpoint", "level", "requests",
        "errors", "error_rate", "latency_p50", "latency_p95", "latency_p99", "bytes",
        "status_2xx", "status_3xx", "status_4xx", "status_5xx", "status_404",
        "latency_hist", "watermark", "batch_id")}
    np_rng = np.random.default_rng(7)
    burst = range(60, 66)
    for source, scale in (("web-1", 1.0), ("web-2", 0.6)):
        for i in range(90):
            start = now - dt.timedelta(seconds=10 * (90 - i))
            req = int(scale * (900 + 250 * math.sin(i / 9) + rng.randint(-40, 40)))
            err = int(req * (0.18 if source == "web-2" and i in burst else 0.01))
            median = 40 + 8 * math.sin(i / 7) + rng.random() * 3
            hist = latency_hist.histogram(np_rng.lognormal(math.log(median), 0.55, req))
            p50, p95, p99 = latency_hist.quantiles(hist)
            values = dict(window_start=start, window_end=start + dt.timedelta(seconds=10),
                          window_size="10s", source=source, endpoint="/api/items", level="INFO",
                          requests=req, errors=err, error_rate=err / req, latency_p50=p50,
                          latency_p95=p95, latency_p99=p99, bytes=req * 900,
                          latency_hist=[{"b": b, "n": n} for b, n in hist],
                          watermark=now - dt.timedelta(seconds=20), batch_id=i,
                          status_2xx=req - err - req // 20, status_3xx=req // 40,
                          status_4xx=req // 40, status_5xx=err, status_404=req // 80)
            for key, value in values.items():
                rows[key].append(value)
    hist_type = pa.list_(pa.struct([("b", pa.int32()), ("n", pa.int64())]))
    types = {"window_start": ts, "window_end": ts, "watermark": ts, "latency_hist": hist_type}
    table = pa.table({k: pa.array(v, types.get(k)) for k, v in rows.items()})
    write_deltalake(data_dir / "delta" / "metrics", table, mode="overwrite")
    start = now - dt.timedelta(seconds=10 * 30)
    anomalies = pa.table({
        "anomaly_id": ["demo-1"], "window_start": pa.array([start], ts),
        "window_end": pa.array([start + dt.timedelta(seconds=60)], ts),
        "entity_type": ["source"], "entity": ["web-2"], "kind": ["error_burst"],
        "score": [9.1], "severity": ["high"], "detector": ["baseline"],
        "features": ['{"error_rate": {"expected": 0.01, "observed": 0.18, "z": 9.1}}'],
        "top_contributors": ['[{"field": "endpoint", "value": "/api/items", "share": 1.0}]'],
        "explanation": ["error rate 18% vs 1% expected on web-2"],
        "detected_at": pa.array([start + dt.timedelta(seconds=65)], ts),
    })
    write_deltalake(data_dir / "delta" / "anomalies", anomalies, mode="overwrite")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tab", default="Dashboard")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--demo-data", action="store_true")
    source.add_argument("--pipeline", action="store_true",
                        help="start the embedded pipeline from the window first")
    parser.add_argument("--pipeline-timeout", type=float, default=420.0)
    parser.add_argument("--theme", choices=("dark", "light"))
    parser.add_argument("--size", default="1400x900")
    parser.add_argument("--wait", type=float, default=4.0, help="seconds to let data load")
    args = parser.parse_args()

    if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            print("screenshot_app: no $DISPLAY and no xvfb-run (apt-get install xvfb)",
                  file=sys.stderr)
            return 2
        return subprocess.call([xvfb, "-a", "-s", "-screen 0 1600x1000x24",
                                sys.executable, *sys.argv])

    from PySide6.QtWidgets import QApplication

    from desktop_app.app import create_app
    from desktop_app.main_window import TABS, MainWindow
    from pipeline.settings import load_settings

    overrides = {}
    tmp = None
    if args.demo_data:
        tmp = Path(tempfile.mkdtemp(prefix="lakewatch-shot-"))
        write_demo_data(tmp)
        overrides["storage.data_dir"] = str(tmp)
    if args.pipeline:
        tmp = Path(tempfile.mkdtemp(prefix="lakewatch-shot-"))
        overrides.update({"storage.data_dir": str(tmp), "broker.port": free_port(),
                          "broker.controller_port": free_port(), "generator.rate": 200,
                          "app.live_start": "earliest"})
    if args.theme:
        overrides["app.theme"] = args.theme
    settings = load_settings(None, overrides)
    app = create_app()
    window = MainWindow(settings)
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.tabs.setCurrentIndex(TABS.index(args.tab))
    window.show()
    seen = run_pipeline(app, window, settings, args.pipeline_timeout) if args.pipeline else {}
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    screen = QApplication.primaryScreen()
    pixmap = screen.grabWindow(window.winId()) if screen is not None else window.grab()
    if pixmap.isNull() or pixmap.width() < 10:
        pixmap = window.grab()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ok = pixmap.save(str(args.out))
    window.close()
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.out}: {pixmap.width()}x{pixmap.height()}" if ok else "save failed")
    if args.pipeline:
        print(json.dumps(seen))
    return 0 if ok and seen.get("ok", True) else 1


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_pipeline(app, window, settings, timeout_s: float) -> dict:
    """Start all from the window; wait for live rows and Delta rows (event loop running)."""
    import pyarrow as pa
    from deltalake import DeltaTable

    began = time.monotonic()
    window.health.start_all()
    logs_path = settings.table_path("logs")
    seen = {"ok": False, "live_rows": 0, "delta_rows": 0, "seconds": None}
    while time.monotonic() - began < timeout_s:
        app.processEvents()
        time.sleep(0.05)
        seen["live_rows"] = window.logstream.model.rowCount()
        if seen["live_rows"] and (logs_path / "_delta_log").is_dir():
            try:
                actions = pa.table(DeltaTable(str(logs_path)).get_add_actions(flatten=True))
                seen["delta_rows"] = sum(actions.column("num_records").to_pylist())
            except Exception:  # noqa: BLE001 - the first commit may be half written
                continue
            if seen["delta_rows"] > 0:
                seen["ok"] = True
                break
    seen["seconds"] = round(time.monotonic() - began, 1)
    seen["components"] = {n: window.health.controller.is_running(n)
                          for n in window.health.controller.local_components()}
    return seen


if __name__ == "__main__":
    raise SystemExit(main())
