"""The one QProcess wrapper the app uses to run pipeline components (broker, generator,
processor, detector) as child processes.

Modelled on Frescobaldi's job: started / finished / errorOccurred and both output streams are
wired; a process that never started still reports ``finished`` (QProcess would not); stop is
terminate first, then kill of the whole process tree after a grace period, so a Spark
driver's JVM is never orphaned; each run's QProcess is deleteLater'd when the next run
starts (or with its owner).
No shell is involved: argv goes straight to exec.
"""

from __future__ import annotations

import collections
import contextlib
import signal
from collections.abc import Mapping, Sequence

import psutil
from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

#: lines of output kept per component for the live log viewer
LOG_LINES_KEPT = 5000


def describe_exit(code: int, crashed: bool, last_stderr: str | None) -> str:
    """Why a process ended, for the health indicator's tooltip."""
    if crashed:
        try:
            name = signal.Signals(code).name
        except ValueError:
            name = "unknown signal"
        reason = f"killed by signal {code} ({name})"
    else:
        reason = f"exited with code {code}"
    if last_stderr:
        reason += f"; last stderr: {last_stderr}"
    return reason


class ComponentProcess(QObject):
    """One pipeline component run as a child process; restartable.

    ``env`` is added to this process's environment, or with ``inherit_env=False`` is the
    child's whole environment. Signals carry plain Python values; ``outputLine(stream,
    line)`` has stream "stdout" or "stderr". ``exited(code, crashed, reason)`` fires exactly
    once per run, also when the program could not be started (code -1).
    """

    started = Signal()
    exited = Signal(int, bool, str)
    errorOccurred = Signal(str)
    outputLine = Signal(str, str)
    stateChanged = Signal()

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        grace_ms: int = 8000,
        inherit_env: bool = True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if not argv:
            raise ValueError(f"{name}: empty command line")
        self.name = name
        self.argv = list(argv)
        self.env = dict(env or {})
        self.grace_ms = grace_ms
        self.inherit_env = inherit_env
        self.lines: collections.deque[tuple[str, str]] = collections.deque(maxlen=LOG_LINES_KEPT)
        self.last_stderr: str | None = None
        self.exit_code: int | None = None
        self.exit_reason: str | None = None
        self.stop_requested = False
        self._proc: QProcess | None = None
        self._finished_proc: QProcess | None = None
        self._pid: int = 0
        self._children: list[psutil.Process] = []
        self._partial = {"stdout": "", "stderr": ""}
        self._reported = True
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill_tree)

    # -- state -------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.state() != QProcess.ProcessState.NotRunning

    def pid(self) -> int:
        return self._pid if self.is_running() else 0

    # -- control -----------------------------------------------------------------------
    def start(self) -> None:
        if self.is_running():
            return
        self.stop_requested = False
        self.exit_code = None
        self.exit_reason = None
        self.last_stderr = None
        self._partial = {"stdout": "", "stderr": ""}
        self._reported = False
        if self._finished_proc is not None:
            self._finished_proc.deleteLater()
            self._finished_proc = None
        proc = QProcess(self)
        environment = (QProcessEnvironment.systemEnvironment() if self.inherit_env
                       else QProcessEnvironment())
        for key, value in self.env.items():
            environment.insert(key, value)
        proc.setProcessEnvironment(environment)
        proc.setProgram(self.argv[0])
        proc.setArguments(self.argv[1:])
        proc.started.connect(self._on_started)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_error)
        proc.readyReadStandardOutput.connect(lambda: self._read("stdout"))
        proc.readyReadStandardError.connect(lambda: self._read("stderr"))
        self._proc = proc
        proc.start()
        self.stateChanged.emit()

    def stop(self) -> None:
        """Ask politely (SIGTERM), then kill the whole tree after ``grace_ms``."""
        self.stop_requested = True
        if not self.is_running():
            return
        self._remember_children()
        assert self._proc is not None
        self._proc.terminate()
        self._kill_timer.start(self.grace_ms)

    def stop_and_wait(self, timeout_ms: int | None = None) -> bool:
        """Blocking stop for shutdown: terminate, wait, kill the tree; True once gone."""
        if not self.is_running():
            return True
        proc = self._proc
        assert proc is not None
        self.stop_requested = True
        self._remember_children()
        proc.terminate()
        if not proc.waitForFinished(timeout_ms if timeout_ms is not None else self.grace_ms):
            self._kill_tree()
            proc.waitForFinished(3000)
        self._kill_orphans()
        return not self.is_running()

    # -- internals ---------------------------------------------------------------------
    def _remember_children(self) -> None:
        if not self._pid:
            return
        with contextlib.suppress(psutil.Error):
            self._children = psutil.Process(self._pid).children(recursive=True)

    def _kill_tree(self) -> None:
        self._remember_children()
        if self._proc is not None and self.is_running():
            self._proc.kill()
        self._kill_orphans()

    def _kill_orphans(self) -> None:
        for child in self._children:
            with contextlib.suppress(psutil.Error):
                if child.is_running():
                    child.kill()
        self._children = []

    def _on_started(self) -> None:
        assert self._proc is not None
        self._pid = int(self._proc.processId())
        self.started.emit()
        self.stateChanged.emit()

    def _read(self, stream: str) -> None:
        proc = self._proc
        if proc is None:
            return
        raw = proc.readAllStandardOutput() if stream == "stdout" else proc.readAllStandardError()
        text = self._partial[stream] + bytes(raw.data()).decode("utf-8", errors="replace")
        *complete, self._partial[stream] = text.split("\n")
        for line in complete:
            self._emit_line(stream, line.rstrip("\r"))

    def _emit_line(self, stream: str, line: str) -> None:
        self.lines.append((stream, line))
        if stream == "stderr" and line.strip():
            self.last_stderr = line.strip()[:300]
        self.outputLine.emit(stream, line)

    def _flush_partial(self) -> None:
        for stream in ("stdout", "stderr"):
            if self._partial[stream]:
                self._emit_line(stream, self._partial[stream])
                self._partial[stream] = ""

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        proc = self._proc
        if proc is not None:
            self._read("stdout")
            self._read("stderr")
        self._flush_partial()
        self._kill_timer.stop()
        self._kill_orphans()
        crashed = status == QProcess.ExitStatus.CrashExit
        self._report(code, crashed, describe_exit(code, crashed, self.last_stderr))

    def _on_error(self, error: QProcess.ProcessError) -> None:
        proc = self._proc
        message = proc.errorString() if proc is not None else str(error)
        self.errorOccurred.emit(message)
        if error == QProcess.ProcessError.FailedToStart:
            # finished() never comes for a process that did not start: end the run here.
            self._report(-1, False, f"could not start {self.argv[0]}: {message}")

    def _report(self, code: int, crashed: bool, reason: str) -> None:
        if self._reported:
            return
        self._reported = True
        self.exit_code = code
        self.exit_reason = reason
        self._pid = 0
        # Keep the finished QProcess until the next start: deleting it while its own signal
        # is being delivered (or racing the owner's destruction) crashes PySide.
        self._finished_proc, self._proc = self._proc, None
        self.exited.emit(code, crashed, reason)
        self.stateChanged.emit()
