"""The Supervisor with real child processes: order, readiness, crash restarts with backoff,
no duplicates, clean stops that leave no process behind."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from pipeline.components import child_env
from pipeline.settings import load_settings
from pipeline.status import read_status
from pipeline.supervisor.children import ChildSpec, Supervisor
from pipeline.supervisor.processes import log_path, pid_path, read_pid_file, write_pid_file

# A small component: heartbeats through pipeline.status using the config it gets from the
# environment; on SIGTERM records when it stopped and exits 0. Options via argv (not config):
#   grandchild  also spawn a long sleeping subprocess (a stand-in for a JVM)
#   stubborn    ignore SIGTERM
CHILD = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    from pipeline.settings import load_settings
    from pipeline.status import write_status

    name = sys.argv[1]
    opts = set(sys.argv[2:])
    settings = load_settings()
    started = time.time()
    stop = []
    if "stubborn" in opts:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *a: stop.append(time.time()))
    extra = {}
    if "grandchild" in opts:
        gc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", sys.argv[0]])
        extra["grandchild"] = gc.pid
    print(f"{name} up", flush=True)
    n = 0
    first_beat = time.time()
    while not stop:
        n += 1
        write_status(settings, name, state="running", beats=n, events_per_s=10.0 * n,
                     started=started, first_beat=first_beat, topic=settings.kafka.topic,
                     **extra)
        time.sleep(0.1)
    if "grandchild" in opts:
        gc.terminate()
        gc.wait()
    write_status(settings, name, state="stopped", stopped_at=stop[0], started=started, **extra)
    print(f"{name} stopped", flush=True)
    """
)


@pytest.fixture
def cfg(tmp_path):
    return load_settings(
        None,
        {
            "storage.data_dir": str(tmp_path / "data"),
            "kafka.topic": "sup-test",
            "orchestrator.backoff_initial_s": 0.5,
            "orchestrator.backoff_max_s": 4.0,
            "orchestrator.healthy_after_s": 30.0,
        },
    )


@pytest.fixture
def script(tmp_path) -> Path:
    path = tmp_path / "child.py"
    path.write_text(CHILD)
    return path


def spec(cfg, script, name, *opts, needs=(), ready=None, stop_timeout=10.0, ready_timeout=20.0):
    return ChildSpec(
        name=name,
        argv=[sys.executable, str(script), name, *opts],
        env=child_env(cfg),
        needs=needs,
        ready=ready,
        ready_timeout_s=ready_timeout,
        stop_timeout_s=stop_timeout,
    )


def beating(cfg, name):
    """Readiness probe: the child's own heartbeat exists."""

    def probe():
        st = read_status(cfg, name)
        return bool(st and st.state == "running")

    return probe


