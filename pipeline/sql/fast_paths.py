"""Exact fast paths for the query shapes the app itself issues on ``logs``.

A rewrite only ever replaces the table reference ``FROM logs [alias]`` with a filtered
subquery ``FROM (SELECT * FROM logs WHERE …) AS alias``: every row that subquery drops is
one the original could not use, so results are the same, and the added bounds on ``ts`` and
``date`` let Delta prune partitions and skip files by their ``ts`` statistics.

Two shapes, recognised on the statement text (comments, strings and quoted names masked):

* **time-bounded** - a single-table ``SELECT … FROM logs WHERE … ts > X …`` (``>``, ``>=``,
  ``BETWEEN X AND …``) with ``ts > X`` a top-level conjunct and ``X`` built only from
  literals, ``current_timestamp()``/``now()``/``current_date()`` and intervals: the subquery
  keeps ``date >= date_sub(to_date(X), 2)``. Exact because ``date`` is written as
  ``to_date(ts)`` (UTC, ``spark_session_manager``) and the calendar dates of one instant in
  two time zones differ by at most one day (offsets span 26 h), so a row with ``ts > X``
  always passes; ``X`` is evaluated once per query (``current_timestamp()`` is one value in
  the whole plan), whatever comes after the WHERE (GROUP BY, windows, HAVING, ORDER BY).
* **latest N** - ``SELECT <columns> FROM logs [WHERE p] ORDER BY ts DESC[, …] LIMIT n`` with
  plain column references only (no expression could be aliased ``ts``): the subquery keeps
  ``ts >= current_timestamp() - w`` for w = 1 min, 1 h, 1 day, and the answer is used only
  when it has n rows. Exact: if the restricted query has n rows, the n-th greatest ``ts`` of
  the whole query is at least as large, so every row that can appear in the original answer
  passes the bound (NULL ``ts`` sort last, so they never can). With ties on the sort keys at
  the n-th row, the original picks any of the tied rows, and so does the rewrite: the same
  sort keys row by row, the same rows above the tie, tied rows from the same candidates.

Anything else (joins, subqueries, set operations, OR at the WHERE's top level,
nondeterministic functions, quoted names, a rewrite that fails to analyse or changes the
schema) runs unrewritten.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.schemas import TABLE_LOGS
from pipeline.sql.splitter import _scan

log = logging.getLogger(__name__)

#: Windows tried for latest N, newest first (seconds before ``current_timestamp()``).
LATEST_WINDOWS_S = (60, 3600, 86400)
#: Latest N collects the rows in the driver to check their number: small results only.
MAX_LATEST_ROWS = 10_000

_MASK = "#"
_I = re.IGNORECASE | re.DOTALL
_IDENT = r"[a-z_][a-z0-9_]*"
_NOT_ALIAS = frozenset({
    "where", "group", "order", "limit", "join", "inner", "left", "right", "full", "cross",
    "natural", "anti", "semi", "lateral", "tablesample", "pivot", "unpivot", "window",
    "having", "union", "except", "intersect", "minus", "on", "using", "cluster", "distribute",
    "sort", "qualify", "offset", "as", "for", "version", "timestamp",
})
#: Words that end the WHERE clause of a single SELECT block.
_TAIL = (r"group\s+by|having|order\s+by|limit|window|qualify|cluster\s+by|distribute\s+by|"
         r"sort\s+by|offset")
_BLOCK_RE = re.compile(
    rf"^\s*select\s+(?P<cols>.*?)\s+from\s+(?P<table>{_IDENT})"
    rf"(?:\s+(?:as\s+)?(?P<alias>{_IDENT}))?"
    rf"(?:\s+where\s+(?P<where>.*?))?(?P<tail>\s+(?:{_TAIL})\b.*)?\s*$",
    _I,
)
_LATEST_TAIL_RE = re.compile(
    rf"^\s+order\s+by\s+(?:(?P<q>{_IDENT})\.)?ts\s+desc(?:\s+nulls\s+last)?"
    rf"(?:\s*,\s*[^#]*?)?\s+limit\s+(?P<n>\d+)\s*$",
    _I,
)
_ANYWHERE_REFUSED = re.compile(
    r"\b(?:join|union|intersect|except|minus|lateral|tablesample|pivot|unpivot|rand|randn|"
    r"random|uuid|shuffle|monotonically_increasing_id|spark_partition_id|input_file_name|"
    r"input_file_block_start|input_file_block_length|_metadata|try_reflect|reflect|"
    r"java_method)\b",
    _I,
)
_COLUMN_RE = re.compile(
    rf"^\s*(?:\*|{_IDENT}\.\*|(?:{_IDENT}\.)?{_IDENT}(?:\s+as\s+(?P<alias>{_IDENT}))?)\s*$", _I
)
_BOUND_RE = re.compile(
    rf"^\s*(?:(?P<q>{_IDENT})\.)?ts\s*(?:>=|>|\s+between\s)\s*(?P<x>.+?)\s*$", _I
)
#: What a time bound ``X`` may be made of: literals, the clock, intervals.
_BOUND_WORDS = frozenset({
    "current_timestamp", "now", "current_date", "localtimestamp", "interval", "timestamp",
    "timestamp_ltz", "timestamp_ntz", "date", "to_timestamp", "cast", "as",
    "year", "years", "month", "months", "week", "weeks", "day", "days", "hour", "hours",
    "minute", "minutes", "second", "seconds", "millisecond", "milliseconds",
    "microsecond", "microseconds", "to",
})
_STRING_RE = re.compile(r"^'(?:[^'\\]|\\.)*'$", re.DOTALL)
_BOUND_TOKEN_RE = re.compile(r"\s+|#+|\d+(?:\.\d+)?|[a-z_][a-z0-9_]*|[-+*/(),.]", _I)


@dataclass(frozen=True)
class Shape:
    """Where and how one statement can be restricted."""

    table_span: tuple[int, int]  # ``logs [alias]`` in the statement
    table: str
    alias: str
    date_bounds: tuple[str, ...]  # ``X`` of each ``ts > X`` conjunct
    latest_n: int | None  # n of ``ORDER BY ts DESC … LIMIT n`` (plain columns only)

    def rewrite(self, sql: str, window_s: int | None = None) -> str:
        """``sql`` with its table reference replaced by the restricted subquery."""
        preds = [f"`date` >= date_sub(to_date({x}), 2)" for x in self.date_bounds]
        if window_s is not None:
            since = f"current_timestamp() - INTERVAL {int(window_s)} SECONDS"
            preds += [f"ts >= {since}", f"`date` >= date_sub(to_date({since}), 2)"]
        sub = f"(SELECT * FROM {self.table} WHERE {' AND '.join(preds)}) AS {self.alias}"
        start, end = self.table_span
        return f"{sql[:start]}{sub}{sql[end:]}"


def _masked(sql: str) -> str:
    """``sql`` with comments blanked and strings and quoted names masked (same length)."""
    quoted = [False] * len(sql)
    _, code = _scan(sql, quoted)
    return "".join(_MASK if q else c if k else " "
                   for c, k, q in zip(sql, code, quoted, strict=True))


def _depths(text: str) -> list[int] | None:
    """Parenthesis depth before each character; None when unbalanced."""
    out, depth = [], 0
    for c in text:
        out.append(depth)
        depth += (c == "(") - (c == ")")
        if depth < 0:
            return None
    return out if depth == 0 else None


def _split_top(text: str, word: str) -> list[str] | None:
    """``text`` split on ``word`` outside parentheses; None when unbalanced."""
    depths = _depths(text)
    if depths is None:
        return None
    parts, last = [], 0
    pattern = rf"\b{word}\b" if word.isalpha() else re.escape(word)
    for m in re.finditer(pattern, text, re.IGNORECASE):
        if depths[m.start()] == 0:
            parts.append(text[last:m.start()])
            last = m.end()
    parts.append(text[last:])
    return parts


def _bound_ok(x: str, sql: str, offset: int) -> bool:
    """``X`` is made of literals, the clock and intervals only (so it has one value per
    query and reads no column)."""
    pos = 0
    for m in _BOUND_TOKEN_RE.finditer(x):
        if m.start() != pos:
            return False
        pos = m.end()
        tok = m.group()
        if tok.startswith(_MASK):  # one single-quoted string; no quoted names, no comments
            if not _STRING_RE.match(sql[offset + m.start():offset + m.end()]):
                return False
        elif (tok[0].isalpha() or tok[0] == "_") and tok.lower() not in _BOUND_WORDS:
            return False
    return pos == len(x) and _depths(x) is not None


def _refers_to_ts(q: str | None, table: str, alias: str) -> bool:
    return q is None or q.lower() in (table.lower(), alias.lower())


def _date_bounds(where: str, sql: str, offset: int, table: str, alias: str) -> list[str]:
    if _split_top(where, "or") != [where]:
        return []  # an OR at the top: no conjunct is implied
    parts = _split_top(where, "and") or []
    bounds, pos, skip = [], offset, False
    for part in parts:
        start, pos = pos, pos + len(part) + 3  # + "and"
        if skip:
            skip = False
            continue
        m = _BOUND_RE.match(part)
        if m and _refers_to_ts(m.group("q"), table, alias):
            x_start = start + m.start("x")
            if _bound_ok(m.group("x"), sql, x_start):
                bounds.append(sql[x_start:start + m.end("x")])
        skip = re.search(r"\bbetween\b", part, re.IGNORECASE) is not None
    return bounds


def _plain_columns(cols: str) -> bool:
    """Only ``*``, ``t.*`` and column names (aliased to anything but ``ts``)."""
    items = _split_top(cols, ",") if "," in cols else [cols]
    for item in items or []:
        m = _COLUMN_RE.match(item)
        if m is None or (m.group("alias") or "").lower() == "ts":
            return False
    return bool(items)


def _aliases_ts(cols: str) -> bool:
    """The select list may name an output ``ts`` (``… AS ts`` or ``expr ts``)."""
    for m in re.finditer(r"\bts\b", cols, re.IGNORECASE):
        before = cols[:m.start()].rstrip()
        if before and before[-1] not in ",(+-*/%<>=|&." and not re.search(
                r"\b(?:select|distinct|all)$", before, re.IGNORECASE):
            return True
    return False


def recognise(sql: str, table: str = TABLE_LOGS) -> Shape | None:
    """The fast-path shape of one statement, or None when it has none (or any doubt)."""
    masked = _masked(sql)
    if (len(re.findall(r"\bselect\b", masked, re.IGNORECASE)) != 1
            or _ANYWHERE_REFUSED.search(masked) or ";" in masked):
        return None
    m = _BLOCK_RE.match(masked)
    if m is None or m.group("table").lower() != table.lower():
        return None
    alias = m.group("alias") or m.group("table")
    if alias.lower() in _NOT_ALIAS or _depths(m.group("cols")) is None:
        return None
    where = m.group("where")
    bounds: list[str] = []
    if where is not None:
        if _depths(where) is None:
            return None
        if not _aliases_ts(m.group("cols")):
            bounds = _date_bounds(where, sql, m.start("where"), table, alias)
    latest = None
    tail = _LATEST_TAIL_RE.match(m.group("tail") or "")
    if (tail and _refers_to_ts(tail.group("q"), table, alias)
            and _plain_columns(m.group("cols"))):
        latest = int(tail.group("n"))
    if not bounds and latest is None:
        return None
    end = m.end("alias") if m.group("alias") else m.end("table")
    return Shape((m.start("table"), end), sql[m.start("table"):m.end("table")], alias,
                 tuple(bounds), latest)


def apply(
    sql: str,
    df: Any,
    build: Callable[[str], Any],
    max_rows: int,
    table: str = TABLE_LOGS,
) -> tuple[Any, list[tuple] | None]:
    """``(df, None)`` unchanged, a restricted DataFrame ``(fast_df, None)``, or the finished
    answer ``(df, rows)`` of a latest-N query with fewer than ``max_rows`` rows.

    ``build(text)`` makes a DataFrame of a statement the way the engine does. Any error or
    schema difference in a rewrite returns ``df`` unchanged (its own error, if any, then
    surfaces with the original's positions).
    """
    shape = recognise(sql, table)
    if shape is None:
        return df, None
    try:
        schema = df.schema
        if shape.latest_n is not None and 0 < shape.latest_n < min(max_rows, MAX_LATEST_ROWS):
            for window in LATEST_WINDOWS_S:
                fast = build(shape.rewrite(sql, window))
                if fast.schema != schema:
                    return df, None
                rows = [tuple(r) for r in fast.collect()]
                if len(rows) == shape.latest_n:
                    log.debug("latest-%d fast path: %d s window", shape.latest_n, window)
                    return df, rows
        if shape.date_bounds:
            fast = build(shape.rewrite(sql))
            if fast.schema == schema:
                return fast, None
    except Exception:  # noqa: BLE001 - any doubt: the original statement as written
        log.debug("fast path not used for %r", sql, exc_info=True)
    return df, None
