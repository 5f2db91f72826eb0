"""Chart redraw cost: 8 curves x 10,000 points, offscreen, median of several redraws.

One redraw = new data into the preallocated buffers, ``setData`` on every curve and a full
synchronous paint of the chart widget (``repaint``). Target: <= 16 ms (60 fps).
Baseline measured in the same run: the same charts as pyqtgraph draws them by default (no
downsampling, no clip-to-view, 1.5 px pens); the app's charts use ``tune_curve`` and 1 px pens.

    QT_QPA_PLATFORM=offscreen python bench/gui_charts.py [--points 10000] [--runs 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from desktop_app.dashboard.charts import Buffer, tune_curve  # noqa: E402

CURVES = 8


def build(optimised: bool, width: int, height: int) -> tuple[pg.GraphicsLayoutWidget, list]:
    widget = pg.GraphicsLayoutWidget()
    widget.resize(width, height)
    curves = []
    for row in range(4):
        plot = widget.addPlot(row=row, col=0,
                              axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        if optimised:
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
        for index in range(CURVES // 4):
            curve = plot.plot(pen=pg.mkPen(("#3498db", "#e74c3c")[index],
                                           width=1 if optimised else 1.5))
            if optimised:
                tune_curve(curve)
            curves.append(curve)
    widget.show()
    return widget, curves


def measure_app(points: int, runs: int, width: int, height: int) -> tuple[list, list]:
    """The app's own ChartsPanel fed one selection: 9 metric curves + consumer lag = 10
    curves of ``points`` each (more than the 8 asked for), through ``redraw()``; the newest
    3 windows are provisional, so the 9 metric curves also draw their tails."""
    from desktop_app.dashboard.charts import ChartsPanel

    app = QApplication.instance()
    panel = ChartsPanel(redraw_ms=10_000_000)
    panel.resize(width, height)
    panel.show()
    rng = np.random.default_rng(1)
    x = 1.8e9 + np.arange(points + runs + 5, dtype=float) * 10.0
    keys = ("throughput", "error_rate", "latency_p50", "latency_p95", "latency_p99",
            "status_2xx", "status_3xx", "status_4xx", "status_5xx", "requests")
    data = {k: rng.normal(100, 15, size=points + runs + 5).cumsum() for k in keys}
    timings, cpu = [], []
    for run in range(runs + 5):
        window = slice(run, run + points)
        series_a = {"t": x[window], **{k: v[window] for k, v in data.items()},
                    "provisional": np.arange(points) >= points - 3}
        snapshot = {"series": [series_a], "lag": (x[window], data["requests"][window]),
                    "start_ms": x[window][0] * 1000, "end_ms": x[window][-1] * 1000,
                    "anomalies_in_range": []}
        began, began_cpu = time.perf_counter(), time.thread_time()
        panel.set_snapshot(snapshot)
        panel.redraw()
        panel.repaint()
        app.processEvents()
        if run >= 5:
            timings.append((time.perf_counter() - began) * 1000.0)
            cpu.append((time.thread_time() - began_cpu) * 1000.0)
    panel.close()
    panel.deleteLater()
    app.processEvents()
    return timings, cpu


def measure_plain(optimised: bool, points: int, runs: int, width: int, height: int) -> list[float]:
    app = QApplication.instance()
    widget, curves = build(optimised, width, height)
    rng = np.random.default_rng(1)
    t0 = 1.8e9
    x = t0 + np.arange(points, dtype=float) * 10.0
    data = rng.normal(100, 15, size=(CURVES, points + runs + 5)).cumsum(axis=1)
    buffers = [(Buffer(points), Buffer(points)) for _ in range(CURVES)]
    timings, cpu = [], []
    for run in range(runs + 5):
        began = time.perf_counter()
        began_cpu = time.thread_time()
        shift = x + run * 10.0
        for i, curve in enumerate(curves):
            xb, yb = buffers[i]
            curve.setData(xb.fill(shift), yb.fill(data[i, run:run + points]))
        widget.repaint()
        app.processEvents()
        elapsed = (time.perf_counter() - began) * 1000.0
        if run >= 5:  # warm-up excluded
            timings.append(elapsed)
            cpu.append((time.thread_time() - began_cpu) * 1000.0)
    widget.close()
    widget.deleteLater()
    app.processEvents()
    return timings, cpu


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--size", default="1400x800")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    pg.setConfigOptions(antialias=False)
    QApplication.instance() or QApplication([])
    began = time.thread_time()
    sum(range(10**7))
    probe = time.thread_time() - began
    app_wall, app_cpu = measure_app(args.points, args.runs, width, height)
    optimised, optimised_cpu = measure_plain(True, args.points, args.runs, width, height)
    baseline, baseline_cpu = measure_plain(False, args.points, args.runs, width, height)
    med_opt, med_base = statistics.median(optimised), statistics.median(baseline)
    cpu_opt, cpu_base = statistics.median(optimised_cpu), statistics.median(baseline_cpu)
    print(f"{CURVES} curves x {args.points:,} points, {args.runs} redraws, {width}x{height}")
    print("  (wall = elapsed; cpu = this thread's CPU time, robust to a busy machine)")
    print(f"  machine probe: sum(range(1e7)) took {probe * 1000:.0f} ms CPU "
          "(~120 ms on an idle modern core; scale the figures below by that ratio)")
    print(f"  app ChartsPanel (10 curves)      : median wall {statistics.median(app_wall):7.2f} ms"
          f"  cpu {statistics.median(app_cpu):7.2f} ms  p90 wall "
          f"{np.percentile(app_wall, 90):7.2f} ms")
    print(f"  8 curves, tune_curve + 1px pen   : median wall {med_opt:7.2f} ms  "
          f"cpu {cpu_opt:7.2f} ms  p90 wall {np.percentile(optimised, 90):7.2f} ms")
    print(f"  baseline (pyqtgraph defaults)    : median wall {med_base:7.2f} ms  "
          f"cpu {cpu_base:7.2f} ms  p90 wall {np.percentile(baseline, 90):7.2f} ms")
    print(f"  ratio baseline / tuned (wall,cpu): {med_base / med_opt:5.2f}x, "
          f"{cpu_base / cpu_opt:5.2f}x")
    wall_ok = "met" if statistics.median(app_wall) <= 16 else "MISSED"
    cpu_ok = "met" if statistics.median(app_cpu) <= 16 else "MISSED"
    print(f"  target <= 16 ms (app panel)      : {wall_ok} (wall), {cpu_ok} (cpu)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
