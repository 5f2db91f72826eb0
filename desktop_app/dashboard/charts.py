"""pyqtgraph live charts: throughput, error rate, latency p50/p95/p99, status classes and consumer
lag over time, with a second selection drawn dashed for comparison and anomalies as shaded
regions.

Snapshots from the worker only mark the charts dirty; a GUI timer redraws at most every
``redraw_ms`` from preallocated numpy buffers, with peak downsampling and clip-to-view so a
24-hour range costs what the screen can show.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

pg.setConfigOptions(antialias=False, useOpenGL=False)

SEVERITY_COLORS = {"low": (241, 196, 15, 40), "medium": (230, 126, 34, 55),
                   "high": (231, 76, 60, 60), "critical": (192, 57, 43, 80)}

#: plot -> [(series key, label, colour)] for selection A; B reuses them dashed
PLOTS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "throughput": ("Throughput (events/s)", [("throughput", "events/s", "#3498db")]),
    "error_rate": ("Error rate (%)", [("error_rate", "error %", "#e74c3c")]),
    "latency": ("Latency (ms)", [("latency_p50", "p50", "#2ecc71"),
                                 ("latency_p95", "p95", "#f1c40f"),
                                 ("latency_p99", "p99", "#e67e22")]),
    "status": ("Status classes (requests/window)", [("status_2xx", "2xx", "#2ecc71"),
                                                    ("status_3xx", "3xx", "#3498db"),
                                                    ("status_4xx", "4xx", "#f39c12"),
                                                    ("status_5xx", "5xx", "#e74c3c")]),
    "lag": ("Consumer lag (messages)", [("lag", "lag", "#9b59b6")]),
}
SCALE = {"error_rate": 100.0}
_EMPTY = np.empty(0)


def tune_curve(curve: pg.PlotDataItem) -> None:
    """Peak downsampling to one bin per pixel (min and max kept, so no spike is lost) and
    clip-to-view: a 24-hour curve costs about 2 x plot-width points per paint."""
    curve.setClipToView(True)
    curve.setDownsampling(auto=True, method="peak")
    curve.opts["autoDownsampleFactor"] = 1.0


def steady_y_range(current: list[float], low: float, high: float) -> tuple[float, float] | None:
    """A new y range for data in [low, high], or None to keep ``current``: kept while the data
    fits and fills at least half of it, so the axis neither jitters nor re-lays its ticks on
    every redraw (its repaint is the costliest part of one); a new range leaves 15 % headroom
    above the data."""
    view_low, view_high = current
    span = high - low
    if view_low <= low and high <= view_high and span >= 0.5 * (view_high - view_low):
        return None
    return low - 0.05 * span, high + 0.15 * span


def moves_a_pixel(current: list[float], start: float, end: float, pixels: float) -> bool:
    """Whether the x range [start, end] differs from ``current`` by a pixel or more at either
    end: on a long range a new 10-second window moves the view by less than that, and the
    range change would re-clip and re-downsample every curve of every linked plot."""
    per_pixel = (end - start) / max(pixels, 1.0)
    return abs(current[0] - start) >= per_pixel or abs(current[1] - end) >= per_pixel


class Buffer:
    """A growable preallocated float array; ``view(n)`` is the first n values."""

    def __init__(self, capacity: int = 9000) -> None:
        self.data = np.empty(capacity)

    def fill(self, values: np.ndarray, scale: float = 1.0) -> np.ndarray:
        n = len(values)
        if n > len(self.data):
            self.data = np.empty(max(n, 2 * len(self.data)))
        np.multiply(values, scale, out=self.data[:n])
        return self.data[:n]


class ChartsPanel(pg.GraphicsLayoutWidget):
    """The stacked, x-linked time-series plots."""

    regionClicked = Signal(dict)

    def __init__(self, parent: QWidget | None = None, redraw_ms: int = 100) -> None:
        super().__init__(parent)
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[tuple[str, str, int], pg.PlotDataItem] = {}
        self.buffers: dict[tuple[str, str, int], tuple[Buffer, Buffer]] = {}
        self.regions: dict[str, list[pg.LinearRegionItem]] = {}
        self._pending: dict[str, Any] | None = None
        self._empty: dict[tuple[str, str, int], bool] = {}
        self.redraws = 0
        first = None
        for row, (name, (title, series)) in enumerate(PLOTS.items()):
            plot = self.addPlot(row=row, col=0, title=title,
                                axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
            plot.showGrid(x=False, y=False)
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            plot.addLegend(offset=(-10, 2), labelTextSize="8pt", colCount=len(series),
                           verSpacing=-8)
            plot.getAxis("left").setWidth(56)  # aligned plots
            plot.getAxis("left").enableAutoSIPrefix(False)  # no label re-layout per redraw
            plot.disableAutoRange()  # ranges are set once per redraw, before the data
            if row < len(PLOTS) - 1:
                plot.hideAxis("bottom")  # one time axis, at the bottom: a date axis is costly
            plot.setMenuEnabled(False)
            if first is None:
                first = plot
            else:
                plot.setXLink(first)
            self.plots[name] = plot
            self.regions[name] = []
            for key, label, color in series:
                for index in (0, 1) if name != "lag" else (0,):
                    # width-1 (cosmetic) pens: wider ones cost ~10x in the raster engine
                    style = pg.mkPen(color, width=1,
                                     style=pg.QtCore.Qt.PenStyle.SolidLine if index == 0
                                     else pg.QtCore.Qt.PenStyle.DashLine)
                    curve = plot.plot(pen=style, name=label if index == 0 else None)
                    tune_curve(curve)
                    self.curves[(name, key, index)] = curve
                    self.buffers[(name, key, index)] = (Buffer(), Buffer())
        self.timer = QTimer(self)
        self.timer.setInterval(redraw_ms)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()

    # -- data --------------------------------------------------------------------------
    def set_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Remember the newest snapshot; the timer draws it."""
        self._pending = snapshot

    def redraw(self) -> None:
        snapshot, self._pending = self._pending, None
        if snapshot is None:
            return
        series = snapshot["series"]
        data: dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]] = {}
        for (plot, key, index) in self.curves:
            if plot == "lag":
                t, v = snapshot["lag"]
            elif index < len(series):
                t, v = series[index]["t"], series[index][key]
            else:
                t = v = _EMPTY
            data[(plot, key, index)] = (t, v)
        # Ranges first (x on the first plot, the others are linked; y from the data), so each
        # curve downsamples once for the final view instead of once per range change.
        start, end = snapshot["start_ms"] / 1000.0, snapshot["end_ms"] / 1000.0
        first = self.plots["throughput"]
        if moves_a_pixel(first.viewRange()[0], start, end, first.getViewBox().width()):
            first.setXRange(start, end, padding=0)
        for name, plot in self.plots.items():
            scale = SCALE.get(name, 1.0)
            lows, highs = [], []
            for (pname, _key, _index), (t, v) in data.items():
                if pname == name and len(v):
                    finite = v[(t >= start) & (t <= end)] if len(t) == len(v) else v
                    if len(finite) and not np.all(np.isnan(finite)):
                        lows.append(np.nanmin(finite) * scale)
                        highs.append(np.nanmax(finite) * scale)
            if lows:
                low = min(min(lows), 0.0)
                high = max(highs)
                y_range = steady_y_range(plot.viewRange()[1], low, max(high, low + 1.0))
                if y_range is not None:
                    plot.setYRange(*y_range, padding=0)
        for key, curve in self.curves.items():
            t, v = data[key]
            if not len(t) and self._empty.get(key, False):
                continue  # still empty: skip the setData cascade
            xbuf, ybuf = self.buffers[key]
            curve.setData(xbuf.fill(t), ybuf.fill(v, SCALE.get(key[0], 1.0)))
            self._empty[key] = not len(t)
            curve.setVisible(len(t) > 0 or key[2] == 0)
        self._draw_regions(snapshot.get("anomalies_in_range", []))
        self.redraws += 1

    def curve_data(self, plot: str, key: str, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.curves[(plot, key, index)].getData()
        empty = np.empty(0)
        return (empty if x is None else x), (empty if y is None else y)

    def _draw_regions(self, anomalies: list[dict[str, Any]]) -> None:
        for name, plot in self.plots.items():
            pool = self.regions[name]
            while len(pool) < len(anomalies):
                region = pg.LinearRegionItem(movable=False)
                region.setZValue(-10)
                plot.addItem(region)
                pool.append(region)
            for region, record in zip(pool, anomalies, strict=False):
                region.setRegion((record["window_start"] / 1000.0, record["window_end"] / 1000.0))
                color = QColor(*SEVERITY_COLORS.get(str(record.get("severity")), (150,) * 4))
                region.setBrush(color)
                edge = QColor(color)
                edge.setAlpha(160)
                for line in region.lines:
                    line.setPen(pg.mkPen(edge, width=1))
                region.setToolTip(f"{record.get('kind')} on {record.get('entity')}: "
                                  f"{record.get('explanation')}")
                region.setVisible(True)
            for region in pool[len(anomalies):]:
                region.setVisible(False)

    def visible_regions(self, plot: str = "throughput") -> list[tuple[float, float]]:
        return [tuple(r.getRegion()) for r in self.regions[plot] if r.isVisible()]

    # -- look --------------------------------------------------------------------------
    def apply_theme(self, dark: bool) -> None:
        background, foreground = ("#1e1f22", "#c8ccd4") if dark else ("#ffffff", "#303030")
        self.setBackground(background)
        for plot in self.plots.values():
            plot.setTitle(plot.titleLabel.text, color=foreground)
            for axis in ("left", "bottom"):
                item = plot.getAxis(axis)
                item.setPen(foreground)
                item.setTextPen(foreground)
