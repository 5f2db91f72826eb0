"""Build a SELECT from a structured spec (pure: no Spark).

Table and column names must come from the catalog allow-list and are emitted back-quoted;
every user-typed value becomes a named parameter (``:p0``…) for ``spark.sql(sql, args)``, so a
value is always data, never SQL: ``x' OR '1'='1`` is compared as that exact string.

Percentiles come from a KLL sketch (Apache DataSketches, Spark 4.1+'s ``kll_*`` functions):
several times faster than ``percentile_approx`` on many groups, at a stated *rank* error
(``kll_rank_error``). The percentiles of one column share one sketch: Spark computes an
aggregate that appears several times in a SELECT only once.
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

#: k of the builder's KLL sketches (Spark allows 8-65535, default 200). The rank error falls
#: about as 1/k and a full sketch grows as k (4 KB at 200, 8 KB at 400, 20 KB at 1,000 per
#: group, held per group while aggregating). On 5 M rows x 500 groups (``bench/kll_quantiles.py``)
#: 200, 400 and 1,000 all took 1.5-3.5 s on a loaded machine (percentile_approx 11-22 s).
KLL_K = 400


def kll_rank_error(k: int = KLL_K) -> float:
    """The normalized rank error of a KLL sketch's quantiles, as a fraction, at 99 % confidence.

    Apache DataSketches' single-sided bound (``getNormalizedRankError(k, false)``, the one for
    quantile and rank queries; about 1.33 % at k = 200, where the double-sided PMF bound is the
    often quoted 1.65 %). A p95 is a value whose rank in its group lies within 95 % ± this,
    which says nothing about how far its *value* is from the exact p95 where the data is
    sparse (a long tail)."""
    return 2.296 / k ** 0.9723


def percentile_note(k: int = KLL_K) -> str:
    """One line for a user: what the builder's percentiles are and how approximate."""
    err = kll_rank_error(k) * 100
    return (f"Percentiles are approximate (KLL sketch, k = {k}): rank error ±{err:.2g} % "
            f"(99 % confidence), e.g. p95 is a value ranked between {95 - err:.4g} % and "
            f"{95 + err:.4g} % of its group. NULL for a group without values.")


def kll_percentile_sql(column_sql: str, q: float, k: int = KLL_K) -> str:
    """SQL of the ``q`` quantile of ``column_sql`` from a KLL sketch; NULL, not an error, when
    the group has no values (Spark fails on an empty sketch; NULL and NaN are not counted)."""
    sketch = f"kll_sketch_agg_double(CAST({column_sql} AS DOUBLE), {int(k)})"
    return (f"CASE WHEN kll_sketch_get_n_double({sketch}) > 0 "
            f"THEN kll_sketch_get_quantile_double({sketch}, {float(q)!r}) END")


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
            expr = kll_percentile_sql(col(agg.column), float(p))
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
