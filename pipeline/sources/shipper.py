"""The file shipper behind ``lakewatch ship``: tail an access log, ship every line to Kafka.

Each line goes to Kafka as-is (raw bytes, no terminator), keyed by ``--source`` (so one
file's lines stay in order in one partition), with headers ``event_id`` (uuid5 of the file
identity + the line's byte offset: never of the content, so a line shipped twice has one id
and the processor dedupes it), ``format`` and ``source``. ``format`` names how the processor
parses the line: ``json``, ``combined``, ``common`` or a preset of
:mod:`pipeline.log_format_presets` (a format string equal to a preset ships as that preset);
any other format string ships as ``custom`` with the string, its compiled regex and its group
mapping in the ``log_format`` / ``log_regex`` / ``log_groups`` headers (the processor needs
no configuration; the headers cost a few hundred bytes per line, which batch compression
mostly takes back: prefer a preset when one fits).
Lines that don't parse ship too: the processor quarantines them.

At-least-once: the file position is committed only once Kafka acked every line before it;
after a crash the unacked tail is shipped again under the same event ids. A clean stop
(SIGTERM/SIGINT, or the end of ``--once``) flushes first, so a restart repeats nothing.
Rotation (rename + create, copytruncate) is handled by :class:`~pipeline.sources.tailer.FileTailer`.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import sys
import threading
import time
import uuid
from collections import deque
from pathlib import Path

from pipeline.access_log import FORMATS
from pipeline.log_formats import (
    HEADER_LOG_FORMAT,
    HEADER_LOG_GROUPS,
    HEADER_LOG_REGEX,
    compile_format,
    group_spec,
    resolve_name,
)
from pipeline.schemas import HEADER_EVENT_ID, HEADER_FORMAT, HEADER_SOURCE
from pipeline.settings import ConfigError, Settings
from pipeline.sources.tailer import FileIdentity, FileTailer, Line

log = logging.getLogger(__name__)

#: Namespace of the shipper's event ids (uuid5 of "<dev>:<ino>:<fingerprint>:<offset>").
EVENT_ID_NAMESPACE = uuid.UUID("6c0a3d5e-8f7b-4e61-9a0c-2b4f1d7e9a35")
#: Kafka's record overhead and headers need room next to the line itself.
_HEADROOM = 4096


def line_event_id(file_id: str, offset: int) -> str:
    """The stable id of the line at ``offset`` of the file ``file_id``."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{file_id}:{offset}"))


def format_label(fmt: str) -> tuple[str, list[tuple[str, bytes]]]:
    """The ``format`` header for ``fmt`` (fixed format, preset or format string) and any
    further header it needs; ConfigError when ``fmt`` is none of them."""
    if fmt in FORMATS:
        return fmt, []
    try:
        name = resolve_name(fmt)
    except ValueError as exc:
        raise ConfigError(f"log format: {exc}") from None
    if name is not None:
        return name, []
    compiled = compile_format(fmt)
    return "custom", [(HEADER_LOG_FORMAT, fmt.encode()),
                      (HEADER_LOG_REGEX, compiled.regex.encode()),
                      (HEADER_LOG_GROUPS, group_spec(compiled).encode())]


def default_state_path(settings: Settings, path: str | Path) -> Path:
    """Per followed path; the file inside records which file identity the position is in."""
    key = hashlib.sha1(str(Path(path).absolute()).encode(), usedforsecurity=False).hexdigest()
    return settings.data_dir / "shipper" / f"{Path(path).name}.{key[:12]}.json"


class _Acks:
    """Lines in flight, in produce order; the committable position is the end of the longest
    acked prefix (delivery reports may arrive out of order across partitions)."""

    def __init__(self) -> None:
        self._lines: deque[list] = deque()  # [ident, end, acked]
        self.failed: str | None = None

    def add(self, line: Line):  # -> delivery callback
        entry = [line.ident, line.end, False]
        self._lines.append(entry)

        def done(err, msg) -> None:
            if err is None:
                entry[2] = True
            elif self.failed is None:
                self.failed = str(err)

        return done

    def committable(self) -> tuple[FileIdentity, int] | None:
        last = None
        while self._lines and self._lines[0][2]:
            entry = self._lines.popleft()
            last = (entry[0], entry[1])
        return last

    def __len__(self) -> int:
        return len(self._lines)


class Shipper:
    """Ships ``path`` through a :class:`LogProducer` until stopped (or, ``once``, at the end)."""

    def __init__(self, settings: Settings, path: str | Path, fmt: str = "combined",
                 source: str | None = None, state_path: str | Path | None = None,
                 start_at: str = "beginning", grace_s: float = 1.0,
                 commit_interval_s: float = 0.5) -> None:
        label, extra_headers = format_label(fmt)
        self.settings = settings
        self.path = Path(path)
        self.fmt = label
        self.source = source or socket.gethostname()
        self.state_path = Path(state_path) if state_path else default_state_path(settings, path)
        try:
            self.tailer = FileTailer(
                self.path, self.state_path, start_at=start_at, grace_s=grace_s,
                max_line_bytes=max(1024, settings.processor.max_message_bytes - _HEADROOM))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.commit_interval_s = commit_interval_s
        self.shipped = 0
        self._acks = _Acks()
        self._fixed_headers = [(HEADER_FORMAT, label.encode()),
                               (HEADER_SOURCE, self.source.encode()), *extra_headers]

    def run(self, stop: threading.Event, once: bool = False) -> int:
        from pipeline.sources.producer import LogProducer, ProducerError

        if once and not self.path.exists():
            raise ConfigError(f"{self.path}: no such file")
        if not once and not self.path.exists():
            log.info("waiting for %s to appear", self.path)
        producer = LogProducer(self.settings, "shipper", status_fields=self._status)
        key = self.source.encode()
        last_commit = 0.0
        try:
            producer.ensure_topic()
            while not stop.is_set():
                lines = self.tailer.read_lines()
                for line in lines:
                    headers = [(HEADER_EVENT_ID, line_event_id(line.file_id, line.offset).encode()),
                               *self._fixed_headers]
                    producer.produce(line.data, key, headers, on_delivery=self._acks.add(line))
                self.shipped += len(lines)
                producer.poll(0 if lines else 0.1)
                if self._acks.failed:
                    raise ProducerError(f"delivery failed: {self._acks.failed}")
                now = time.monotonic()
                if now - last_commit >= self.commit_interval_s:
                    self._commit()
                    last_commit = now
                if once and not lines and self.tailer.at_rest():
                    break
        except ProducerError as exc:
            print(f"lakewatch ship: {exc}; the position stays at the last acked line",
                  file=sys.stderr)
            producer.close()
            self._commit()
            return 1
        finally:
            self.tailer.close()
        remaining = producer.close()
        self._commit()
        if remaining or self._acks.failed:
            print(f"lakewatch ship: {remaining} lines undelivered", file=sys.stderr)
            return 1
        return 0

    def _commit(self) -> None:
        pos = self._acks.committable()
        if pos is not None:
            self.tailer.commit(*pos)

    def _status(self) -> dict[str, object]:
        pos = self.tailer.committed
        return {"path": str(self.path), "format": self.fmt, "source": self.source,
                "lines": self.shipped,
                "file_id": pos.ident.file_id if pos else None,
                "offset": pos.offset if pos else None}
