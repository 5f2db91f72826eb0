"""Start, stop and restart the pipeline's components from the app.

Every component runs through ``ComponentProcess`` with the argv of
``pipeline.orchestrator.component_argv(component, settings)`` and the env of
``settings.to_env()``. Attach mode (external Kafka, or components already running under an
orchestrator) starts only what is not already running: an externally running component is
watched through its heartbeat, never started twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Signal

from desktop_app.health.checks import ProcessFacts
from desktop_app.process import ComponentProcess
from pipeline.settings import Settings

ArgvBuilder = Callable[[str, Settings], Sequence[str]]

COMPONENTS: tuple[str, ...] = ("broker", "generator", "processor", "detector")


def default_argv_builder() -> ArgvBuilder | None:
    """The pipeline's pure argv builder, or None while it is not available."""
    try:
        from pipeline.components import component_argv
    except ImportError:
        try:
            from pipeline.orchestrator import component_argv
        except ImportError:
            return None
    return component_argv


def child_env(settings: Settings) -> dict[str, str]:
    """The complete environment of a child: the orchestrator's rule (our environment minus
    inherited LAKEWATCH_* variables, plus ``settings.to_env()``, unbuffered Python)."""
    try:
        from pipeline.orchestrator import child_env as pipeline_child_env
    except ImportError:
        import os

        env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEWATCH_")}
        env.update(settings.to_env())
        env["PYTHONUNBUFFERED"] = "1"
        return env
    return pipeline_child_env(settings)


class PipelineController(QObject):
    """Owns the app's component processes; emits ``changed(name)`` on any state change."""

    changed = Signal(str)
    outputLine = Signal(str, str, str)  # component, stream, line

    def __init__(
        self,
        settings: Settings,
        argv_builder: ArgvBuilder | None = None,
        components: Sequence[str] = COMPONENTS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.argv_builder = argv_builder if argv_builder is not None else default_argv_builder()
        self.components = list(components)
        self.processes: dict[str, ComponentProcess] = {}
        self.started_at: dict[str, float] = {}
        self.external: set[str] = set()  # running outside the app (seen by the health worker)
        self.pending: list[str] = []     # waiting for the broker before they start

    # -- queries -----------------------------------------------------------------------
    def local_components(self) -> list[str]:
        """Components this app would run: no broker in attach mode, no separate detector
        when the detector runs inside the processor."""
        names = list(self.components)
        if self.settings.attached and "broker" in names:
            names.remove("broker")
        if self.settings.detector.in_processor and "detector" in names and "processor" in names:
            names.remove("detector")
        return names

    def facts(self, name: str) -> ProcessFacts:
        proc = self.processes.get(name)
        if proc is None:
            return ProcessFacts()
        return ProcessFacts(
            owned=True,
            running=proc.is_running(),
            started_at=self.started_at.get(name),
            exit_reason=proc.exit_reason,
            stop_requested=proc.stop_requested,
        )

    def is_running(self, name: str) -> bool:
        proc = self.processes.get(name)
        return proc is not None and proc.is_running()

    def any_running(self) -> bool:
        return any(p.is_running() for p in self.processes.values())

    # -- control -----------------------------------------------------------------------
    def register(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None,
                 grace_ms: int = 8000) -> ComponentProcess:
        """Create (or replace a stopped) process for a component with an explicit argv.

        ``env`` None gives the child exactly ``child_env(settings)``; a dict is added to
        this process's environment.
        """
        old = self.processes.get(name)
        if old is not None:
            if old.is_running():
                raise RuntimeError(f"{name} is running; stop it first")
            old.deleteLater()
        proc = ComponentProcess(name, argv, env if env is not None else child_env(self.settings),
                                grace_ms=grace_ms, inherit_env=env is not None, parent=self)
        proc.stateChanged.connect(lambda n=name: self.changed.emit(n))
        proc.outputLine.connect(lambda stream, line, n=name: self.outputLine.emit(n, stream, line))
        self.processes[name] = proc
        if name not in self.components:
            self.components.append(name)
        return proc

    def start(self, name: str) -> str | None:
        """Start one component; returns why not when it cannot be started."""
        if name in self.external:
            return f"{name} is already running outside the app"
        if self.is_running(name):
            return None
        proc = self.processes.get(name)
        if proc is None:
            if self.argv_builder is None:
                return "pipeline.orchestrator.component_argv is not available in this build"
            try:
                argv = list(self.argv_builder(name, self.settings))
            except Exception as exc:  # noqa: BLE001 - shown to the user, never swallowed
                return f"cannot build the command line of {name}: {exc}"
            proc = self.register(name, argv)
        self.started_at[name] = time.time()
        proc.start()
        self.changed.emit(name)
        return None

    def stop(self, name: str) -> None:
        if name in self.pending:
            self.pending.remove(name)
        proc = self.processes.get(name)
        if proc is not None:
            proc.stop()
        self.changed.emit(name)

    def restart(self, name: str) -> None:
        proc = self.processes.get(name)
        if proc is not None and proc.is_running():
            proc.exited.connect(self._restart_once(name))
            proc.stop()
        else:
            self.start(name)

    def _restart_once(self, name: str) -> Callable[..., None]:
        def again(*_args: object) -> None:
            proc = self.processes.get(name)
            if proc is not None:
                proc.exited.disconnect(again)
            self.start(name)
        return again

    def start_all(self, broker_ready: bool) -> list[str]:
        """Start every local component that is not running; the others wait for the broker.

        Returns the problems (one line each) for the user.
        """
        problems = []
        for name in self.local_components():
            if name in self.external or self.is_running(name):
                continue
            if name != "broker" and not broker_ready and "broker" in self.local_components():
                if name not in self.pending:
                    self.pending.append(name)
                continue
            problem = self.start(name)
            if problem:
                problems.append(problem)
        return problems

    def broker_ready(self) -> list[str]:
        """Called when the broker turns reachable: start whatever waited for it."""
        waiting, self.pending = self.pending, []
        return [p for p in (self.start(n) for n in waiting) if p]

    def stop_all(self) -> None:
        self.pending.clear()
        # consumers first, the broker last, so they can commit and flush
        for name in reversed(list(self.processes)):
            self.processes[name].stop()

    def shutdown(self, timeout_ms: int = 15000) -> None:
        """Blocking stop of everything this app started (window close)."""
        self.pending.clear()
        consumers = [p for n, p in self.processes.items() if n != "broker"]
        for proc in consumers:  # SIGTERM to all at once, then wait for each
            if proc.is_running():
                proc.stop()
        for proc in consumers:
            proc.stop_and_wait(timeout_ms)
        if "broker" in self.processes:
            self.processes["broker"].stop_and_wait(timeout_ms)
