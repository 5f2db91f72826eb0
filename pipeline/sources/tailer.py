"""Follow a log file through rotation, with a durable position (pure file I/O, no Kafka).

A file is identified by device + inode + a fingerprint of its first line (first
``FP_BYTES`` bytes at most), so a recycled inode or a truncated-and-refilled file is a new
file. Every line carries that identity and its byte offset, which is what makes the
shipper's event ids stable across restarts.

Rotation styles:

- rename + create (logrotate default, nginx reopen): the path points to a new inode; the old
  file is read to its end (and for ``grace_s`` more, while the writer may still append), then
  the new file from offset 0.
- copytruncate: the same inode shrinks (or restarts with another first line); the lines not
  yet read are in the copy, found next to the file by fingerprint and read under the original
  identity, then the live file from 0.

The position is committed by the caller (after Kafka acked the line) with :meth:`commit`; on
restart the tailer resumes there, finding the committed file among the rotated siblings if it
has been rotated away meanwhile, then reads the siblings rotated after it (oldest first, by
modification time) before the live file, so several rotations while the shipper was down
lose nothing. Compressed siblings (``.gz`` and the like) are not read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.files import atomic_write

log = logging.getLogger(__name__)

FP_BYTES = 256
READ_CHUNK = 1 << 20
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4")


@dataclass(frozen=True)
class FileIdentity:
    dev: int
    ino: int
    fingerprint: str  # sha1 of the first line (at most FP_BYTES bytes)
    fp_len: int

    @property
    def file_id(self) -> str:
        return f"{self.dev}:{self.ino}:{self.fingerprint[:16]}"


@dataclass(frozen=True)
class Line:
    data: bytes  # without the line terminator
    offset: int  # byte offset of the line's start
    end: int  # offset after its terminator (the position to commit once it is acked)
    ident: FileIdentity

    @property
    def file_id(self) -> str:
        return self.ident.file_id


@dataclass(frozen=True)
class Position:
    ident: FileIdentity
    offset: int
    path: str


def _fingerprint(fd: int) -> tuple[str, int] | None:
    head = os.pread(fd, FP_BYTES, 0)
    nl = head.find(b"\n")
    if nl >= 0:
        head = head[: nl + 1]
    elif len(head) < FP_BYTES:
        return None  # the first line is not complete yet
    return hashlib.sha1(head, usedforsecurity=False).hexdigest(), len(head)


def identify_fd(fd: int) -> FileIdentity | None:
    st = os.fstat(fd)
    fp = _fingerprint(fd)
    return None if fp is None else FileIdentity(st.st_dev, st.st_ino, fp[0], fp[1])


def identify(path: str | os.PathLike[str]) -> FileIdentity | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return identify_fd(fd)
    finally:
        os.close(fd)


class _Reader:
    """One open file being read from ``offset``."""

    def __init__(self, fd: int, path: Path, offset: int, ident: FileIdentity | None,
                 draining: bool = False) -> None:
        self.fd = fd
        self.path = path
        self.offset = offset
        self.ident = ident
        self.draining = draining  # rotated away: read to the end, then move on
        self.quiet_since: float | None = None
        st = os.fstat(fd)
        self.dev, self.ino = st.st_dev, st.st_ino

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class FileTailer:
    """Yields complete lines of ``path`` in file order, across rotations and restarts."""

    def __init__(self, path: str | os.PathLike[str], state_path: str | os.PathLike[str],
                 start_at: str = "beginning", grace_s: float = 1.0,
                 max_line_bytes: int = 1_000_000) -> None:
        if start_at not in ("beginning", "end"):
            raise ValueError("start_at must be 'beginning' or 'end'")
        self.path = Path(path).absolute()
        self.state_path = Path(state_path)
        self.start_at = start_at
        self.grace_s = grace_s
        self.max_line_bytes = max_line_bytes
        self._cur: _Reader | None = None
        self._backlog: list[Path] = []  # rotated files to read after _cur, before the live one
        self._committed: Position | None = self._load_state()
        self._started = False

    # -- state ----------------------------------------------------------------------------
    def _load_state(self) -> Position | None:
        try:
            data = json.loads(self.state_path.read_text())
            return Position(FileIdentity(**data["ident"]), int(data["offset"]), data["path"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"shipper state {self.state_path} is unreadable: {exc}; "
                             "delete it to ship the file from the start") from None

    def commit(self, ident: FileIdentity, offset: int) -> None:
        """Persist that every line of ``ident`` before ``offset`` is safely shipped."""
        pos = Position(ident, offset, str(self.path))
        if pos == self._committed:
            return
        atomic_write(self.state_path,
                     json.dumps({"ident": asdict(ident), "offset": offset, "path": pos.path}))
        self._committed = pos

    @property
    def committed(self) -> Position | None:
        return self._committed

    # -- opening --------------------------------------------------------------------------
    def _open_path(self, offset: int = 0) -> _Reader | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        return _Reader(fd, self.path, offset, identify_fd(fd))

    def _siblings(self) -> list[Path]:
        try:
            names = os.listdir(self.path.parent)
        except FileNotFoundError:
            return []
        return [self.path.parent / n for n in names
                if n.startswith(self.path.name) and n != self.path.name
                and not n.endswith(_COMPRESSED)]

    def _find(self, ident: FileIdentity, min_size: int, exclude_ino: int | None = None
              ) -> _Reader | None:
        """The rotated file holding ``ident``'s content: same inode first, else a copy."""
        matches = []
        for p in self._siblings():
            try:
                fd = os.open(p, os.O_RDONLY)
            except OSError:
                continue
            st = os.fstat(fd)
            fp = _fingerprint(fd)
            if (fp is not None and fp[0] == ident.fingerprint and st.st_size >= min_size
                    and st.st_ino != exclude_ino):
                matches.append((st.st_ino != ident.ino, fd, p))
            else:
                os.close(fd)
        matches.sort(key=lambda m: m[0])
        for _, fd, _ in matches[1:]:
            os.close(fd)
        if not matches:
            return None
        _, fd, p = matches[0]
        return _Reader(fd, p, min_size, ident, draining=True)

    def _start(self) -> None:
        """Open where the committed position says (or at the start / end of the file)."""
        self._started = True
        pos = self._committed
        now = self._open_path()
        if pos is None:
            if now is not None and self.start_at == "end":
                now.offset = os.fstat(now.fd).st_size
            self._cur = now
            return
        if now is not None and now.ident == pos.ident and os.fstat(now.fd).st_size >= pos.offset:
            now.offset = pos.offset
            self._cur = now
            return
        # the committed file was rotated (renamed or copied+truncated) while we were down
        old = self._find(pos.ident, pos.offset)
        if old is None:
            log.warning("%s: committed file %s (offset %d) not found among rotated files; "
                        "shipping the current file from its start", self.path,
                        pos.ident.file_id, pos.offset)
            self._cur = now
            return
        log.info("%s: resuming rotated file %s at offset %d", self.path, old.path, pos.offset)
        if now is not None:
            now.close()
        self._cur = old
        self._backlog = self._rotated_after(old)
        if self._backlog:
            log.info("%s: then %s", self.path, ", ".join(p.name for p in self._backlog))

    def _rotated_after(self, old: _Reader) -> list[Path]:
        """Siblings rotated after ``old`` (not copies of it), oldest first."""
        old_mtime = os.fstat(old.fd).st_mtime_ns
        old_fp = old.ident.fingerprint  # type: ignore[union-attr]
        found = []
        for p in self._siblings():
            try:
                st = os.stat(p)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (old.dev, old.ino) or st.st_mtime_ns < old_mtime:
                continue
            ident = identify(p)
            if ident is None or ident.fingerprint == old_fp:
                continue
            suffix = p.name[len(self.path.name):].lstrip(".-")
            # same mtime: logrotate numbering, higher number = rotated earlier
            found.append((st.st_mtime_ns, -int(suffix) if suffix.isdigit() else 0, p))
        return [p for *_, p in sorted(found)]

    # -- reading --------------------------------------------------------------------------
    def read_lines(self, max_bytes: int = 4 << 20) -> list[Line]:
        """The complete lines available now (about ``max_bytes`` at most), in file order."""
        if not self._started:
            self._start()
        out: list[Line] = []
        for _ in range(4):  # a rotation switch may make more lines available right away
            cur = self._cur
            if cur is None:
                self._cur = self._open_path()
                if self._cur is None:
                    return out
                cur = self._cur
            if cur.ident is None:
                cur.ident = identify_fd(cur.fd)
            if cur.ident is not None and not cur.draining and self._truncated(cur):
                continue
            got = self._read(cur, max_bytes, out) if cur.ident is not None else 0
            if got:
                cur.quiet_since = None
                return out
            if not cur.draining:
                if self._rotated_away(cur):
                    cur.draining = True
                    continue
                return out
            # draining a rotated file: move on once it has been quiet for grace_s
            now = time.monotonic()
            cur.quiet_since = cur.quiet_since or now
            if now - cur.quiet_since < self.grace_s:
                return out
            self._finish_rotated(cur, out)
            if out:
                return out
        return out

    def _read(self, cur: _Reader, max_bytes: int, out: list[Line]) -> int:
        data = os.pread(cur.fd, min(max_bytes, READ_CHUNK * 4), cur.offset)
        if not data:
            return 0
        n0, start, base, limit = len(out), 0, cur.offset, self.max_line_bytes
        ident: FileIdentity = cur.ident  # type: ignore[assignment]
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                if len(data) - start < limit:
                    break  # an incomplete last line: wait for its newline
                nl = end = start + limit  # no newline within the limit: ship a piece
            else:
                end = nl + 1
            text = data[start:nl]
            if text.endswith(b"\r"):
                text = text[:-1]
            # a line longer than the limit ships in pieces (each quarantined, none lost)
            for k in range(0, max(len(text), 1), limit):
                piece = text[k:k + limit]
                last = k + limit >= len(text)
                out.append(Line(piece, base + start + k,
                                base + end if last else base + start + k + len(piece), ident))
            start = end
        cur.offset = base + start
        return len(out) - n0

    def _truncated(self, cur: _Reader) -> bool:
        """copytruncate: ship the copy's unread rest under the old identity, then restart."""
        size = os.fstat(cur.fd).st_size
        if size >= cur.offset:
            if cur.offset == 0:
                return False
            fp = _fingerprint(cur.fd)
            if fp is None or fp[0] == cur.ident.fingerprint:  # type: ignore[union-attr]
                return False
        old_ident, old_offset = cur.ident, cur.offset
        copy = self._find(old_ident, old_offset, exclude_ino=cur.ino)  # type: ignore[arg-type]
        if copy is None:
            log.warning("%s was truncated at offset %d and no copy holding the rest was found; "
                        "lines written after the last read may be missing", self.path, old_offset)
        cur.close()
        self._cur = copy  # None: reopen the live file from 0 on the next round
        return True

    def _rotated_away(self, cur: _Reader) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != (cur.dev, cur.ino)

    def _finish_rotated(self, cur: _Reader, out: list[Line]) -> None:
        """Ship a rotated file's unterminated last line (nobody will complete it) and switch
        to the file now at the path."""
        rest = os.pread(cur.fd, self.max_line_bytes, cur.offset)
        if rest and cur.ident is not None:
            out.append(Line(rest, cur.offset, cur.offset + len(rest), cur.ident))
        cur.close()
        log.info("%s: finished rotated file %s", self.path, cur.path)
        while self._backlog:
            path = self._backlog.pop(0)
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                log.warning("%s: rotated file %s disappeared before it was read", self.path, path)
                continue
            self._cur = _Reader(fd, path, 0, identify_fd(fd), draining=True)
            return
        self._cur = self._open_path()

    def at_rest(self) -> bool:
        """True when the live file is read to its end (nothing rotated left to drain)."""
        cur = self._cur
        if cur is None:
            return True
        if cur.draining:
            return False
        return os.fstat(cur.fd).st_size <= cur.offset and not self._rotated_away(cur)

    def close(self) -> None:
        if self._cur is not None:
            self._cur.close()
            self._cur = None
