"""Spark columns for a compiled access-log format (:mod:`pipeline.log_formats`).

Pure column builders: :func:`pipeline.transforms.parsing.parse_records` calls them once per
known format when it builds the query, so every pattern is a literal compiled once per task,
and :func:`pipeline.log_formats.parse` is the Python twin that tests compare against.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from pipeline import access_log
from pipeline.log_formats import (
    FIRST_NUMBER_RE,
    SCHEME_HOST_RE,
    SPARK_HAPROXY_TIME,
    CompiledFormat,
)


def _ts(fmt: CompiledFormat, g) -> tuple[Column, Column]:
    """(timestamp, the time text as written) of a line known to match."""
    kind = fmt.ts_kind
    if kind == "w3c":
        text = F.concat(g(fmt.role("date").index), F.lit("T"), g(fmt.role("time").index))
        return F.try_to_timestamp(F.concat(text, F.lit("Z"))), text
    text = g(fmt.role("ts").index)
    if kind == "clf":
        return F.try_to_timestamp(text, F.lit(access_log.SPARK_TIME_FORMAT)), text
    if kind == "haproxy":
        return (F.try_to_timestamp(F.concat(text, F.lit(" +0000")), F.lit(SPARK_HAPROXY_TIME)),
                text)
    if kind == "msec":
        return F.timestamp_millis(F.round(text.try_cast("double") * 1000).cast("bigint")), text
    return F.try_to_timestamp(text), text


def latency_column(text: Column, unit: float | Column) -> Column:
    """Milliseconds from the first number of ``text``; null for ``-``, negatives, garbage."""
    num = F.regexp_extract(text, FIRST_NUMBER_RE, 0)
    unit = unit if isinstance(unit, Column) else F.lit(unit)
    return F.when((num != "") & ~num.startswith("-"), num.try_cast("double") * unit)


def format_fields(text: Column, fmt: CompiledFormat) -> dict[str, Column]:
    """The ``logs`` fields (plus ``ts_text`` and ``extra``) of a line matching ``fmt``."""

    def g(i: int) -> Column:
        return F.regexp_extract(text, fmt.regex, i)

    def role(name: str) -> Column | None:
        grp = fmt.role(name)
        return g(grp.index) if grp else None

    method = role("method") if fmt.role("method") else F.lit("")
    protocol = role("protocol") if fmt.role("protocol") else F.lit("")
    if fmt.role("target"):
        target = role("target")
        full = target
    else:
        target = role("path")
        query = role("query")
        full = target if query is None else F.when(
            (query != "") & (query != "-"), F.concat(target, F.lit("?"), query)
        ).otherwise(target)
    size = role("bytes")
    lat = fmt.role("latency")
    ts, ts_text = _ts(fmt, g)
    extras = fmt.extras
    extra = F.map_filter(
        F.map_from_arrays(F.array(*[F.lit(e.name) for e in extras]),
                          F.array(*[g(e.index) for e in extras])),
        lambda _k, v: (v != "-") & (v != ""),
    ) if extras else F.create_map().cast("map<string,string>")
    return {
        "ts": ts,
        "ts_text": ts_text,
        "method": method,
        "endpoint": F.substring_index(F.regexp_replace(target, SCHEME_HOST_RE, ""), "?", 1),
        "status": role("status").try_cast("int"),
        "latency_ms": latency_column(g(lat.index), lat.var.unit) if lat else
        F.lit(None).cast("double"),
        "bytes": (F.when(size == "-", F.lit(0).cast("bigint")).otherwise(size.try_cast("bigint"))
                  if size is not None else F.lit(0).cast("bigint")),
        "client_ip": role("client_ip") if fmt.role("client_ip") else F.lit(None).cast("string"),
        "user_agent": (role("user_agent") if fmt.role("user_agent")
                       else F.lit(None).cast("string")),
        "message": F.when(protocol != "", F.concat_ws(" ", method, full, protocol))
        .otherwise(F.concat_ws(" ", method, full)),
        "extra": extra,
    }


def custom_match(text: Column, regex: Column) -> Column:
    """Does ``text`` match the per-row ``regex`` (the ``log_regex`` header)? False if absent."""
    return F.coalesce(F.call_function("rlike", text, regex), F.lit(False))


def custom_fields(text: Column, regex: Column, spec: Column) -> dict[str, Column]:
    """:func:`format_fields` for a ``custom`` line: regex and group spec come with the row
    (headers ``log_regex`` / ``log_groups``, :func:`pipeline.log_formats.group_spec`).

    Spark caches the last pattern per expression, so a partition of one file's lines
    compiles it once; a role the spec lacks gives a null index, hence a null value.
    """
    m = F.str_to_map(spec, F.lit(";"), F.lit("="))

    def role(name: str) -> Column:
        return F.call_function("regexp_extract", text, regex,
                               F.element_at(m, F.lit(name)).try_cast("int"))

    def has(name: str) -> Column:
        return F.element_at(m, F.lit(name)).isNotNull()

    method = F.coalesce(role("method"), F.lit(""))
    protocol = F.coalesce(role("protocol"), F.lit(""))
    query = role("query")
    path = role("path")
    target = F.when(has("target"), role("target")).otherwise(F.coalesce(path, F.lit("")))
    full = F.when(has("target"), target).when(
        query.isNotNull() & (query != "") & (query != "-"), F.concat(target, F.lit("?"), query)
    ).otherwise(target)
    kind = F.element_at(m, F.lit("ts_kind"))
    ts_raw = role("ts")
    w3c = F.concat(role("date"), F.lit("T"), role("time"))
    ts_text = F.when(kind == "w3c", w3c).otherwise(ts_raw)
    ts = (
        F.when(kind == "clf", F.try_to_timestamp(ts_raw, F.lit(access_log.SPARK_TIME_FORMAT)))
        .when(kind == "haproxy", F.try_to_timestamp(F.concat(ts_raw, F.lit(" +0000")),
                                                    F.lit(SPARK_HAPROXY_TIME)))
        .when(kind == "msec",
              F.timestamp_millis(F.round(ts_raw.try_cast("double") * 1000).cast("bigint")))
        .when(kind == "w3c", F.try_to_timestamp(F.concat(w3c, F.lit("Z"))))
        .otherwise(F.try_to_timestamp(ts_raw))
    )
    size = role("bytes")
    names = F.split(F.element_at(m, F.lit("extra_names")), ",")
    values = F.transform(
        F.split(F.element_at(m, F.lit("extra_idx")), ","),
        lambda i: F.call_function("regexp_extract", text, regex, i.try_cast("int")),
    )
    extra = F.map_filter(F.map_from_arrays(names, values),
                         lambda _k, v: v.isNotNull() & (v != "-") & (v != ""))
    return {
        "ts": ts,
        "ts_text": ts_text,
        "method": method,
        "endpoint": F.substring_index(F.regexp_replace(target, SCHEME_HOST_RE, ""), "?", 1),
        "status": role("status").try_cast("int"),
        "latency_ms": latency_column(
            role("latency"), F.element_at(m, F.lit("latency_unit")).try_cast("double")),
        "bytes": F.when(size.isNull() | (size == "-"), F.lit(0).cast("bigint"))
        .otherwise(size.try_cast("bigint")),
        "client_ip": role("client_ip"),
        "user_agent": role("user_agent"),
        "message": F.when(protocol != "", F.concat_ws(" ", method, full, protocol))
        .otherwise(F.concat_ws(" ", method, full)),
        "extra": extra,
    }
