"""Named query parameters bound as literals in the plan (never spliced into SQL text).

``spark.sql(query, args=...)`` loses its arguments on this Spark + Delta build (Delta's
parser extension does not forward them: UNBOUND_SQL_PARAMETER), so the engine builds the
same thing Spark does internally: the parsed plan wrapped in ``NameParameterizedQuery``
with one ``Literal`` per argument, analysed by the session's own BindParameters rule.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pipeline.sql.errors import SqlError


def _java_value(jvm: Any, value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return jvm.java.time.Instant.parse(value.isoformat() + "Z")  # naive = UTC (session tz)
    if isinstance(value, date):
        return jvm.java.time.LocalDate.parse(value.isoformat())
    if isinstance(value, Decimal):
        return jvm.java.math.BigDecimal(str(value))
    raise SqlError(f"unsupported parameter type {type(value).__name__}")


def literal(jvm: Any, value: Any) -> Any:
    """A catalyst Literal for a Python value."""
    module = getattr(getattr(jvm.org.apache.spark.sql.catalyst.expressions, "Literal$"), "MODULE$")
    return module.apply(_java_value(jvm, value))


def sql_with_args(spark: Any, sql: str, args: dict[str, Any] | None) -> Any:
    """``spark.sql(sql)`` with ``:name`` markers bound to ``args``; a pyspark DataFrame."""
    if not args:
        return spark.sql(sql)
    from pyspark.sql import DataFrame

    jvm = spark.sparkContext._jvm
    jss = spark._jsparkSession
    plan = jss.sessionState().sqlParser().parsePlan(sql)
    names = [str(k) for k in args]
    exprs = [literal(jvm, args[k]) for k in args]
    to_seq = jvm.org.apache.spark.api.python.PythonUtils.toSeq
    query = jvm.org.apache.spark.sql.catalyst.analysis.NameParameterizedQuery(
        plan, to_seq(names), to_seq(exprs)
    )
    return DataFrame(jvm.org.apache.spark.sql.classic.Dataset.ofRows(jss, query), spark)


def sql_literal(value: Any) -> str:
    """``value`` as a Spark SQL literal of the type :func:`literal` would bind."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return f"CAST('{value!r}' AS DOUBLE)".replace("inf", "Infinity").replace("nan", "NaN")
        return f"{value!r}D"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        return f"'{escaped}'"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"  # naive = UTC (the session time zone)
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, Decimal):
        return f"{value}BD"
    raise SqlError(f"unsupported parameter type {type(value).__name__}")


_NAME_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | set("0123456789")


def inline_args(sql: str, args: dict[str, Any] | None) -> str:
    """``sql`` with each ``:name`` marker of ``args`` replaced by its value's literal.

    For Spark Connect, whose server loses bound parameters on this Spark + Delta build as
    ``spark.sql(query, args=...)`` does: markers are found only in SQL text proper (never in
    strings, quoted names or comments), and values are escaped literals, never raw text.
    """
    if not args:
        return sql
    from pipeline.sql.splitter import plain_code

    plain = plain_code(sql)
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if (c == ":" and plain[i] and i + 1 < n and sql[i + 1] in _NAME_START
                and (i == 0 or sql[i - 1] != ":")):
            j = i + 1
            while j < n and sql[j] in _NAME_CHARS:
                j += 1
            name = sql[i + 1:j]
            if name in args:
                out.append(sql_literal(args[name]))
                i = j
                continue
        out.append(c)
        i += 1
    return "".join(out)
