"""Dark and light themes: the Fusion style with a matching palette plus a small stylesheet from
``resources/styles``. pyqtgraph charts follow through ``DashboardWidget.apply_theme``.
"""

from __future__ import annotations

import logging

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from desktop_app.resources import read_text

log = logging.getLogger(__name__)

THEMES = ("dark", "light")

_DARK = {
    QPalette.ColorRole.Window: "#232428",
    QPalette.ColorRole.WindowText: "#d4d7dd",
    QPalette.ColorRole.Base: "#1b1c1f",
    QPalette.ColorRole.AlternateBase: "#26282c",
    QPalette.ColorRole.ToolTipBase: "#2d2f34",
    QPalette.ColorRole.ToolTipText: "#e6e8eb",
    QPalette.ColorRole.Text: "#d4d7dd",
    QPalette.ColorRole.Button: "#2d2f34",
    QPalette.ColorRole.ButtonText: "#d4d7dd",
    QPalette.ColorRole.BrightText: "#ff6b6b",
    QPalette.ColorRole.Highlight: "#3d8ee6",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#6cb2ff",
    QPalette.ColorRole.PlaceholderText: "#7c818a",
}


def apply_theme(app: QApplication, name: str) -> None:
    """Switch the whole application to ``name`` ("dark" or "light")."""
    if name not in THEMES:
        raise ValueError(f"app.theme must be one of {THEMES}, not {name!r}")
    app.setStyle("Fusion")
    palette = app.style().standardPalette()
    if name == "dark":
        for role, color in _DARK.items():
            palette.setColor(role, QColor(color))
        for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                     QPalette.ColorRole.WindowText):
            palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b6f76"))
    app.setPalette(palette)
    try:
        app.setStyleSheet(read_text("styles", f"{name}.qss"))
    except FileNotFoundError as exc:  # a broken install keeps a usable, plainer window
        log.warning("%s", exc)
        app.setStyleSheet("")
    app.setProperty("lakewatch_theme", name)


def current_theme(app: QApplication) -> str:
    return str(app.property("lakewatch_theme") or "dark")
