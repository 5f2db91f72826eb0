"""The live charts' range policy: ranges move only when the data needs it (offscreen Qt)."""

from __future__ import annotations

import numpy as np

from desktop_app.dashboard.charts import ChartsPanel, moves_a_pixel, steady_y_range


def test_y_range_kept_while_the_data_fits_and_fills_half_of_it():
    assert steady_y_range([0.0, 100.0], 0.0, 80.0) is None
    assert steady_y_range([0.0, 100.0], 0.0, 49.0) == (0.0 - 0.05 * 49, 49 + 0.15 * 49)
    low, high = steady_y_range([0.0, 100.0], 0.0, 120.0)  # outgrew it: 15 % headroom
    assert (low, high) == (-6.0, 138.0)


def test_x_range_moves_only_by_a_pixel_or_more():
    day = 86_400.0
    assert not moves_a_pixel([0.0, day], 10.0, day + 10.0, 1000)  # 10 s < 86.4 s a pixel
    assert moves_a_pixel([0.0, day], 100.0, day + 100.0, 1000)
    assert moves_a_pixel([0.0, 300.0], 10.0, 310.0, 1000)  # 5 min: 0.3 s a pixel


def _snapshot(t: np.ndarray, v: np.ndarray) -> dict:
    series = {"t": t, **{k: v for k in ("throughput", "error_rate", "latency_p50",
                                         "latency_p95", "latency_p99", "status_2xx",
                                         "status_3xx", "status_4xx", "status_5xx")}}
    return {"series": [series], "lag": (t, v), "start_ms": t[0] * 1000,
            "end_ms": t[-1] * 1000, "anomalies_in_range": []}


def test_panel_redraws_data_and_keeps_steady_ranges(qtbot):
    panel = ChartsPanel(redraw_ms=10_000_000)
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.show()
    t = 1.8e9 + 10.0 * np.arange(8640)  # 24 h of 10 s windows
    v = 100.0 + np.sin(np.arange(8640) / 50.0) * 20.0
    panel.set_snapshot(_snapshot(t, v))
    panel.redraw()
    plot = panel.plots["throughput"]
    x0, y0 = plot.viewRange()
    assert x0 == [t[0], t[-1]] and y0[0] <= 0.0 and y0[1] >= v.max()
    curve = panel.curves[("throughput", "throughput", 0)]  # (curve_data is the downsampled)
    assert np.array_equal(curve.xData, t) and np.array_equal(curve.yData, v)

    # one new 10 s window on a 24 h range: new data drawn, ranges unchanged (< a pixel)
    t2, v2 = t + 10.0, np.roll(v, -1)
    panel.set_snapshot(_snapshot(t2, v2))
    panel.redraw()
    assert plot.viewRange() == [x0, y0]
    assert np.array_equal(curve.yData, v2)

    # a surge beyond the view: y grows at once; an hour later the x range follows
    t3, v3 = t + 3600.0, v.copy()
    v3[-1] = 500.0
    panel.set_snapshot(_snapshot(t3, v3))
    panel.redraw()
    x3, y3 = plot.viewRange()
    assert x3 == [t3[0], t3[-1]] and y3[1] >= 500.0
    panel.timer.stop()


def test_provisional_tail_is_drawn_apart(qtbot):
    panel = ChartsPanel(redraw_ms=10_000_000)
    qtbot.addWidget(panel)
    panel.resize(1000, 700)
    panel.show()
    t = 1.8e9 + 10.0 * np.arange(8)
    v = np.arange(8, dtype=float)
    snapshot = _snapshot(t, v)
    snapshot["series"][0]["provisional"] = np.arange(8) >= 5
    snapshot["series"][0]["latency_p99"] = np.where(np.arange(8) == 6, np.nan, v)
    panel.set_snapshot(snapshot)
    panel.redraw()
    curve = panel.curves[("throughput", "throughput", 0)]
    tails = panel.tails["throughput"]
    assert curve.xData.tolist() == t[:5].tolist()  # final points, solid
    x, y, joined, color = tails.tails[("throughput", "throughput", 0)]
    assert x.tolist() == t[4:].tolist() and joined == 1  # joined to the last final point
    assert color == "#3498db"
    assert panel.provisional_data("throughput", "throughput")[0].tolist() == t[5:].tolist()
    x, y = panel.curve_data("throughput", "throughput")
    assert x.tolist() == t.tolist() and y.tolist() == v.tolist()
    _, err = panel.curve_data("error_rate", "error_rate")
    assert err.tolist() == (100 * v).tolist()  # tails scaled like their curves
    assert "provisional" in tails.toolTip()
    assert not panel.grab().isNull()  # paints, NaN latency in a tail included
    assert tails.boundingRect().contains(t[6], 6.0)

    snapshot = _snapshot(t, v)  # nothing provisional any more: the tails go
    snapshot["series"][0]["provisional"] = np.zeros(8, bool)
    panel.set_snapshot(snapshot)
    panel.redraw()
    assert not tails.tails and curve.xData.tolist() == t.tolist()

    snapshot["series"][0]["provisional"] = np.ones(8, bool)  # no watermark: all provisional
    panel.set_snapshot(snapshot)
    panel.redraw()
    assert panel.curve_data("throughput", "throughput")[0].tolist() == t.tolist()
    assert panel.provisional_data("throughput", "throughput")[0].tolist() == t.tolist()
    assert not panel.grab().isNull()
    panel.timer.stop()


def test_legends_do_not_cover_the_data(qtbot):
    panel = ChartsPanel(redraw_ms=10_000_000)
    qtbot.addWidget(panel)
    for width in (780, 1400):
        panel.resize(width, 700)
        panel.show()
        qtbot.wait(10)
        for name, plot in panel.plots.items():
            legend = panel.legends[name]
            view = plot.getViewBox().sceneBoundingRect()
            box = legend.sceneBoundingRect()
            assert box.height() > 0 and not box.intersects(view), (name, width)
            assert box.right() <= view.right() + 1  # inside the plot's width
            title = plot.titleLabel.sceneBoundingRect()
            assert title.left() < box.left()
    assert [legend for legend in panel.legends.values() if legend.toolTip()] \
        == [panel.legends["throughput"]]  # the provisional key, once
    panel.timer.stop()


def test_tail_outside_the_view_still_draws(qtbot):
    """A past range (focused anomaly) puts the provisional tail out of view."""
    panel = ChartsPanel(redraw_ms=10_000_000)
    qtbot.addWidget(panel)
    panel.resize(1000, 700)
    panel.show()
    t = 1.8e9 + 10.0 * np.arange(400)
    snapshot = _snapshot(t, np.sin(np.arange(400)))
    snapshot["series"][0]["provisional"] = np.arange(400) >= 390
    snapshot["end_ms"] = t[100] * 1000
    panel.set_snapshot(snapshot)
    panel.redraw()
    assert not panel.grab().isNull()
    assert len(panel.provisional_data("throughput", "throughput")[0]) == 10
    panel.timer.stop()
