"""Start the Qt application and show the main window (before Spark or Kafka are ready)."""

from __future__ import annotations

import contextlib
import sys
import threading

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from desktop_app.frozen import java_missing_dialog
from desktop_app.gui_gc import collect_on_gui_thread
from pipeline.jvm import JavaError, require_java
from pipeline.settings import Settings
from pipeline.signals import on_signals


def create_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if isinstance(app, QApplication):
        collect_on_gui_thread()
        return app
    app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("Lakewatch")
    app.setOrganizationName("lakewatch")
    app.setDesktopFileName("lakewatch")
    collect_on_gui_thread()
    return app


class _JavaCheck(QObject):
    """Runs ``java -version`` off the GUI thread; a missing or old Java opens the dialog that
    says how to install it (the pipeline, Spark and the broker all need it)."""

    missing = Signal(object)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.missing.connect(lambda exc: java_missing_dialog(exc, window))
        threading.Thread(target=self._check, name="java-check", daemon=True).start()

    def _check(self) -> None:
        try:
            require_java()
        except JavaError as exc:
            self.missing.emit(exc)


def _quit_on_signals(app: QApplication, window) -> QTimer:
    """SIGINT/SIGTERM close the window (which stops the pipeline) instead of killing Python
    mid-flight; the timer lets the interpreter run its signal handlers during exec()."""

    def handler(_signum: int) -> None:
        window.close()
        app.quit()

    on_signals(handler)
    timer = QTimer()
    timer.timeout.connect(lambda: None)
    timer.start(250)
    return timer


def run_gui(settings: Settings, argv: list[str] | None = None) -> int:
    """Open the main window and run the event loop; returns the exit code."""
    app = create_app(argv)
    from desktop_app.main_window import MainWindow
    from desktop_app.resources import resource_path

    with contextlib.suppress(FileNotFoundError):
        app.setWindowIcon(QIcon(str(resource_path("lakewatch.svg"))))
    window = MainWindow(settings)
    window.show()
    _JavaCheck(window)  # parented to the window
    keep_alive = _quit_on_signals(app, window)
    code = app.exec()
    keep_alive.stop()
    if window.isVisible():
        window.close()
    _stop_app_spark()
    return code


def _stop_app_spark() -> None:
    """The SQL workbench may have started the app's SparkSession (a child JVM): stop it so
    no JVM outlives the window. Never imports pyspark when nothing used it."""
    manager = sys.modules.get("pipeline.spark_session_manager")
    if manager is not None:
        manager.stop_spark()
