"""Health panel and the component process wrapper, with real child processes."""

from __future__ import annotations

import os
import signal
import sys
import time

import psutil
import pytest

from desktop_app.health import checks
from desktop_app.health.checks import ProcessFacts
from desktop_app.health.controller import PipelineController
from desktop_app.health.panel import HealthPanel
from desktop_app.process import ComponentProcess
from pipeline import freshness
from pipeline.status import ProcessorStatus, write_status

SLEEPER = [sys.executable, "-c",
           "import sys, time; print('ready', flush=True); "
           "print('about to sleep', file=sys.stderr, flush=True); time.sleep(60)"]


@pytest.fixture
def panel(qtbot, settings):
    controller = PipelineController(settings, argv_builder=lambda name, s: SLEEPER)
    widget = HealthPanel(settings, controller, poll_ms=200)
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()


def test_killed_component_turns_red_within_two_seconds(qtbot, panel):
    controller = panel.controller
    assert controller.start("generator") is None
    proc = controller.processes["generator"]
    qtbot.waitUntil(lambda: proc.pid() > 0, timeout=5000)
    qtbot.waitUntil(lambda: any(line == "about to sleep" for _, line in proc.lines), timeout=5000)
    indicator = panel.indicators["generator"]
    assert indicator.state == "amber"  # running, no heartbeat yet
    assert "starting" in indicator.reason
    killed_at = time.monotonic()
    os.kill(proc.pid(), signal.SIGKILL)
    qtbot.waitUntil(lambda: indicator.state == "red", timeout=2000)
    assert time.monotonic() - killed_at < 2.0
    assert "killed by signal 9 (SIGKILL)" in indicator.reason
    assert "last stderr: about to sleep" in indicator.reason
    assert "SIGKILL" in indicator.toolTip()
    assert panel.buttons["generator"]["start"].isEnabled()


def test_heartbeat_makes_component_green_and_stop_turns_it_off(qtbot, panel, settings):
    controller = panel.controller
    controller.start("processor")
    proc = controller.processes["processor"]
    qtbot.waitUntil(lambda: proc.pid() > 0, timeout=5000)
    write_status(settings, "processor", lag=0, events_per_s=12.0)
    indicator = panel.indicators["processor"]
    qtbot.waitUntil(lambda: indicator.state == "green", timeout=3000)
    assert "heartbeat" in indicator.reason
    controller.stop("processor")
    qtbot.waitUntil(lambda: not proc.is_running(), timeout=10000)
    qtbot.waitUntil(lambda: indicator.state == "off", timeout=2000)
    assert indicator.reason == "processor stopped"


def test_external_component_is_not_started_twice(qtbot, panel, settings):
    write_status(settings, "generator")  # this test process plays the external generator
    qtbot.waitUntil(lambda: "generator" in panel.controller.external, timeout=3000)
    assert panel.controller.start("generator") == "generator is already running outside the app"
    assert "started outside the app" in panel.indicators["generator"].reason


def test_missing_program_reports_why(qtbot):
    proc = ComponentProcess("x", ["/nonexistent/lakewatch-binary"], {})
    with qtbot.waitSignal(proc.exited, timeout=5000) as blocker:
        proc.start()
    code, crashed, reason = blocker.args
    assert code == -1 and not crashed
    assert "could not start /nonexistent/lakewatch-binary" in reason


def test_stop_kills_the_whole_tree_after_grace(qtbot):
    # A child that ignores SIGTERM and has a grandchild: stop must leave no orphan.
    script = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
              "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
              "print(p.pid, flush=True); time.sleep(60)")
    proc = ComponentProcess("stubborn", [sys.executable, "-c", script], {}, grace_ms=300)
    proc.start()
    qtbot.waitUntil(lambda: any(s == "stdout" for s, _ in proc.lines), timeout=5000)
    grandchild = int(next(line for s, line in proc.lines if s == "stdout"))
    assert psutil.pid_exists(grandchild)
    with qtbot.waitSignal(proc.exited, timeout=5000) as blocker:
        proc.stop()
    assert blocker.args[1] is True  # killed, not exited
    qtbot.waitUntil(lambda: not _alive(grandchild), timeout=3000)


def test_child_gets_settings_env(qtbot, settings):
    proc = ComponentProcess("env", [sys.executable, "-c",
                                    "import os; print(os.environ['LAKEWATCH_KAFKA__TOPIC'])"],
                            settings.to_env())
    with qtbot.waitSignal(proc.exited, timeout=5000):
        proc.start()
    assert ("stdout", settings.kafka.topic) in proc.lines
    assert proc.exit_reason == "exited with code 0"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# -- pure rules --------------------------------------------------------------------------
