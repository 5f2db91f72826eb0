"""Export rows of the live view to CSV or JSON lines (runs on a worker; no Qt).

Rows are read from the live ring in chunks and written to a temp file that replaces the
target at the end, so a cancelled or failed export leaves no half file. Rows evicted from the
ring before they could be read are counted and reported, never silently skipped.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from desktop_app.logstream.columns import EXPORT_FIELDS
from desktop_app.logstream.ring import LogRing
from pipeline.files import replacing

FORMATS = ("csv", "jsonl")
_CHUNK = 5000


class ExportCancelled(RuntimeError):
    pass


@dataclass(frozen=True)
class ExportResult:
    path: Path
    written: int
    evicted: int     # rows that left the buffer before they were exported


def jsonl_record(ring: LogRing, seq: int) -> dict[str, Any]:
    """The whole event plus its Kafka lineage (raw lines: ``raw`` + headers)."""
    ev = dict(ring.event(seq))
    slot = seq % ring.capacity
    ev["kafka_topic"] = ring.topic
    ev["kafka_partition"] = int(ring.cols["partition"][slot])
    ev["kafka_offset"] = int(ring.cols["offset"][slot])
    return ev


def _read_chunk(ring: LogRing, seqs: np.ndarray, fmt: str) -> tuple[list[Any], int]:
    """Records of ``seqs`` still valid after reading, and how many had been evicted."""
    make = ring.record if fmt == "csv" else (lambda s: jsonl_record(ring, s))
    pairs = [(s, make(s)) for s in seqs.tolist() if s >= ring.head]
    head = ring.head  # read after the rows: rows still >= head were not overwritten
    keep = [r for s, r in pairs if s >= head]
    return keep, len(seqs) - len(keep)


def write_rows(out: IO[str] | IO[bytes], fmt: str, records: list[dict[str, Any]],
               writer: Any = None) -> Any:
    if fmt == "csv":
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, extrasaction="ignore")
            writer.writeheader()
        writer.writerows(records)
        return writer
    out.write(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return None


def export_rows(ring: LogRing, seqs: np.ndarray, path: Path | str, fmt: str,
                progress: Callable[[int, int], None] | None = None,
                cancel: threading.Event | None = None) -> ExportResult:
    """Write the rows ``seqs`` (ascending) of ``ring`` to ``path`` as ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {FORMATS}")
    path = Path(path)
    seqs = np.asarray(seqs, dtype=np.int64)
    total = len(seqs)
    written = evicted = 0
    mode = "w" if fmt == "csv" else "wb"
    kwargs: dict[str, Any] = {"newline": "", "encoding": "utf-8"} if fmt == "csv" else {}
    with replacing(path, suffix=".part") as tmp, open(tmp, mode, **kwargs) as out:
        writer = None
        if fmt == "csv":
            writer = write_rows(out, fmt, [])
        for i in range(0, total, _CHUNK):
            if cancel is not None and cancel.is_set():
                raise ExportCancelled("export cancelled")
            chunk = seqs[i:i + _CHUNK]
            records, lost = _read_chunk(ring, chunk, fmt)
            writer = write_rows(out, fmt, records, writer)
            written += len(records)
            evicted += lost
            if progress is not None:
                progress(min(i + _CHUNK, total), total)
    return ExportResult(path, written, evicted)


def rows_as_tsv(ring: LogRing, seqs: np.ndarray) -> str:
    """Rows as tab-separated text (for the clipboard), header first."""
    lines = ["\t".join(EXPORT_FIELDS)]
    pairs = [(s, ring.record(s)) for s in np.asarray(seqs, dtype=np.int64).tolist()
             if s >= ring.head]
    head = ring.head
    for s, rec in pairs:
        if s < head:
            continue
        lines.append("\t".join("" if rec[f] is None else str(rec[f]).replace("\t", " ")
                               .replace("\n", " ") for f in EXPORT_FIELDS))
    return "\n".join(lines) + "\n"
