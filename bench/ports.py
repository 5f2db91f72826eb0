"""A free loopback port for the embedded broker each benchmark starts (the bench scripts'
one shared helper; run them as ``python bench/<name>.py``, which puts this folder on the path)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
