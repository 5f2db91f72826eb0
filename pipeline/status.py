"""Component heartbeats: each long-running component writes a small JSON status file.

The orchestrator's ``status`` and the desktop app's health panel read these files instead of
talking to the components, so a wedged component shows up as a stale heartbeat.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from pipeline.settings import Settings


def status_path(settings: Settings, component: str) -> Path:
    return settings.run_dir / f"{component}.status.json"


def write_status(settings: Settings, component: str, **fields: Any) -> None:
    """Atomically replace the component's status (adds pid and heartbeat time)."""
    path = status_path(settings, component)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"component": component, "pid": os.getpid(), "heartbeat": time.time(), **fields}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, default=str))
    os.replace(tmp, path)


def read_status(settings: Settings, component: str) -> dict[str, Any] | None:
    path = status_path(settings, component)
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        return json.loads(path.read_text())
    return None
