"""Turn Spark's exceptions into SqlError with a clean message and a line/column."""

from __future__ import annotations

import re

from pipeline.sql.errors import SqlError
from pipeline.sql.splitter import line_col

_POS_RE = re.compile(r"line (\d+),? pos (\d+)")
_SQLSTATE_RE = re.compile(r"\s*SQLSTATE: \w+\s*")


def _clean_message(text: str) -> str:
    """Spark's message without the echoed SQL, the plan dump or the JVM stack trace."""
    for cut in ("\n== SQL", "\nJVM stacktrace:", ";\n'", ";\n", "\n\tat "):
        idx = text.find(cut)
        if idx > 0:
            text = text[:idx]
    text = _POS_RE.sub("", text)
    text = _SQLSTATE_RE.sub(" ", text)
    return re.sub(r"[\s;(),]+$", "", text.strip()).replace("  ", " ")


def from_spark(exc: BaseException, statement: str) -> SqlError:
    """A SqlError for ``exc`` raised while running ``statement``; line/column are within
    the statement (1-based)."""
    if isinstance(exc, SqlError):
        return exc
    text = str(exc)
    error_class = None
    for getter in ("getCondition", "getErrorClass"):
        fn = getattr(exc, getter, None)
        if fn is not None:
            try:
                error_class = fn()
            except Exception:  # noqa: BLE001, S112 - older/newer pyspark
                continue
            if error_class:
                break
    line = column = None
    try:
        contexts = exc.getQueryContext() if hasattr(exc, "getQueryContext") else []
    except Exception:  # noqa: BLE001
        contexts = []
    for ctx in contexts or []:
        try:
            start = int(ctx.startIndex())
        except Exception:  # noqa: BLE001, S112 - DataFrame contexts have no index
            continue
        if start >= 0:
            line, column = line_col(statement, start)
            break
    if line is None:
        match = _POS_RE.search(text)
        if match:
            line, column = int(match.group(1)), int(match.group(2)) + 1
    message = _clean_message(text) or type(exc).__name__
    return SqlError(message, line=line, column=column, error_class=error_class)


def shift(err: SqlError, script: str, statement_start: int) -> SqlError:
    """Move an error's statement-relative position into the script."""
    if err.line is None:
        line, col = line_col(script, statement_start)
        return err.located(line, col)
    base_line, base_col = line_col(script, statement_start)
    if err.line == 1:
        return err.located(base_line, base_col + (err.column or 1) - 1)
    return err.located(base_line + err.line - 1, err.column)