def test_lag_verdicts():
    assert checks.lag_verdict([]).state == "off"
    assert checks.lag_verdict([(0, 5), (1, 3), (2, 0)]).state == "green"
    assert checks.lag_verdict([(0, 5), (1, 30), (2, 300)]).state == "amber"
    rising = [(t, 20_000 + t * 100) for t in range(0, 61, 5)]
    assert checks.lag_verdict(rising).state == "red"
    assert checks.lag_verdict([(0, 2_000_000)]).state == "red"


def test_freshness_rules():
    assert freshness.end_to_end_freshness_s(None, 0, 10) is None
    assert freshness.end_to_end_freshness_s(3.0, 0, 10, trigger_s=2) == 3.0
    assert freshness.end_to_end_freshness_s(3.0, 500, 100, trigger_s=2) == 3.0 + 5.0 + 2.0
    assert checks.freshness_verdict(5, True).state == "green"
    assert checks.freshness_verdict(100, True).state == "amber"
    assert checks.freshness_verdict(1000, True).state == "red"
    assert checks.freshness_verdict(1000, False).state == "amber"


def test_component_verdicts():
    now = 1000.0
    dead = ProcessorStatus(pid=999_999_999, heartbeat=now - 5)
    v = checks.component_verdict("processor", ProcessFacts(), dead, now, alive=False)
    assert v.state == "red" and "not running" in v.reason
    stale = ProcessorStatus(pid=os.getpid(), heartbeat=now - 100)
    assert checks.component_verdict("processor", ProcessFacts(), stale, now,
                                    alive=True).state == "red"
    err = ProcessorStatus(pid=os.getpid(), heartbeat=now - 1, last_error="boom")
    v = checks.component_verdict("processor", ProcessFacts(), err, now, alive=True)
    assert v.state == "amber" and "boom" in v.reason
    assert checks.component_verdict("x", ProcessFacts(), None, now).state == "off"


def test_attach_mode_starts_only_local_components(qtbot, settings):
    settings.kafka.bootstrap_servers = "127.0.0.1:1"  # external cluster: no local broker
    controller = PipelineController(settings, argv_builder=lambda name, s: SLEEPER)
    # pipeline.components.ORDER: consumers before the producer
    assert controller.local_components() == ["processor", "generator"]
    try:
        assert controller.start_all(broker_ready=False) == []
        assert sorted(controller.processes) == ["generator", "processor"]
        assert controller.pending == []
    finally:
        controller.shutdown(3000)
    assert not controller.any_running()


def test_components_wait_for_the_broker(qtbot, settings):
    """A real TCP listener plays the broker: the others start once its port answers."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.broker.port = port
    listener = [sys.executable, "-c",
                "import socket, time; s = socket.socket(); "
                "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                f"time.sleep(0.5); s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)"]
    controller = PipelineController(
        settings, argv_builder=lambda name, s: listener if name == "broker" else SLEEPER)
    panel = HealthPanel(settings, controller, poll_ms=200)
    qtbot.addWidget(panel)
    try:
        panel.start_all()
        assert controller.is_running("broker") or "broker" in controller.processes
        assert controller.pending == ["processor", "generator"]
        qtbot.waitUntil(lambda: controller.is_running("processor")
                        and controller.is_running("generator"), timeout=10000)
        qtbot.waitUntil(lambda: panel.indicators["broker"].state == "green", timeout=3000)
        assert "embedded broker" in panel.indicators["broker"].reason
    finally:
        panel.shutdown()
    assert not controller.any_running()


def test_processor_heartbeat_fields():
    now = 1000.0
    failed = ProcessorStatus(pid=os.getpid(), heartbeat=now, state="failed",
                             last_error="CheckpointMismatch: other topic")
    v = checks.component_verdict("processor", ProcessFacts(), failed, now, alive=True)
    assert v.state == "red" and "CheckpointMismatch" in v.reason
    lost = ProcessorStatus(pid=os.getpid(), heartbeat=now, data_loss=True)
    assert checks.component_verdict("processor", ProcessFacts(), lost, now,
                                    alive=True).state == "red"
    status = ProcessorStatus.model_validate(
        {"queries": {"ingest": {"batch_ms": 4500}, "metrics_10s": {"batch_ms": None}}})
    assert freshness.batch_seconds(status, 2.0) == 4.5
    assert freshness.batch_seconds(None, 2.0) == 2.0
    # the lag has one typed field (no guessing among key names)
    assert freshness.processor_lag(ProcessorStatus(lag=7)) == 7.0
