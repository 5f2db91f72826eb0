"""The Health tab: one indicator per component, start/stop/restart buttons, live component logs.

Verdicts come from ``checks`` over facts the ``HealthWorker`` gathers each second on its own
thread; a component the app started that exits is repainted at once from the process's
``exited`` signal (no polling), so a crash shows red with its reason within milliseconds.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from desktop_app.health import checks
from desktop_app.health.checks import Verdict
from desktop_app.health.controller import PipelineController
from desktop_app.health.worker import HealthWorker
from desktop_app.process import LOG_LINES_KEPT
from desktop_app.threads import start_worker_thread, stop_worker_thread
from pipeline import components as comps
from pipeline.settings import Settings

COLORS = {"green": "#2ecc71", "amber": "#f39c12", "red": "#e74c3c", "off": "#7f8c8d"}
#: indicator titles of the pipeline's components (rows follow ``pipeline.components.ORDER``)
TITLES = {
    comps.BROKER: "Kafka broker",
    comps.PROCESSOR: "Streaming processor",
    comps.DETECTOR: "Anomaly detector",
    comps.GENERATOR: "Log generator",
}
INDICATORS = (
    *((name, TITLES.get(name, name)) for name in comps.ORDER),
    ("freshness", "Delta freshness"),
    ("lag", "Consumer lag"),
)


class Indicator(QWidget):
    """A coloured dot, a title and the short reason; the full reason is the tooltip."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = "off"
        self.reason = "not checked yet"
        self.dot = QLabel()
        self.dot.setFixedSize(14, 14)
        self.title = QLabel(title)
        font = QFont(self.title.font())
        font.setBold(True)
        self.title.setFont(font)
        self.text = QLabel()
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.dot)
        layout.addWidget(self.title)
        layout.addWidget(self.text, 1)
        self.set_verdict(Verdict("off", self.reason))

    def set_verdict(self, verdict: Verdict) -> None:
        self.state, self.reason = verdict.state, verdict.reason
        self.dot.setStyleSheet(f"background:{COLORS[verdict.state]}; border-radius:7px;")
        self.dot.setAccessibleName(verdict.state)
        self.text.setText(verdict.reason)
        self.setToolTip(f"{verdict.state.upper()}: {verdict.reason}")


