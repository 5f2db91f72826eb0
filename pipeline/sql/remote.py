"""The client side of the processor's SQL endpoint: find it, open a Spark Connect session on
it, and what differs there from a local session (job tags instead of job groups, the
server's refusals).

No py4j here: a Connect session has no ``sparkContext`` or ``_jdf``; the statement is checked
by the endpoint, with the same rules, on its own parser.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import re
import threading
import time
from typing import Any

from pipeline.settings import Settings
from pipeline.sql.endpoint import Endpoint, find
from pipeline.sql.errors import RefusedError, SqlError

log = logging.getLogger(__name__)

_DETAILS_RE = re.compile(r'details = "(.*?)"\n', re.S)


def is_remote(spark: Any) -> bool:
    """True for a Spark Connect session (no JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def connect(settings: Settings) -> Any | None:
    """A Connect session on the running processor's endpoint; None when there is none, it is
    switched off (``sql.connect``), or it does not answer within ``sql.connect_timeout_s``."""
    if not settings.sql.connect:
        return None
    endpoint = find(settings)
    if endpoint is None:
        return None
    return open_session(endpoint, settings.sql.connect_timeout_s)


#: Retries of a Connect call: a few within ~3 s. pyspark's default (15 retries, backoff up
#: to 60 s) keeps a call to a stopped processor retrying for minutes, in the SQL tab and in
#: each client's exit handler (a test run's exit hung 10+ min on it).
RETRY_POLICY = {"max_retries": 4, "initial_backoff": 50, "backoff_multiplier": 4.0,
                "max_backoff": 2000}


def open_session(endpoint: Endpoint, timeout_s: float = 3.0) -> Any | None:
    """A new Connect session on ``endpoint`` after one cheap round trip (its Spark version),
    or None (logged) when that fails or takes longer than ``timeout_s``."""
    started = time.monotonic()
    box: dict[str, Any] = {}
    lock = threading.Lock()

    def attempt() -> None:
        session = None
        try:
            from pyspark.sql.connect.client.retries import DefaultPolicy
            from pyspark.sql.connect.session import SparkSession as RemoteSession

            session = RemoteSession.builder.remote(endpoint.url).create()
            session.client.set_retry_policies([DefaultPolicy(**RETRY_POLICY)])
            atexit.register(_close_quietly, session)  # runs before pyspark's own handler
            version = session.version
        except Exception as exc:  # noqa: BLE001 - reported below; the caller falls back
            box["error"] = exc
            _close_quietly(session)
            return
        with lock:
            if box.get("gave_up"):  # the caller fell back meanwhile: nobody uses it
                _close_quietly(session)
                return
            box["version"], box["session"] = version, session

    worker = threading.Thread(target=attempt, daemon=True, name="lakewatch-sql-connect")
    worker.start()
    worker.join(timeout_s)
    with lock:
        if "session" in box:
            log.info("SQL on the processor's session (%r), ready in %.2f s", endpoint,
                     time.monotonic() - started)
            return box["session"]
        box["gave_up"] = True
    why = box.get("error") or f"no answer within {timeout_s:g} s"
    log.warning("processor's SQL endpoint %r not usable (%s): using a local Spark session",
                endpoint, str(why).splitlines()[0] if str(why) else type(why).__name__)
    return None


def _close_quietly(session: Any) -> None:
    """Release the server's session and close the channel; never raises, bounded by
    :data:`RETRY_POLICY` when the processor is gone."""
    if session is None or session.client.is_closed:
        return
    try:
        session.stop()
    except Exception:  # noqa: BLE001 - exiting or falling back: nothing to report to
        with contextlib.suppress(Exception):
            session.client.close()


def status_name(exc: BaseException) -> str | None:
    """The gRPC status of a Connect error (``PERMISSION_DENIED``, ``UNAVAILABLE``…), if any."""
    getter = getattr(exc, "getGrpcStatusCode", None)
    code = None
    if getter is not None:
        try:
            code = getter()
        except Exception:  # noqa: BLE001 - not a gRPC-borne error
            code = None
    if code is None:
        return None
    return str(getattr(code, "name", code)).rsplit(".", 1)[-1]


def refusal(exc: BaseException) -> SqlError | None:
    """The endpoint's refusal as RefusedError (its reason as the message), else None."""
    if status_name(exc) != "PERMISSION_DENIED":
        return None
    text = str(exc)
    match = _DETAILS_RE.search(text)
    message = match.group(1) if match else text
    message = message.replace('\\"', '"')
    if not message.startswith("refused:"):
        message = f"refused: {message}"
    return RefusedError(message)


class StartedRows:
    """A Connect result iterator whose request is already sent: pyspark sends it on the first
    ``next()``, and only a request sent inside the query's tag block carries the tag that
    ``cancel`` interrupts."""

    _END = object()

    def __init__(self, rows: Any) -> None:
        self._rows = iter(rows)
        self._first = next(self._rows, self._END)

    def __iter__(self) -> StartedRows:
        return self

    def __next__(self) -> Any:
        if self._first is not self._END:
            first, self._first = self._first, self._END
            return first
        return next(self._rows)

    def close(self) -> None:
        self._first = self._END
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()
