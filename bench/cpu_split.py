"""Where a benchmark's CPU goes: per process, and per thread group inside the Spark JVM.

A JVM's threads carry names (``/proc/<pid>/task/<tid>/comm``, first 15 characters), so the
Spark driver's CPU splits into task threads, the JIT compilers, the garbage collector and the
driver's own threads (query planning, the streaming loops, listeners). Linux only.
"""

from __future__ import annotations

from pathlib import Path

import psutil

#: comm prefix -> group; the first match wins, anything else is ``driver``.
JVM_GROUPS: tuple[tuple[str, str], ...] = (
    ("Executor task", "tasks"),
    ("C1 CompilerThre", "jit"),
    ("C2 CompilerThre", "jit"),
    ("GC Thread", "gc"),
    ("G1 ", "gc"),
)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 once it is gone)."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system


def jvm_thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds per thread group of a live JVM, plus ``total`` for the whole process (which
    also holds the CPU of threads that have exited)."""
    out = {group: 0.0 for _, group in JVM_GROUPS} | {"driver": 0.0}
    try:
        threads = psutil.Process(pid).threads()
    except psutil.Error:
        return out | {"total": 0.0}
    for th in threads:
        try:
            name = Path(f"/proc/{pid}/task/{th.id}/comm").read_text().strip()
        except OSError:
            continue
        group = next((g for prefix, g in JVM_GROUPS if name.startswith(prefix)), "driver")
        out[group] += th.user_time + th.system_time
    return out | {"total": process_cpu_s(pid)}


def diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