class HealthPanel(QWidget):
    """Pipeline health and control. ``verdictsChanged(dict name -> (state, reason))``."""

    verdictsChanged = Signal(dict)
    _requestPoll = Signal()

    def __init__(self, settings: Settings, controller: PipelineController | None = None,
                 parent: QWidget | None = None, poll_ms: int = 1000) -> None:
        super().__init__(parent)
        self.settings = settings
        self.controller = controller or PipelineController(settings, parent=self)
        self.last_facts: dict[str, Any] = {}
        self._busy = False
        self._broker_was_ready = False
        self.indicators: dict[str, Indicator] = {}
        self.buttons: dict[str, dict[str, QPushButton]] = {}
        self._build()

        self.worker = HealthWorker(settings)
        self._requestPoll.connect(self.worker.poll)
        self.worker.facts.connect(self._on_facts)
        self._thread = start_worker_thread(self, self.worker, "lakewatch-health")
        self.timer = QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self.poll)
        self.timer.start()
        self.controller.changed.connect(self._on_component_changed)
        self.controller.outputLine.connect(self._on_output)
        QTimer.singleShot(0, self.poll)

    # -- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.mode_label = QLabel(self._mode_text(None))
        self.mode_label.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.mode_label, 1)
        self.start_all_button = QPushButton("Start pipeline")
        self.start_all_button.setToolTip("Start every local component (Ctrl+R)")
        self.start_all_button.clicked.connect(self.start_all)
        self.stop_all_button = QPushButton("Stop pipeline")
        self.stop_all_button.setToolTip("Stop what this app started (Ctrl+Shift+R)")
        self.stop_all_button.clicked.connect(self.stop_all)
        top.addWidget(self.start_all_button)
        top.addWidget(self.stop_all_button)
        layout.addLayout(top)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color:#e74c3c")
        layout.addWidget(self.message)

        box = QGroupBox("Components")
        grid = QGridLayout(box)
        for row, (name, title) in enumerate(INDICATORS):
            indicator = Indicator(title)
            self.indicators[name] = indicator
            grid.addWidget(indicator, row, 0)
            if name in comps.COMPONENTS:
                buttons = {}
                for col, action in enumerate(("Start", "Stop", "Restart"), start=1):
                    button = QPushButton(action)
                    button.setObjectName(f"{action.lower()}-{name}")
                    button.clicked.connect(lambda _=False, a=action, n=name: self._act(a, n))
                    grid.addWidget(button, row, col)
                    buttons[action.lower()] = button
                self.buttons[name] = buttons
        grid.setColumnStretch(0, 1)
        layout.addWidget(box)

        logs = QGroupBox("Component log")
        log_layout = QVBoxLayout(logs)
        self.log_choice = QComboBox()
        self.log_choice.addItems(list(self.controller.components))
        self.log_choice.currentTextChanged.connect(self._show_log)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(LOG_LINES_KEPT)
        self.log_view.setFont(QFont("monospace"))
        log_layout.addWidget(self.log_choice)
        log_layout.addWidget(self.log_view, 1)
        layout.addWidget(logs, 1)

    # -- actions -----------------------------------------------------------------------
    def _act(self, action: str, name: str) -> None:
        if action == "Start":
            self._report([p for p in [self.controller.start(name)] if p])
        elif action == "Stop":
            self.controller.stop(name)
        else:
            self.controller.restart(name)

    def start_all(self) -> None:
        self._report(self.controller.start_all(self._broker_ready()))
        self.poll()

    def stop_all(self) -> None:
        self.controller.stop_all()

    def _report(self, problems: list[str]) -> None:
        self.message.setText("\n".join(problems))

    def _mode_text(self, supervisor_pid: int | None) -> str:
        text = (f"Attach mode: external Kafka at {self.settings.bootstrap_servers}"
                if self.settings.attached else
                f"Embedded broker at {self.settings.bootstrap_servers}")
        if supervisor_pid:
            text += (f" · a lakewatch pipeline supervisor (pid {supervisor_pid}) runs the "
                     "components; the app only watches them")
        return text

    def _broker_ready(self) -> bool:
        return bool(self.last_facts.get("broker_reachable"))

    # -- polling -----------------------------------------------------------------------
    def poll(self) -> None:
        if not self._busy:
            self._busy = True
            self._requestPoll.emit()

    def _on_facts(self, facts: dict[str, Any]) -> None:
        self._busy = False
        self.last_facts = facts
        alive = facts.get("alive", {})
        for name, status in facts["statuses"].items():
            external = (status is not None and alive.get(name)
                        and status.state not in checks.STOPPED_STATES
                        and not self.controller.is_running(name)
                        and name in self.controller.components)
            if external:
                self.controller.external.add(name)
            else:
                self.controller.external.discard(name)
        supervisor = facts.get("supervisor_pid")
        self.mode_label.setText(self._mode_text(supervisor))
        ready = self._broker_ready()
        if ready and not self._broker_was_ready and self.controller.pending:
            self._report(self.controller.broker_ready())
        self._broker_was_ready = ready
        self.refresh_verdicts()

    def _on_component_changed(self, name: str) -> None:
        self.refresh_verdicts()
        if name not in [self.log_choice.itemText(i) for i in range(self.log_choice.count())]:
            self.log_choice.addItem(name)

    def verdicts(self) -> dict[str, Verdict]:
        facts = self.last_facts
        now = time.time()
        statuses = facts.get("statuses", {})
        out: dict[str, Verdict] = {}
        for name in self.controller.components:
            if name == "broker":
                out[name] = checks.broker_verdict(
                    self.settings.attached, self.controller.facts("broker"),
                    bool(facts.get("broker_reachable")),
                    facts.get("broker_probe", "not probed yet"))
            else:
                out[name] = checks.component_verdict(
                    name, self.controller.facts(name), statuses.get(name), now,
                    alive=facts.get("alive", {}).get(name))
        detector = out.get("detector")
        if (detector is not None and detector.state == "off"
                and self.settings.detector.in_processor and "processor" in out):
            proc = out["processor"]
            out["detector"] = Verdict(proc.state, "runs inside the streaming processor: "
                                      + proc.reason)
        processor_running = out.get("processor", Verdict("off", "")).state in ("green", "amber")
        out["freshness"] = checks.freshness_verdict(
            facts.get("commit_age_s"), processor_running, facts.get("trigger_s", 2.0))
        freshness = facts.get("freshness_s")
        if freshness is not None:
            text = "∞" if freshness == float("inf") else f"{freshness:.1f} s"
            out["freshness"] = Verdict(out["freshness"].state,
                                       f"end-to-end {text}; {out['freshness'].reason}")
        out["lag"] = checks.lag_verdict(facts.get("lag_samples", []))
        return out

    def refresh_verdicts(self) -> None:
        verdicts = self.verdicts()
        for name, verdict in verdicts.items():
            indicator = self.indicators.get(name)
            if indicator is None:
                indicator = Indicator(name)
                self.indicators[name] = indicator
            indicator.set_verdict(verdict)
            buttons = self.buttons.get(name)
            if buttons and name not in self.controller.local_components():
                for button in buttons.values():
                    button.setEnabled(False)
                    button.setToolTip("runs inside the streaming processor"
                                      if name == "detector" else "attach mode: not local")
            elif buttons:
                running = self.controller.is_running(name)
                external = name in self.controller.external
                buttons["start"].setEnabled(not running and not external)
                buttons["stop"].setEnabled(running)
                buttons["restart"].setEnabled(running)
        self.verdictsChanged.emit({n: (v.state, v.reason) for n, v in verdicts.items()})

    # -- logs --------------------------------------------------------------------------
    def _on_output(self, name: str, stream: str, line: str) -> None:
        if name == self.log_choice.currentText():
            self.log_view.appendPlainText(line if stream == "stdout" else f"[err] {line}")

    def _show_log(self, name: str) -> None:
        self.log_view.clear()
        proc = self.controller.processes.get(name)
        if proc is not None:
            self.log_view.setPlainText("\n".join(
                line if stream == "stdout" else f"[err] {line}" for stream, line in proc.lines))

    # -- shutdown ----------------------------------------------------------------------
    def shutdown(self, stop_components: bool = True) -> None:
        self.timer.stop()
        if stop_components:
            self.controller.shutdown()
        stop_worker_thread(self._thread, 5000)