def wait_for(cond, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Running:
    """Drives a Supervisor's run loop in a thread (what the supervisor process does)."""

    def __init__(self, sup: Supervisor, on_tick=None):
        self.sup = sup
        self.stop = threading.Event()
        self.thread = threading.Thread(target=sup.run, args=(self.stop, 0.05, on_tick),
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.sup

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive()


def procs_running(script: Path) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        cmd = p.info["cmdline"] or []
        if str(script) in cmd and p.info["status"] != psutil.STATUS_ZOMBIE:
            out.append(p)
    return out


def heartbeat(cfg, name) -> dict:
    """``name``'s typed status as plain data ({} before its first write)."""
    st = read_status(cfg, name)
    return st.model_dump() if st is not None else {}


def sup_status(cfg):
    return heartbeat(cfg, "supervisor")


def comp(cfg, name):
    """The supervisor's row for ``name`` (a blank one before its first status write)."""
    blank = {"state": None, "pid": None, "restarts": 0, "crashes": 0, "last_crash": None}
    return sup_status(cfg).get("components", {}).get(name, blank)


def test_start_in_order_status_and_clean_reverse_stop(cfg, script):
    specs = [
        spec(cfg, script, "alpha", "grandchild", ready=beating(cfg, "alpha")),
        spec(cfg, script, "beta", needs=("alpha",), ready=beating(cfg, "beta")),
        spec(cfg, script, "gamma", needs=("beta",)),
    ]
    sup = Supervisor(cfg, specs)
    sup.want(["alpha", "beta", "gamma"])
    with Running(sup):
        wait_for(lambda: sup_status(cfg).get("state") == "running", what="all running")
        snap = sup_status(cfg)["components"]
        assert [snap[n]["state"] for n in ("alpha", "beta", "gamma")] == ["running"] * 3
        pids = {n: snap[n]["pid"] for n in snap}
        for name, pid in pids.items():
            # pid file names the live process; the heartbeat comes from that process and
            # carries the config it received through the environment
            assert read_pid_file(pid_path(cfg.run_dir, name)).pid == pid
            hb = wait_for(lambda n=name: heartbeat(cfg, n), what=f"{name} heartbeat")
            assert hb["pid"] == pid and hb["topic"] == "sup-test"
            assert f"{name} up" in log_path(cfg.run_dir, name).read_text()
        # dependency order: beta spawned only after alpha was ready (its heartbeat existed)
        assert snap["beta"]["started_at"] > heartbeat(cfg, "alpha")["first_beat"]
        assert snap["gamma"]["started_at"] > heartbeat(cfg, "beta")["first_beat"]
        grandchild = heartbeat(cfg, "alpha")["grandchild"]
        assert psutil.pid_exists(grandchild)
        assert len(procs_running(script)) == 4  # three children + alpha's grandchild
    # after stop: nothing left, pid files gone, stopped in reverse order, each cleanly (SIGTERM)
    assert procs_running(script) == []
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie"
    for name in ("alpha", "beta", "gamma"):
        assert not pid_path(cfg.run_dir, name).exists()
    stopped = {n: heartbeat(cfg, n)["stopped_at"] for n in ("alpha", "beta", "gamma")}
    assert stopped["gamma"] < stopped["beta"] < stopped["alpha"]
    final = sup_status(cfg)
    assert {c["state"] for c in final["components"].values()} == {"stopped"}
    assert "stopped gamma (exited with code 0)" in log_path(cfg.run_dir, "gamma").read_text()


def test_sigkilled_component_is_restarted_with_backoff_and_crash_reported(cfg, script):
    alive = beating(cfg, "alpha")
    probe = lambda: alive() and heartbeat(cfg, "alpha")["pid"] == alpha_pid()  # noqa: E731
    alpha_pid = lambda: int(pid_path(cfg.run_dir, "alpha").read_text().split()[0])  # noqa: E731
    sup = Supervisor(cfg, [spec(cfg, script, "alpha", ready=probe), spec(cfg, script, "beta")])
    sup.want(["alpha", "beta"])
    with Running(sup):
        wait_for(lambda: sup_status(cfg).get("state") == "running", what="running")
        beta_pid = comp(cfg, "beta")["pid"]
        delays = []
        pid = comp(cfg, "alpha")["pid"]
        for attempt in (1, 2, 3):
            killed_at = time.time()
            os.kill(pid, signal.SIGKILL)
            row = wait_for(
                lambda a=attempt: (r := comp(cfg, "alpha"))["restarts"] == a
                and r["state"] == "running"
                and r,
                what=f"restart {attempt}",
            )
            new_pid = row["pid"]
            assert new_pid != pid and psutil.pid_exists(new_pid)
            delays.append(row["started_at"] - killed_at)
            crash = row["last_crash"]
            assert crash["exit_code"] == -signal.SIGKILL
            assert crash["reason"] == "killed by SIGKILL"
            assert crash["restart_in_s"] == [0.5, 1.0, 2.0][attempt - 1]
            assert "alpha up" in "\n".join(crash["log_tail"])
            assert read_pid_file(pid_path(cfg.run_dir, "alpha")).pid == new_pid
            pid = new_pid
        # exponential backoff: 0.5 s, 1 s, 2 s (plus the poll interval and Python start-up)
        for got, want in zip(delays, [0.5, 1.0, 2.0], strict=True):
            assert want <= got < want + 1.5, delays
        assert comp(cfg, "alpha")["crashes"] == 3
        # the neighbour was never touched
        assert comp(cfg, "beta")["pid"] == beta_pid
        text = log_path(cfg.run_dir, "alpha").read_text()
        assert text.count("alpha killed by SIGKILL after") == 3
        assert "restarting in 2.0 s" in text
    assert procs_running(script) == []


def test_a_component_that_exits_with_an_error_is_reported(cfg, script):
    bad = ChildSpec(
        name="bad",
        argv=[sys.executable, "-c", "import sys; print('boom: no such table', flush=True); "
              "sys.exit(3)"],
        env=child_env(cfg),
    )
    sup = Supervisor(cfg, [bad])
    sup.want(["bad"])
    with Running(sup):
        row = wait_for(lambda: (r := comp(cfg, "bad"))["crashes"] >= 2 and r,
                       what="two crashes")
        assert row["last_crash"]["exit_code"] == 3
        assert row["last_crash"]["reason"] == "exited with code 3"
        assert "boom: no such table" in row["last_crash"]["log_tail"]
        assert sup_status(cfg)["state"] in ("degraded", "starting")


def test_second_supervisor_adopts_instead_of_duplicating(cfg, script):
    specs = [spec(cfg, script, "alpha"), spec(cfg, script, "beta", needs=("alpha",))]
    first = Supervisor(cfg, specs)
    first.want(["alpha", "beta"])
    wait_for(lambda: (first.poll(), first.overall_state() == "running")[1], what="first up")
    pids = {n: r["pid"] for n, r in first.snapshot().items()}
    # the first supervisor "dies" without stopping anything; a new one starts the same set
    second = Supervisor(cfg, specs)
    second.want(["alpha", "beta"])
    wait_for(lambda: (second.poll(), second.overall_state() == "running")[1], what="adopted")
    assert {n: r["pid"] for n, r in second.snapshot().items()} == pids
    assert sorted(p.pid for p in procs_running(script)) == sorted(pids.values())
    # an adopted child that dies is noticed and restarted too
    os.kill(pids["beta"], signal.SIGKILL)
    wait_for(lambda: (second.poll(), second.snapshot()["beta"]["restarts"] == 1)[1],
             what="adopted child restarted")
    second.stop_all()
    assert procs_running(script) == []


def test_stale_pid_files_are_replaced(cfg, script):
    cfg.run_dir.mkdir(parents=True)
    # a pid file naming a live but unrelated process (this test runner) ...
    write_pid_file(pid_path(cfg.run_dir, "alpha"), psutil.Process())
    # ... and one naming a process that no longer exists
    gone = psutil.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    write_pid_file(pid_path(cfg.run_dir, "beta"), gone)
    specs = [spec(cfg, script, "alpha"), spec(cfg, script, "beta")]
    assert read_pid_file(pid_path(cfg.run_dir, "alpha"), specs[0].argv[1:]) is None
    assert not pid_path(cfg.run_dir, "alpha").exists()
    write_pid_file(pid_path(cfg.run_dir, "alpha"), psutil.Process())
    sup = Supervisor(cfg, specs)
    sup.want(["alpha", "beta"])
    with Running(sup):
        wait_for(lambda: sup_status(cfg).get("state") == "running", what="running")
        rows = sup_status(cfg)["components"]
        assert rows["alpha"]["pid"] not in (os.getpid(), None)
        assert rows["beta"]["pid"] != gone.pid
        assert len(procs_running(script)) == 2
        assert read_pid_file(pid_path(cfg.run_dir, "alpha")).pid == rows["alpha"]["pid"]
    assert psutil.pid_exists(os.getpid())  # the unrelated process was never signalled


def test_stubborn_child_and_its_children_are_killed_after_the_grace(cfg, script):
    sup = Supervisor(cfg, [spec(cfg, script, "alpha", "stubborn", "grandchild", stop_timeout=1.0)])
    sup.want(["alpha"])
    with Running(sup):
        wait_for(lambda: (heartbeat(cfg, "alpha") or {}).get("grandchild"), what="grandchild")
        grandchild = heartbeat(cfg, "alpha")["grandchild"]
        t0 = time.monotonic()
    took = time.monotonic() - t0
    assert 1.0 <= took < 10.0
    assert procs_running(script) == []
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie"
    assert "killed by SIGKILL" in log_path(cfg.run_dir, "alpha").read_text()


def test_crashed_child_leaves_no_orphan(cfg, script):
    sup = Supervisor(cfg, [spec(cfg, script, "alpha", "grandchild", stop_timeout=2.0)])
    sup.want(["alpha"])
    with Running(sup):
        hb = wait_for(lambda: (heartbeat(cfg, "alpha") or {}).get("grandchild")
                      and heartbeat(cfg, "alpha"), what="grandchild")
        os.kill(hb["pid"], signal.SIGKILL)
        # the orphaned grandchild (think: a JVM holding the broker port) is swept before restart
        wait_for(lambda: not psutil.pid_exists(hb["grandchild"])
                 or psutil.Process(hb["grandchild"]).status() == "zombie", what="orphan swept")
        wait_for(lambda: comp(cfg, "alpha")["restarts"] == 1, what="restart")
    assert procs_running(script) == []


def test_readiness_timeout_counts_as_a_crash(cfg, script):
    sup = Supervisor(cfg, [
        spec(cfg, script, "alpha", ready=lambda: False, ready_timeout=1.0, stop_timeout=2.0),
        spec(cfg, script, "beta", needs=("alpha",)),
    ])
    sup.want(["alpha", "beta"])
    with Running(sup):
        row = wait_for(lambda: (r := comp(cfg, "alpha"))["last_crash"] and r,
                       what="ready timeout")
        assert row["last_crash"]["reason"] == "not ready after 1 s"
        # beta never started: what it needs never became ready
        assert comp(cfg, "beta")["state"] == "waiting"
        assert not pid_path(cfg.run_dir, "beta").exists()
    assert procs_running(script) == []


def test_control_unwant_restart(cfg, script):
    specs = [spec(cfg, script, "alpha"), spec(cfg, script, "beta", needs=("alpha",))]
    sup = Supervisor(cfg, specs)
    sup.want(["alpha", "beta"])
    wait_for(lambda: (sup.poll(), sup.overall_state() == "running")[1], what="up")
    alpha = sup.snapshot()["alpha"]["pid"]
    beta = sup.snapshot()["beta"]["pid"]
    sup.restart(["beta"])
    wait_for(lambda: (sup.poll(), sup.snapshot()["beta"]["state"] == "running")[1], what="restart")
    assert sup.snapshot()["beta"]["pid"] != beta
    assert sup.snapshot()["alpha"]["pid"] == alpha
    assert sup.snapshot()["beta"]["restarts"] == 0  # a requested restart is not a crash
    sup.set_wanted(["alpha"])
    assert sup.snapshot()["beta"]["state"] == "stopped"
    assert [p.pid for p in procs_running(script)] == [alpha]
    sup.stop_all()
    assert procs_running(script) == []


def test_control_file_drives_a_running_supervisor(cfg, script):
    """What ``lakewatch pipeline stop beta`` / ``restart alpha`` do to a running supervisor."""
    from pipeline.supervisor.daemon import _ControlWatcher, read_control, write_control

    specs = [spec(cfg, script, "alpha"), spec(cfg, script, "beta", needs=("alpha",))]
    sup = Supervisor(cfg, specs)
    write_control(cfg, ["alpha", "beta"])
    sup.want(["alpha", "beta"])
    with Running(sup, on_tick=_ControlWatcher(cfg)):
        wait_for(lambda: sup_status(cfg).get("state") == "running", what="running")
        alpha = comp(cfg, "alpha")["pid"]
        write_control(cfg, ["alpha"])
        wait_for(lambda: comp(cfg, "beta")["state"] == "stopped", what="beta stopped")
        assert [p.pid for p in procs_running(script)] == [alpha]
        write_control(cfg, ["alpha", "beta"], restart=["alpha"])
        wait_for(lambda: comp(cfg, "alpha")["pid"] not in (alpha, None)
                 and comp(cfg, "beta")["state"] == "running", what="alpha restarted, beta up")
        assert len(procs_running(script)) == 2
        assert read_control(cfg)["seq"] == 3
    assert procs_running(script) == []
