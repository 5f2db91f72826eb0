"""The shipper against the real broker: rotation while shipping, restarts, exactly-once ids."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from pipeline.access_log import format_combined, format_common
from pipeline.schemas import HEADER_EVENT_ID, HEADER_FORMAT, HEADER_SOURCE
from pipeline.settings import Settings
from pipeline.sources.shipper import Shipper, default_state_path, line_event_id
from pipeline.sources.tailer import identify
from pipeline.status import read_status
from tests.helpers.kafka import consume_all

T0 = 1_767_225_600_000


def make_lines(n: int) -> list[str]:
    lines = [format_combined(f"10.0.{i // 250}.{i % 250}", T0 + i * 10, "GET", f"/item/{i}",
                             200 if i % 17 else 503, 100 + i, user_agent="pytest")
             for i in range(n)]
    lines[777] = "garbage that no access-log pattern matches #777"
    return lines


def append(path: Path, lines: list[str], chunk: int = 50, pause: float = 0.005) -> None:
    for k in range(0, len(lines), chunk):
        with path.open("ab") as fh:
            fh.write("".join(f"{ln}\n" for ln in lines[k:k + chunk]).encode())
        time.sleep(pause)


class Running:
    """A Shipper in a thread (the way the CLI runs it, minus the signal handlers)."""

    def __init__(self, settings: Settings, path: Path) -> None:
        self.shipper = Shipper(settings, path, "combined", source="web-test", grace_s=0.3,
                               commit_interval_s=0.2)
        self.stop = threading.Event()
        self.rc: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.rc = self.shipper.run(self.stop)

    def wait_for(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.shipper.shipped < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.shipper.shipped >= n, (self.shipper.shipped, n)

    def finish(self) -> int:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive()
        return self.rc


def test_every_line_once_in_order_through_rotations_and_restart(kafka_settings: Settings,
                                                                 tmp_path: Path):
    log = tmp_path / "access.log"
    lines = make_lines(2500)
    log.touch()
    run = Running(kafka_settings, log)
    append(log, lines[:300])
    run.wait_for(300)
    append(log, lines[300:500], pause=0)
    # rename + create while lines are still unread; the writer appends to the old file a bit
    os.rename(log, tmp_path / "access.log.1")
    append(tmp_path / "access.log.1", lines[500:600])
    append(log, lines[600:1000])
    run.wait_for(900)
    assert run.finish() == 0
    # while the shipper is down: more lines, then a copytruncate rotation, then more lines
    append(log, lines[1000:1300])
    os.rename(tmp_path / "access.log.1", tmp_path / "access.log.2")
    shutil.copyfile(log, tmp_path / "access.log.1")
    os.truncate(log, 0)
    append(log, lines[1300:1500])
    run = Running(kafka_settings, log)
    append(log, lines[1500:1800])
    run.wait_for(700)
    append(log, lines[1800:2000], pause=0)
    # copytruncate while shipping
    os.rename(tmp_path / "access.log.1", tmp_path / "access.log.3")
    shutil.copyfile(log, tmp_path / "access.log.1")
    os.truncate(log, 0)
    append(log, lines[2000:])
    msgs = consume_all(kafka_settings, len(lines), timeout=90)
    assert run.finish() == 0
    values = [m.value().decode() for m in msgs]
    ids = [dict(m.headers())[HEADER_EVENT_ID].decode() for m in msgs]
    # exactly once by event id, in file order; the clean stops repeated nothing at all
    first: dict[str, str] = {}
    for i, v in zip(ids, values, strict=True):
        first.setdefault(i, v)
    assert list(first.values()) == lines
    assert len(msgs) == len(lines)
    assert {m.partition() for m in msgs} == {msgs[0].partition()}
    h = dict(msgs[0].headers())
    assert (h[HEADER_FORMAT], h[HEADER_SOURCE], msgs[0].key()) == (b"combined", b"web-test",
                                                                  b"web-test")
    assert values[777] == lines[777]  # unparseable lines ship too
    status = read_status(kafka_settings, "shipper")
    assert status.state == "stopped" and status.failed == 0


def test_event_id_is_file_identity_plus_offset_not_content(tmp_path: Path):
    log = tmp_path / "a.log"
    log.write_bytes(b"same\nsame\n")
    ident = identify(log)
    a, b = line_event_id(ident.file_id, 0), line_event_id(ident.file_id, 5)
    assert a != b and str(uuid.UUID(a)) == a
    assert line_event_id(ident.file_id, 0) == a


def test_cli_once_ships_then_remembers_position(kafka_settings: Settings, tmp_path: Path):
    log = tmp_path / "access.log"
    lines = [format_common("192.0.2.9", T0 + i, "GET", f"/p/{i}", 200, i) for i in range(200)]
    log.write_text("".join(f"{ln}\n" for ln in lines))
    env = {**os.environ, **kafka_settings.to_env()}
    cmd = [sys.executable, "-m", "pipeline", "ship", "--follow", str(log), "--format", "common",
           "--source", "edge-1", "--once"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "sent=200 acked=200 failed=0" in first.stderr
    with log.open("a") as fh:
        fh.write("a late line\n")
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "sent=1 acked=1 failed=0" in second.stderr
    msgs = consume_all(kafka_settings, 201, settle=1.0)
    assert [m.value().decode() for m in msgs] == [*lines, "a late line"]
    assert {dict(m.headers())[HEADER_FORMAT] for m in msgs} == {b"common"}
    missing = subprocess.run([*cmd[:5], str(tmp_path / "nope.log"), "--once"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "nope.log: no such file" in missing.stderr


def test_killed_shipper_reships_unacked_lines_under_the_same_ids(kafka_settings: Settings,
                                                                  tmp_path: Path):
    """SIGKILL loses the uncommitted tail's position, never a line: the restart ships it
    again with the same event ids, so deduplication by id gives every line exactly once."""
    log = tmp_path / "access.log"
    lines = make_lines(20_000)
    log.write_text("".join(f"{ln}\n" for ln in lines))
    env = {**os.environ, **kafka_settings.to_env()}
    cmd = [sys.executable, "-m", "pipeline", "ship", "--follow", str(log), "--source", "k"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        state = default_state_path(kafka_settings, log)
        while time.monotonic() < deadline and not state.exists():  # a first commit
            time.sleep(0.02)
        proc.kill()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = subprocess.run([*cmd, "--once"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    msgs = consume_all(kafka_settings, len(lines), timeout=90)
    first: dict[str, str] = {}
    for m in msgs:
        first.setdefault(dict(m.headers())[HEADER_EVENT_ID].decode(), m.value().decode())
    assert list(first.values()) == lines
    assert len(msgs) >= len(lines)
