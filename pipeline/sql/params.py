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
