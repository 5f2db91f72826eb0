"""nginx/Apache access-log formats: one regex per format, shared by Python and Spark.

The pattern strings use only syntax that means the same in Python ``re`` and Java
``java.util.regex`` (numbered groups, explicit ASCII classes, no named groups, no
possessive or lookbehind constructs), so the Spark processor can hand them to
``regexp_extract(value, COMBINED_RE, GROUP_...)`` and this module's :func:`parse_line`
gives the same answer in Python.

Group order (1-based, identical in both patterns; 10 and 11 only in ``COMBINED_RE``)::

    1 client_ip   remote host (%h)
    2 ident       RFC 1413 identity (%l), usually "-"
    3 user        authenticated user (%u), usually "-"
    4 time        [10/Oct/2000:13:55:36 -0700] without brackets (%t)
    5 method      request method, e.g. GET
    6 path        request target as sent, query string included
    7 protocol    e.g. HTTP/1.1; empty when the request line had no protocol
    8 status      three digits (%>s)
    9 bytes       response size in bytes, or "-" for none (%b)
    10 referer    Referer header, backslash escapes kept as written
    11 user_agent User-Agent header, backslash escapes kept as written

A line matches neither pattern when the request line is not ``METHOD TARGET [PROTOCOL]``
(e.g. nginx's ``"-"`` for a client that sent nothing): such lines are quarantined.

Mapping to :data:`pipeline.schemas.EVENT_FIELDS` (``parse_line`` and the Spark processor
must agree): ``ts`` from group 4 (:data:`PY_TIME_FORMAT` / :data:`SPARK_TIME_FORMAT`),
``endpoint`` = path up to the first ``?``, ``status`` int, ``bytes`` int ("-" -> 0),
``level`` from :func:`level_for_status`, ``latency_ms`` null (not in these formats),
``message`` = the request line ``"METHOD PATH PROTOCOL"`` as written, ``user_agent`` null
for the common format.
"""

from __future__ import annotations

import re
from datetime import UTC as _UTC
from datetime import datetime
from typing import Any

from pipeline.log_formats import level_for_status

_HEAD = (
    r"^([^ ]+) ([^ ]+) ([^ ]+) \[([^\]]+)\] "
    r'"([A-Za-z]+) ([^ "]+)(?: ([^ "]*))?" '
    r"([0-9]{3}) ([0-9]+|-)"
)
_QUOTED = r'"((?:[^"\\]|\\.)*)"'

#: NCSA common log format: ``%h %l %u %t "%r" %>s %b``.
COMMON_RE = _HEAD + r"[ \t]*$"
#: NCSA combined log format: common + ``"%{Referer}i" "%{User-Agent}i"``.
COMBINED_RE = _HEAD + " " + _QUOTED + " " + _QUOTED + r"[ \t]*$"

GROUP_CLIENT_IP = 1
GROUP_IDENT = 2
GROUP_USER = 3
GROUP_TIME = 4
GROUP_METHOD = 5
GROUP_PATH = 6
GROUP_PROTOCOL = 7
GROUP_STATUS = 8
GROUP_BYTES = 9
GROUP_REFERER = 10
GROUP_USER_AGENT = 11

#: ``strptime`` format of group 4.
PY_TIME_FORMAT = "%d/%b/%Y:%H:%M:%S %z"
#: Spark ``to_timestamp`` pattern of group 4 (month names are English).
SPARK_TIME_FORMAT = "dd/MMM/yyyy:HH:mm:ss Z"

FORMATS: tuple[str, ...] = ("combined", "common", "json")
PATTERNS: dict[str, str] = {"combined": COMBINED_RE, "common": COMMON_RE}
_COMPILED = {name: re.compile(p) for name, p in PATTERNS.items()}


def parse_line(line: bytes | str, fmt: str = "combined", *, source: str | None = None,
               event_id: str | None = None) -> dict[str, Any] | None:
    """One access-log line as an event dict with exactly the EVENT_FIELDS; None if it
    doesn't match ``fmt`` or its timestamp is invalid (the caller quarantines it).

    ``fmt`` is ``combined``/``common`` (the fixed patterns here), a preset name or a format
    string (:mod:`pipeline.log_formats`, whose ``parse`` also returns the extra variables)."""
    if fmt not in _COMPILED:
        from pipeline import log_formats

        try:
            compiled = log_formats.get_format(fmt)
        except ValueError:
            raise ValueError(f"unknown access-log format {fmt!r}; expected one of "
                             f"{sorted(PATTERNS)}, a preset or a format string") from None
        parsed = log_formats.parse(compiled, line, source=source, event_id=event_id)
        return parsed[0] if parsed else None
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    m = _COMPILED[fmt].match(line.rstrip("\r\n"))
    if m is None:
        return None
    try:
        ts = datetime.strptime(m.group(GROUP_TIME), PY_TIME_FORMAT)
    except ValueError:
        return None
    status = int(m.group(GROUP_STATUS))
    size = m.group(GROUP_BYTES)
    method, path, protocol = m.group(GROUP_METHOD), m.group(GROUP_PATH), m.group(GROUP_PROTOCOL)
    request = f"{method} {path} {protocol}" if protocol else f"{method} {path}"
    return {
        "event_id": event_id,
        "ts": int(ts.timestamp() * 1000),
        "level": level_for_status(status),
        "source": source,
        "method": method,
        "endpoint": path.split("?", 1)[0],
        "status": status,
        "latency_ms": None,
        "bytes": 0 if size == "-" else int(size),
        "client_ip": m.group(GROUP_CLIENT_IP),
        "user_agent": m.group(GROUP_USER_AGENT) if fmt == "combined" else None,
        "message": request,
    }


def format_combined(client_ip: str, ts_ms: int, method: str, path: str, status: int,
                    size: int, referer: str = "-", user_agent: str = "-",
                    protocol: str = "HTTP/1.1", user: str = "-") -> str:
    """One combined-format line (UTC); used to write realistic access logs in tests."""
    when = datetime.fromtimestamp(ts_ms / 1000, tz=_UTC).strftime(PY_TIME_FORMAT)
    size_s = str(size) if size else "-"
    return (f'{client_ip} - {user} [{when}] "{method} {path} {protocol}" {status} {size_s} '
            f'"{_escape(referer)}" "{_escape(user_agent)}"')


def format_common(client_ip: str, ts_ms: int, method: str, path: str, status: int,
                  size: int, protocol: str = "HTTP/1.1", user: str = "-") -> str:
    when = datetime.fromtimestamp(ts_ms / 1000, tz=_UTC).strftime(PY_TIME_FORMAT)
    size_s = str(size) if size else "-"
    return f'{client_ip} - {user} [{when}] "{method} {path} {protocol}" {status} {size_s}'


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')

