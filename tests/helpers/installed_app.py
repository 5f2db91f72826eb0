"""Checks shared by the tests that run an installed Lakewatch (the bundle, the wheel)."""

from __future__ import annotations

from pathlib import Path

import psutil

from desktop_app.self_check import QT_WINDOW_STEP
from tests.helpers.ports import free_port

#: every step ``lakewatch self-test`` prints, in the pipeline's order, then the app's window
SELF_TEST_STEPS = ("Kafka broker", "topic", "SparkSession", "produce one event", "-> Delta",
                   "read the event back from Delta", "delete the topic", "stop Spark",
                   "stop the broker", QT_WINDOW_STEP)


def app_args(data: Path, *extra: str) -> list[str]:
    """Own data dir and free broker ports, so an installed app never meets the suite's."""
    return ["--set", f"storage.data_dir={data}", *extra, "--set", f"broker.port={free_port()}",
            "--set", f"broker.controller_port={free_port()}", "--set", "broker.heap_mb=384"]


def self_test_steps(out: str) -> list[str]:
    """The step lines of a passed ``lakewatch self-test`` (asserts every step passed)."""
    lines = out.splitlines()
    steps = [x.strip() for x in lines if x.strip()[:1] in ("✓", "✗", "-")]
    assert steps and all(x.startswith("✓") for x in steps), out
    for title in SELF_TEST_STEPS:
        assert any(title in x for x in steps), (title, out)
    assert "embedded broker started" in out
    assert "Spark 4.2.0" in out
    assert "1 row, every field as sent" in out
    assert lines[-1].startswith("self-test passed")
    return steps


def leftover_processes(marker: str) -> list[str]:
    """Processes whose command line holds ``marker`` (a test's data dir)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if marker in cmd:
            found.append(f"{proc.info['pid']}: {cmd[:200]}")
    return found
