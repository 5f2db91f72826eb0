"""Build a SELECT from a structured spec (pure: no Spark).

Table and column names must come from the catalog allow-list and are emitted back-quoted;
every user-typed value becomes a named parameter (``:p0``…) for ``spark.sql(sql, args)``, so a
value is always data, never SQL: ``x' OR '1'='1`` is compared as that exact string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.sql.errors import SqlError

OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "LIKE", "NOT LIKE", "IN", "NOT IN",
             "IS NULL", "IS NOT NULL")
AGGREGATES = ("count", "count_distinct", "avg", "sum", "min", "max", "percentile")


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    value: Any = None  # a list for IN / NOT IN; unused for IS [NOT] NULL


@dataclass(frozen=True)
class Aggregate:
    func: str
    column: str | None = None  # None: count(*)
    percentile: float | None = None  # for func == "percentile", in [0, 1]
    alias: str | None = None


@dataclass(frozen=True)
class TimeRange:
    column: str
    start: datetime | None = None
    end: datetime | None = None  # exclusive


@dataclass
class QuerySpec:
    table: str
    columns: list[str] = field(default_factory=list)  # empty: * (or only the group keys)
    filters: list[Filter] = field(default_factory=list)
    time_range: TimeRange | None = None
    group_by: list[str] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)
    order_by: list[tuple[str, bool]] = field(default_factory=list)  # (column or alias, desc)
    limit: int | None = 1000


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _alias(agg: Aggregate) -> str:
    if agg.alias:
        return agg.alias
    col = agg.column or "all"
    if agg.func == "percentile":
        return f"p{round((agg.percentile or 0) * 100):g}_{col}"
    return f"{agg.func}_{col}"


def build_query(spec: QuerySpec, catalog: Mapping[str, Sequence[str]]) -> tuple[str, dict]:
    """``(sql, args)`` for the spec; raises SqlError for a name not in ``catalog``
    (table -> column names) or an unknown operator/aggregate."""
    tables = {t.lower(): t for t in catalog}
    if spec.table.lower() not in tables:
        raise SqlError(f"unknown table {spec.table!r}")
    table = tables[spec.table.lower()]
    known = {c.lower(): c for c in catalog[table]}

    def col(name: str) -> str:
        if name.lower() not in known:
            raise SqlError(f"unknown column {name!r} in table {table!r}")
        return quote(known[name.lower()])

    args: dict[str, Any] = {}

    def param(value: Any) -> str:
        key = f"p{len(args)}"
        args[key] = value
        return f":{key}"

    select: list[str] = [col(c) for c in spec.group_by]
    if not spec.group_by and not spec.aggregates:
        select = [col(c) for c in spec.columns] or ["*"]
    elif spec.columns and not spec.group_by:
        raise SqlError("with aggregates, plain columns must be in GROUP BY")
    aliases = set()
    for agg in spec.aggregates:
        func = agg.func.lower()
        if func not in AGGREGATES:
            raise SqlError(f"unknown aggregate {agg.func!r}; one of {', '.join(AGGREGATES)}")
        alias = _alias(agg)
        if not alias.replace("_", "").isalnum():
            raise SqlError(f"alias {alias!r} must be letters, digits and _")
        aliases.add(alias.lower())
        if func == "count" and agg.column is None:
            expr = "count(*)"
        elif agg.column is None:
            raise SqlError(f"{func} needs a column")
        elif func == "count_distinct":
            expr = f"count(DISTINCT {col(agg.column)})"
        elif func == "percentile":
            p = agg.percentile
            if p is None or not 0 <= float(p) <= 1:
                raise SqlError("percentile needs a fraction between 0 and 1")
            expr = f"percentile_approx({col(agg.column)}, {float(p)!r})"
        else:
            expr = f"{func}({col(agg.column)})"
        select.append(f"{expr} AS {quote(alias)}")

    where: list[str] = []
    for flt in spec.filters:
        op = flt.op.upper().strip()
        if op not in OPERATORS:
            raise SqlError(f"unknown operator {flt.op!r}; one of {', '.join(OPERATORS)}")
        if op in ("IS NULL", "IS NOT NULL"):
            where.append(f"{col(flt.column)} {op}")
        elif op in ("IN", "NOT IN"):
            values = list(flt.value) if isinstance(flt.value, list | tuple | set) else [flt.value]
            if not values:
                raise SqlError(f"{op} needs at least one value")
            where.append(f"{col(flt.column)} {op} ({', '.join(param(v) for v in values)})")
        else:
            where.append(f"{col(flt.column)} {op} {param(flt.value)}")
    if spec.time_range is not None:
        tr = spec.time_range
        if tr.start is not None:
            where.append(f"{col(tr.column)} >= {param(tr.start)}")
        if tr.end is not None:
            where.append(f"{col(tr.column)} < {param(tr.end)}")

    sql = f"SELECT {', '.join(select)}\nFROM {quote(table)}"
    if where:
        sql += "\nWHERE " + "\n  AND ".join(where)
    if spec.group_by:
        sql += "\nGROUP BY " + ", ".join(col(c) for c in spec.group_by)
    if spec.order_by:
        keys = []
        for name, desc in spec.order_by:
            ref = quote(name) if name.lower() in aliases else col(name)
            keys.append(f"{ref} DESC" if desc else ref)
        sql += "\nORDER BY " + ", ".join(keys)
    if spec.limit is not None:
        if int(spec.limit) < 0:
            raise SqlError("limit must be >= 0")
        sql += f"\nLIMIT {int(spec.limit)}"
    return sql, args
