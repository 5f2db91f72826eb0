"""The desktop app's steps for ``lakewatch self-test`` (``pipeline.self_test`` never imports Qt).

``desktop_app.cli`` hands :func:`extra_steps` to ``run_self_test(settings, extra_steps=...)``.
The window step builds the real main window offscreen, so a bundle that lost a module (a tab
falling back to its placeholder) or Qt's platform plugin fails the self-test instead of the
user's first start.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.settings import Settings

QT_WINDOW_STEP = "Qt window (offscreen)"


def qt_window_step(settings: Settings) -> str:
    """Create, show and render the main window; raise if it or one of its tabs is broken."""
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        # Headless by design: a self-test must run over SSH and in CI.
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from desktop_app.app import create_app
    from desktop_app.main_window import MainWindow
    from desktop_app.ui_state import UiState

    app = create_app()
    with tempfile.TemporaryDirectory(prefix="lakewatch-self-test-ui-") as tmp:
        # A scratch layout file: the check must not overwrite the user's remembered layout.
        window = MainWindow(settings, ui_state=UiState(Path(tmp) / "ui_state.json"))
        try:
            window.show()
            deadline = time.monotonic() + 10
            while not window.isVisible() and time.monotonic() < deadline:
                app.processEvents()
            app.processEvents()
            image = window.grab().toImage()
            if image.isNull() or image.width() < 100 or image.height() < 100:
                raise RuntimeError(f"the window rendered an empty image ({image.size()})")
            broken = [name for name, ok in (("Live logs", window.logstream_ok),
                                            ("SQL", window.sql_ok)) if not ok]
            if broken:
                raise RuntimeError(f"tab(s) fell back to a placeholder: {', '.join(broken)}")
            tabs = window.tabs.count()
            return (f"{app.platformName()} platform, {image.width()}x{image.height()}, "
                    f"{tabs} tabs")
        finally:
            window.close()
            window.deleteLater()
            app.processEvents()


def extra_steps() -> list[tuple[str, Callable[[Settings], str | None]]]:
    """What ``lakewatch self-test`` runs after the pipeline's own steps."""
    return [(QT_WINDOW_STEP, qt_window_step)]
