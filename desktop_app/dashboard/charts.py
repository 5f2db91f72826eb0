"""pyqtgraph live charts: throughput, error rate, latency p50/p95/p99, status classes and consumer
lag over time, with a second selection drawn dashed for comparison and anomalies as shaded
regions. Provisional points (windows still open: the table's watermark has not passed their
end, so late partials may still change them) end each curve as a lighter dotted tail with
hollow symbols. Legends sit in each plot's title row, right-aligned, never over the data.

Snapshots from the worker only mark the charts dirty; a GUI timer redraws at most every
``redraw_ms`` from preallocated numpy buffers, with peak downsampling and clip-to-view so a
24-hour range costs what the screen can show.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter
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
PROVISIONAL_TIP = "provisional: window still open (late events may still change it)"
_SYMBOL_SIZE = 5
_HOLLOW = (0, 0, 0, 0)
Tail = tuple[np.ndarray, np.ndarray, int, str]  # x, y, joining points, colour


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


class ProvisionalTails(pg.GraphicsObject):
    """The provisional tails of one plot's curves: a lighter dotted line from each curve's last
    final point on, hollow circles on the provisional points.

    One plain item per plot, painted directly: as pyqtgraph items (a curve and a scatter per
    tail) the few points cost more than the 10,000-point curves, doubling a redraw.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tails: dict[tuple[str, str, int], Tail] = {}
        self._bounds = QRectF()
        self.setToolTip(PROVISIONAL_TIP)

    def set_tails(self, tails: dict[tuple[str, str, int], Tail]) -> None:
        if not tails and not self.tails:
            return
        self.prepareGeometryChange()
        self.tails = tails
        xs = [x for x, _, _, _ in tails.values()]
        ys = [y[np.isfinite(y)] for _, y, _, _ in tails.values()]
        if tails and any(len(y) for y in ys):
            x, y = np.concatenate(xs), np.concatenate(ys)
            self._bounds = QRectF(float(x.min()), float(y.min()), float(np.ptp(x)),
                                  float(np.ptp(y)))
        else:
            self._bounds = QRectF()
        self.update()

    def boundingRect(self) -> QRectF:
        pad_x, pad_y = (self.pixelWidth() or 0.0) * 4, (self.pixelHeight() or 0.0) * 4
        return self._bounds.adjusted(-pad_x, -pad_y, pad_x, pad_y)

    def paint(self, painter: QPainter, *_args) -> None:
        to_device = painter.transform()  # data -> pixels: circles stay round and 5 px wide
        smooth = painter.testRenderHint(QPainter.RenderHint.Antialiasing)
        painter.resetTransform()
        painter.setBrush(Qt.BrushStyle.NoBrush)
        radius = _SYMBOL_SIZE / 2.0
        for x, y, joined, color in self.tails.values():
            finite = np.isfinite(y)
            x, y = x[finite], y[finite]
            joined = int(finite[:joined].sum())
            points = [to_device.map(QPointF(a, b)) for a, b in zip(x.tolist(), y.tolist(),
                                                                    strict=True)]
            light = QColor(color)
            light.setAlpha(150)
            painter.setPen(pg.mkPen(light, width=1, style=Qt.PenStyle.DotLine))
            painter.drawPolyline(points)
            painter.setPen(pg.mkPen(color, width=1))
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)  # round, few points
            for point in points[joined:]:
                painter.drawEllipse(point, radius, radius)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, smooth)
        painter.setTransform(to_device)


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
        self.tails: dict[str, ProvisionalTails] = {}
        self.legends: dict[str, pg.LegendItem] = {}
        self._colors: dict[tuple[str, str, int], str] = {}
        first = None
        for row, (name, (title, series)) in enumerate(PLOTS.items()):
            plot = self.addPlot(row=row, col=0,
                                axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
            plot.setTitle(title, justify="left")
            plot.showGrid(x=False, y=False)
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
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
            legend = self._legend(plot, len(series) + (row == 0))
            for key, label, color in series:
                for index in (0, 1) if name != "lag" else (0,):
                    # width-1 (cosmetic) pens: wider ones cost ~10x in the raster engine
                    dash = (pg.QtCore.Qt.PenStyle.SolidLine if index == 0
                            else pg.QtCore.Qt.PenStyle.DashLine)
                    curve = plot.plot(pen=pg.mkPen(color, width=1, style=dash))
                    tune_curve(curve)
                    if index == 0:
                        legend.addItem(curve, label)
                    self.curves[(name, key, index)] = curve
                    self.buffers[(name, key, index)] = (Buffer(), Buffer())
                    self._colors[(name, key, index)] = color
            if name != "lag":
                self.tails[name] = ProvisionalTails()
                plot.addItem(self.tails[name])
            if row == 0:  # one key for the style, shared by every plot
                # (a point of data: the legend draws the symbol as its scatter last drew it)
                sample = pg.PlotDataItem([0.0], [0.0], pen=pg.mkPen(
                    "#9aa0a6", width=1, style=pg.QtCore.Qt.PenStyle.DotLine), symbol="o",
                    symbolSize=_SYMBOL_SIZE, symbolBrush=_HOLLOW, symbolPen="#9aa0a6")
                legend.addItem(sample, PROVISIONAL_TIP.split(" (")[0])
                legend.setToolTip(PROVISIONAL_TIP)
            self.legends[name] = legend
        self.timer = QTimer(self)
        self.timer.setInterval(redraw_ms)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()

    @staticmethod
    def _legend(plot: pg.PlotItem, entries: int) -> pg.LegendItem:
        """A one-row legend in the plot's title row, right-aligned: inside the view box (the
        pyqtgraph default) it covered the latest, most watched, part of the curves."""
        legend = pg.LegendItem(offset=None, labelTextSize="8pt", colCount=entries,
                               horSpacing=4, verSpacing=-8)
        legend.layout.setContentsMargins(0, 0, 0, 0)  # fits the 30 px title row
        legend.setParentItem(plot)
        legend.anchor(itemPos=(1, 0), parentPos=(1, 0), offset=(-6, 1))
        return legend

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
        split: dict[tuple[str, str, int], int] = {}
        for (plot, key, index) in self.curves:
            if plot == "lag":
                t, v = snapshot["lag"]
            elif index < len(series):
                t, v = series[index]["t"], series[index][key]
                provisional = series[index].get("provisional")
                if provisional is not None and provisional.any():
                    # provisional windows are the newest: the tail from the first of them
                    split[(plot, key, index)] = int(np.argmax(provisional))
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
            k = split.get(key, len(t))
            if not k and self._empty.get(key, False):
                pass  # still empty: skip the setData cascade
            else:
                xbuf, ybuf = self.buffers[key]
                curve.setData(xbuf.fill(t[:k]), ybuf.fill(v[:k], SCALE.get(key[0], 1.0)))
                self._empty[key] = not k
            curve.setVisible(k > 0 or key[2] == 0)
        tails: dict[str, dict[tuple[str, str, int], Tail]] = {name: {} for name in self.tails}
        for key, k in split.items():
            t, v = data[key]
            begin = max(k - 1, 0)  # joined to the last final point, which gets no circle
            tails[key[0]][key] = (t[begin:], v[begin:] * SCALE.get(key[0], 1.0), k - begin,
                                  self._colors[key])
        for name, item in self.tails.items():
            item.set_tails(tails[name])
        self._draw_regions(snapshot.get("anomalies_in_range", []))
        self.redraws += 1

    def curve_data(self, plot: str, key: str, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """What a curve shows (as drawn: downsampled), final points then provisional ones."""
        x, y = self.curves[(plot, key, index)].getData()
        x = _EMPTY if x is None else x
        y = _EMPTY if y is None else y
        px, py = self.provisional_data(plot, key, index)
        return np.concatenate([x, px]), np.concatenate([y, py])

    def provisional_data(self, plot: str, key: str,
                         index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The provisional points drawn for a curve (its tail without the joining point)."""
        tail = self.tails[plot].tails.get((plot, key, index)) if plot in self.tails else None
        if tail is None:
            return _EMPTY, _EMPTY
        x, y, joined, _color = tail
        return x[joined:], y[joined:]

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
        for name, plot in self.plots.items():
            plot.setTitle(plot.titleLabel.text, color=foreground)
            self.legends[name].setLabelTextColor(foreground)
            for axis in ("left", "bottom"):
                item = plot.getAxis(axis)
                item.setPen(foreground)
                item.setTextPen(foreground)
