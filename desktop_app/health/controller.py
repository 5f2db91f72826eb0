"""Start, stop and restart the pipeline's components from the app.

The components, their order, what each needs, which of them run locally (attach mode, the
detector inside the processor) and the command line and environment of each are the
pipeline's own (``pipeline.components``): every component runs through ``ComponentProcess``
with the argv of ``component_argv(component, settings)`` and the env of ``child_env(settings)``.
Attach mode (external Kafka, or components already running under an orchestrator) starts only
what is not already running: an externally running component is watched through its
heartbeat, never started twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Signal

from desktop_app.health.checks import ProcessFacts
from desktop_app.process import ComponentProcess
from pipeline import components as comps
from pipeline.components import child_env
from pipeline.settings import Settings

ArgvBuilder = Callable[[str, Settings], Sequence[str]]

#: the components the app controls, in start order
COMPONENTS: tuple[str, ...] = comps.ORDER


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
        self.argv_builder: ArgvBuilder = (argv_builder if argv_builder is not None
                                          else comps.component_argv)
        self.components = list(components)
        self.processes: dict[str, ComponentProcess] = {}
        self.started_at: dict[str, float] = {}
        self.external: set[str] = set()  # running outside the app (seen by the health worker)
        self.pending: list[str] = []     # waiting for the broker before they start

    # -- queries -----------------------------------------------------------------------
    def local_components(self) -> list[str]:
        """Components this app would run, in start order: no broker in attach mode, no separate
        detector when the detector runs inside the processor (``pipeline.components.resolve``);
        components registered under other names come last."""
        known = [n for n in self.components if n in comps.COMPONENTS]
        local = [n for n in comps.resolve(known, self.settings) if n in known]
        return local + [n for n in self.components if n not in comps.COMPONENTS]

    def waits_for_broker(self, name: str) -> bool:
        """Whether ``name`` needs the broker and this app runs it."""
        needs = comps.COMPONENTS[name].needs if name in comps.COMPONENTS else (comps.BROKER,)
        return (name != comps.BROKER and comps.BROKER in needs
                and comps.BROKER in self.local_components())

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
            if not broker_ready and self.waits_for_broker(name):
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
        consumers = [p for n, p in self.processes.items() if n != comps.BROKER]
        for proc in consumers:  # SIGTERM to all at once, then wait for each
            if proc.is_running():
                proc.stop()
        for proc in consumers:
            proc.stop_and_wait(timeout_ms)
        if comps.BROKER in self.processes:
            self.processes[comps.BROKER].stop_and_wait(timeout_ms)
