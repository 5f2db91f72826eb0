"""Where the processor's SQL endpoint (Spark Connect) is published, and how a client finds it.

A small JSON file in the run dir, readable by the user only (0600: it holds the token), written
once the endpoint's guard is installed and removed when the processor stops. A client trusts it
only while the processor that wrote it is alive.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.files import temp_path
from pipeline.settings import Settings

FILE_NAME = "sql-endpoint.json"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    token: str
    pid: int

    @property
    def url(self) -> str:
        """The Spark Connect URL. The client sends the token as a bearer header; the name
        ``localhost`` makes it use gRPC's local-connection credentials instead of TLS, which
        the loopback-only endpoint does not serve."""
        return f"sc://localhost:{self.port}/;token={self.token}"

    def __repr__(self) -> str:  # the token never prints
        return f"Endpoint(host={self.host!r}, port={self.port}, pid={self.pid})"


def endpoint_path(settings: Settings) -> Path:
    return settings.run_dir / FILE_NAME


def publish(settings: Settings, endpoint: Endpoint) -> Path:
    """Atomically write the endpoint file, created 0600."""
    path = endpoint_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"host": endpoint.host, "port": endpoint.port, "token": endpoint.token,
                       "pid": endpoint.pid}, fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def withdraw(settings: Settings, pid: int | None = None) -> None:
    """Remove the endpoint file (only the one ``pid`` published, when given)."""
    path = endpoint_path(settings)
    if pid is not None:
        found = find(settings, check_alive=False)
        if found is None or found.pid != pid:
            return
    with contextlib.suppress(OSError):
        path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find(settings: Settings, check_alive: bool = True) -> Endpoint | None:
    """The published endpoint, None when there is none (or its processor is gone)."""
    try:
        data = json.loads(endpoint_path(settings).read_text(encoding="utf-8"))
        endpoint = Endpoint(host=str(data["host"]), port=int(data["port"]),
                            token=str(data["token"]), pid=int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if check_alive and not _alive(endpoint.pid):
        return None
    return endpoint
