"""Write a result as an aligned text table, CSV or JSON lines (CLI and exports share it)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

FORMATS = ("table", "csv", "json")


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if hasattr(value, "asDict"):
        return {k: to_jsonable(v) for k, v in value.asDict().items()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def cell_text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict | list | tuple) or hasattr(value, "asDict"):
        return json.dumps(to_jsonable(value), default=str)
    return str(value)


def write_rows(
    out: TextIO, columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str = "table"
) -> None:
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else cell_text(v) for v in row])
    elif fmt == "json":
        for row in rows:
            out.write(json.dumps(dict(zip(columns, map(to_jsonable, row), strict=True)),
                                 default=str))
            out.write("\n")
    elif fmt == "table":
        text = [[cell_text(v) for v in row] for row in rows]
        widths = [len(c) for c in columns]
        for row in text:
            widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
        out.write(" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
        out.write("\n" + "-+-".join("-" * w for w in widths) + "\n")
        for row in text:
            out.write(" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
            out.write("\n")
    else:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
