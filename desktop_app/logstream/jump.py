"""Parse the "jump to" field: a Kafka ``partition:offset`` or a point in time (no Qt)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_OFFSET = re.compile(r"^\s*(\d+)\s*[:/@]\s*(\d+)\s*$")
_RELATIVE = re.compile(r"^\s*-\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_jump(text: str, now_ms: int | None = None) -> tuple[str, int, int]:
    """``("offset", partition, offset)`` or ``("time", ts_ms, 0)``; ValueError if neither.

    Times: ``2026-11-27 10:00:00`` (UTC unless an offset is given), epoch seconds or ms,
    or relative ``-5m`` / ``-2h``.
    """
    m = _OFFSET.match(text)
    if m:
        return "offset", int(m.group(1)), int(m.group(2))
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    m = _RELATIVE.match(text)
    if m:
        return "time", now_ms - int(float(m.group(1)) * _UNITS[m.group(2)]), 0
    stripped = text.strip()
    if stripped.isdigit():
        value = int(stripped)
        return "time", value * 1000 if value < 100_000_000_000 else value, 0
    try:
        dt = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot jump to {text!r}: use partition:offset (e.g. 0:1234), a UTC time "
            "(2026-11-27 10:00:00), epoch ms, or -5m / -2h") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return "time", int(dt.timestamp() * 1000), 0
