"""The pid and log files of supervised children, and stopping a process tree.

Each child has ``<name>.pid`` (its pid and create time, so a reused pid is not mistaken for
it) and ``<name>.log`` (rotated past 20 MB) in ``settings.run_dir``. :func:`terminate_tree`
stops a child and whatever it spawned (the broker's and Spark's JVMs): SIGTERM, a grace
period, then SIGKILL, and a sweep of its process group.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

import psutil

from pipeline.files import atomic_write

log = logging.getLogger(__name__)

_LOG_ROTATE_BYTES = 20 * 1024 * 1024
# psutil derives create times from the kernel's boot time, which it reports in whole seconds
# and which moves when the wall clock is adjusted: the same process can read 1 s apart.
_CREATE_TIME_SLACK_S = 2.5


# -- pid files -------------------------------------------------------------------------------


def pid_path(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def log_path(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.log"


def write_pid_file(path: Path, proc: psutil.Process) -> None:
    """Pid on the first line (what other tools read), its create time on the second."""
    atomic_write(path, f"{proc.pid}\n{proc.create_time():.3f}\n")


def read_pid_file(path: Path, argv_tail: list[str] | None = None) -> psutil.Process | None:
    """The live process a pid file names, or None; a stale file is removed.

    Stale means: no such pid, a zombie, a different process that reuses the pid (its create
    time differs) or, when ``argv_tail`` is given, a command line that does not end with it.
    """
    try:
        lines = path.read_text().split()
        pid = int(lines[0])
        created = float(lines[1]) if len(lines) > 1 else None
    except (FileNotFoundError, IndexError, ValueError):
        if path.exists():
            unlink_quietly(path)
        return None
    try:
        proc = psutil.Process(pid)
        alive = proc.status() != psutil.STATUS_ZOMBIE
        same = created is None or abs(proc.create_time() - created) <= _CREATE_TIME_SLACK_S
        if alive and same and argv_tail is not None:
            cmdline = proc.cmdline()
            same = cmdline[-len(argv_tail):] == argv_tail if argv_tail else True
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        alive = same = False
    if alive and same:
        return proc
    log.info("removing stale pid file %s (pid %s)", path, pid)
    unlink_quietly(path)
    return None


def unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


# -- stopping a process tree -----------------------------------------------------------------


def terminate_tree(proc: psutil.Process, timeout: float) -> int | None:
    """SIGTERM ``proc``, wait ``timeout``, SIGKILL it; then make sure its descendants are gone.

    Returns the exit code when known (only for our own children).
    """
    try:
        descendants = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    try:
        pgid = os.getpgid(proc.pid) if hasattr(os, "getpgid") else None
    except ProcessLookupError:
        pgid = None
    code: int | None = None
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.terminate()
    try:
        code = proc.wait(timeout)
    except psutil.TimeoutExpired:
        log.warning("pid %d ignored SIGTERM for %.0f s; killing it", proc.pid, timeout)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
        with contextlib.suppress(psutil.TimeoutExpired):
            code = proc.wait(10)
    except psutil.NoSuchProcess:
        pass
    # Children left behind (a JVM whose parent was killed) get a short grace, then SIGKILL.
    _gone, alive = psutil.wait_procs(descendants, timeout=min(timeout, 5.0))
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(alive, timeout=5.0)
    # The child led its own process group: sweep stragglers we never saw as descendants.
    if pgid is not None and pgid == proc.pid:
        kill_group(pgid, 2.0)
    return code


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes of process group ``pgid``."""
    if not hasattr(os, "getpgid"):
        return []
    out = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def kill_group(pgid: int, timeout: float) -> None:
    """SIGTERM what is left of process group ``pgid``, SIGKILL it after ``timeout``."""
    if not hasattr(os, "getpgid") or pgid == os.getpgid(0):
        return
    members = group_members(pgid)
    for proc in members:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _gone, alive = psutil.wait_procs(members, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=5.0)


# -- log files ----------------------------------------------------------------------------


def log_banner(text: str) -> bytes:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"--- {stamp} [lakewatch supervisor] {text}\n".encode()


def log_tail(path: Path, lines: int) -> list[str]:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return data.splitlines()[-lines:]


def rotate_log(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.stat().st_size > _LOG_ROTATE_BYTES:
            os.replace(path, path.with_suffix(".log.1"))
