"""``lakewatch pipeline`` end to end with the real broker component: a detached supervisor,
no duplicates, crash restart, status, and stops that leave no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from pipeline.settings import load_settings
from pipeline.status import read_status
from pipeline.supervisor.daemon import kafka_ready
from pipeline.supervisor.processes import pid_path
from tests.helpers.ports import free_port

PY = sys.executable


@pytest.fixture
def own(tmp_path):
    """Settings with their own data dir and broker ports (apart from the session broker)."""
    overrides = {
        "storage.data_dir": str(tmp_path / "data"),
        "broker.port": free_port(),
        "broker.controller_port": free_port(),
        "broker.heap_mb": 256,
        "orchestrator.backoff_initial_s": 0.5,
    }
    settings = load_settings(None, overrides)
    settings_args = [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]
    yield settings, settings_args
    # whatever happened, leave nothing running
    subprocess.run([PY, "-m", "pipeline", *settings_args, "pipeline", "stop"],
                   capture_output=True, timeout=120, check=False)


def lakewatch(args, *extra, timeout=240):
    return subprocess.run([PY, "-m", "pipeline", *args, *extra], capture_output=True, text=True,
                          timeout=timeout, check=False)


def ours(settings) -> dict[str, list[psutil.Process]]:
    """Our supervisor, broker wrappers and broker JVMs (by data dir), zombies excluded."""
    data = str(settings.data_dir)
    found: dict[str, list[psutil.Process]] = {"supervisor": [], "wrapper": [], "jvm": []}
    for p in psutil.process_iter(["cmdline", "status"]):
        cmd = p.info["cmdline"] or []
        if p.info["status"] == psutil.STATUS_ZOMBIE or not cmd:
            continue
        try:
            env_dir = p.environ().get("LAKEWATCH_STORAGE__DATA_DIR")
        except psutil.Error:
            env_dir = None
        if cmd[-2:] == ["pipeline", "supervise"] or "supervise" in cmd[-3:]:
            if env_dir == data:
                found["supervisor"].append(p)
        elif cmd[-2:] == ["broker", "run"] and env_dir == data:
            found["wrapper"].append(p)
        elif "kafka.Kafka" in cmd and any(data in a for a in cmd):
            found["jvm"].append(p)
    return found


def counts(settings):
    return {k: len(v) for k, v in ours(settings).items()}


def wait_for(cond, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_daemon_start_no_duplicates_crash_restart_status_stop(own):
    settings, args = own
    started = lakewatch(args, "pipeline", "start", "broker")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "broker" in started.stdout and "running" in started.stdout
    assert kafka_ready(settings)
    assert counts(settings) == {"supervisor": 1, "wrapper": 1, "jvm": 1}
    procs = ours(settings)
    wrapper = procs["wrapper"][0]
    # the start command returned; the daemon is not its child (double fork) and has no terminal
    assert procs["supervisor"][0].ppid() != os.getpid()
    assert read_status(settings, "supervisor").components["broker"].pid == wrapper.pid

    # a second start starts nothing
    again = lakewatch(args, "pipeline", "start", "broker")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    assert counts(settings) == {"supervisor": 1, "wrapper": 1, "jvm": 1}
    assert ours(settings)["wrapper"][0].pid == wrapper.pid

    # status, as JSON and as a table (also through the original project's --action flag)
    st = lakewatch(args, "pipeline", "status", "--json")
    assert st.returncode == 0
    data = json.loads(st.stdout)
    row = data["components"]["broker"]
    assert data["supervisor"]["running"] is True
    assert (row["running"], row["state"], row["pid"], row["restarts"]) == (
        True, "running", wrapper.pid, 0)
    assert row["uptime_s"] > 0 and row["last_heartbeat_age_s"] < 10
    legacy = subprocess.run([PY, "-m", "pipeline.orchestrator", *args, "--action", "status"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert legacy.returncode == 0
    assert f"broker     running  {wrapper.pid}" in legacy.stdout

    # SIGKILL the broker component: its JVM is swept, the broker comes back, the crash shows
    old_jvm = ours(settings)["jvm"][0]
    os.kill(wrapper.pid, signal.SIGKILL)
    wait_for(lambda: (r := read_status(settings, "supervisor").components["broker"])
             .restarts == 1 and r.state == "running", what="broker restarted")
    assert not old_jvm.is_running()
    assert kafka_ready(settings)
    assert counts(settings) == {"supervisor": 1, "wrapper": 1, "jvm": 1}
    data = json.loads(lakewatch(args, "pipeline", "status", "--json").stdout)
    row = data["components"]["broker"]
    assert row["restarts"] == 1 and row["last_crash"]["reason"] == "killed by SIGKILL"
    assert row["last_error"] == "killed by SIGKILL"
    log_text = (settings.run_dir / "broker.log").read_text()
    assert "broker killed by SIGKILL after" in log_text

    # restart one component through the running supervisor: a new broker, not a crash
    before = ours(settings)["wrapper"][0].pid
    rs = lakewatch(args, "pipeline", "restart", "broker")
    assert rs.returncode == 0, rs.stdout + rs.stderr
    assert counts(settings) == {"supervisor": 1, "wrapper": 1, "jvm": 1}
    assert ours(settings)["wrapper"][0].pid != before
    assert read_status(settings, "supervisor").components["broker"].restarts == 1
    assert kafka_ready(settings)

    # stop one component: the supervisor stays, the broker goes
    one = lakewatch(args, "pipeline", "stop", "broker")
    assert one.returncode == 0 and one.stdout.strip() == "stopped broker", one.stdout
    assert counts(settings) == {"supervisor": 1, "wrapper": 0, "jvm": 0}
    assert json.loads(lakewatch(args, "pipeline", "status", "--json").stdout)[
        "components"]["broker"]["state"] == "stopped"

    # stop: nothing of ours is left, pid files are gone
    stopped = lakewatch(args, "pipeline", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "pipeline stopped" in stopped.stdout
    assert counts(settings) == {"supervisor": 0, "wrapper": 0, "jvm": 0}
    assert not pid_path(settings.run_dir, "supervisor").exists()
    assert not pid_path(settings.run_dir, "broker").exists()
    assert not kafka_ready(settings, timeout=1.0)
    st = lakewatch(args, "pipeline", "status")
    assert st.returncode == 3 and "supervisor: not running" in st.stdout


@pytest.mark.slow
def test_foreground_stops_cleanly_on_ctrl_c(own):
    """``--foreground`` is run_foreground, what ``lakewatch --start-pipeline`` runs.

    (SIGTERM takes the same handler; the daemon test stops its supervisor with SIGTERM.)
    """
    settings, args = own
    proc = subprocess.Popen([PY, "-m", "pipeline", *args, "pipeline", "start", "broker",
                             "--foreground"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        wait_for(lambda: getattr(read_status(settings, "supervisor"), "state", None) == "running",
                 what="foreground pipeline running")
        assert kafka_ready(settings)
        assert counts(settings)["wrapper"] == 1 and counts(settings)["jvm"] == 1
        # a second supervisor on the same data dir refuses to start
        dup = lakewatch(args, "pipeline", "start", "broker", "--foreground", timeout=60)
        assert dup.returncode == 1 and "already running" in dup.stderr
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "stopping broker" in out and "supervisor" in out
    assert counts(settings) == {"supervisor": 0, "wrapper": 0, "jvm": 0}
    assert read_status(settings, "supervisor").state == "stopped"
    assert read_status(settings, "broker").state == "stopped"  # the broker's own clean stop
