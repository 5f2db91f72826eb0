"""Export a result's rows to CSV, JSON lines or Parquet."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.files import replacing
from pipeline.sql.output import to_jsonable, write_rows

EXPORT_FORMATS = {"csv": "CSV (*.csv)", "jsonl": "JSON lines (*.jsonl)",
                  "parquet": "Parquet (*.parquet)"}


def export_rows(path: Path, fmt: str, columns: Sequence[str], types: Sequence[str],
                rows: Sequence[Sequence[Any]]) -> None:
    path = Path(path)
    with replacing(path, mkdir=False, suffix=".part") as tmp:
        if fmt == "csv":
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                write_rows(fh, columns, rows, "csv")
        elif fmt == "jsonl":
            with tmp.open("w", encoding="utf-8") as fh:
                write_rows(fh, columns, rows, "json")
        elif fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            data = {}
            for i, name in enumerate(columns):
                values = [r[i] for r in rows]
                if any(isinstance(v, dict | list | tuple) or hasattr(v, "asDict") for v in values):
                    values = [None if v is None else str(to_jsonable(v)) for v in values]
                data[name] = values
            pq.write_table(pa.table(data), tmp)
        else:
            raise ValueError(f"unknown export format {fmt!r}")
