"""Scenarios injected on command into a running generator.

The generator process polls an inbox file (``run_dir/generator.inject.jsonl``); anyone with
the same Settings (``lakewatch generate --inject KIND``, the desktop app, a test) appends one
JSON line per request. A file, not a socket, so it works whichever process started the
generator and needs no port. Requests written before the generator started are ignored.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import orjson

from pipeline.settings import Settings
from pipeline.sources.scenarios import INJECTABLE_KINDS, ScenarioError

log = logging.getLogger(__name__)


def inbox_path(settings: Settings) -> Path:
    return settings.run_dir / "generator.inject.jsonl"


def request_injection(settings: Settings, kind: str, entity: str | None = None,
                      duration_s: float = 60.0, magnitude: float | None = None) -> None:
    """Ask the running generator to start scenario ``kind`` now (at its simulated time)."""
    if kind not in INJECTABLE_KINDS:
        raise ScenarioError(f"unknown scenario kind {kind!r}; expected one of "
                            f"{', '.join(INJECTABLE_KINDS)}")
    if not duration_s > 0:
        raise ScenarioError("duration must be > 0")
    path = inbox_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = orjson.dumps({"kind": kind, "entity": entity, "duration_s": duration_s,
                         "magnitude": magnitude}) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)  # one write with O_APPEND: concurrent requests never interleave
    finally:
        os.close(fd)


class Inbox:
    """Reads requests appended since it was created."""

    def __init__(self, settings: Settings) -> None:
        self.path = inbox_path(settings)
        try:
            self._offset = self.path.stat().st_size
        except FileNotFoundError:
            self._offset = 0

    def poll(self) -> list[dict[str, Any]]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self._offset:  # the file was replaced: read it from the start
            self._offset = 0
        if size == self._offset:
            return []
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read(size - self._offset)
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        out = []
        for line in complete.splitlines():
            try:
                req = orjson.loads(line)
                if not isinstance(req, dict) or req.get("kind") not in INJECTABLE_KINDS:
                    raise ValueError("needs a known 'kind'")
                out.append(req)
            except ValueError as exc:
                log.warning("ignoring bad injection request %r: %s", line[:200], exc)
        return out
