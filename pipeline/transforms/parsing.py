"""Kafka records -> rows of the ``logs`` table, or quarantine rows with a readable reason.

One message is one event: a JSON object with the fields of
:data:`pipeline.schemas.EVENT_FIELDS`, or a raw access-log line in the combined or common
format (patterns from :mod:`pipeline.access_log`), in a preset's format, or in a ``custom``
format string (both compiled by :mod:`pipeline.log_formats`; a custom line carries its regex
and group spec in headers, see :mod:`pipeline.sources.shipper`). The format comes from the
Kafka header ``format`` when a producer set it, else it is sniffed: a body starting with
``{`` is JSON, then the combined pattern is tried, then the common one (presets are never
sniffed: item 6 of issue 17). Every access format yields an ``extra`` map (variables with no
``logs`` column); it is in the parsed frame but not yet in the ``logs`` table.

A message is quarantined (first failing check wins, in this order):

======================  ===================================================================
reason starts with       when
======================  ===================================================================
``empty message``        null or blank value
``oversize``             more than ``max_message_bytes`` bytes (checked before decoding)
``invalid UTF-8``        the body is not valid UTF-8
``unrecognised format``  neither a JSON object nor an access-log line
``malformed JSON``       not parseable as one JSON object
``wrong type``           a field has the wrong JSON type: numbers for ``ts`` (epoch ms; an
                         ISO-8601 string is also accepted), ``status``, ``latency_ms``,
                         ``bytes``; a quoted number is a wrong type, not a number
``missing field``        a required field (:data:`REQUIRED_JSON_FIELDS`) is absent, null or ""
``no match``             the line does not match the access-log format its header named
``bad timestamp``        the access-log time is not ``dd/MMM/yyyy:HH:mm:ss Z``, or a JSON
                         ``ts`` is not a plausible epoch-milliseconds value
``invalid value``        level not in :data:`pipeline.schemas.LEVELS` (case-insensitive),
                         status outside 100-599, negative ``latency_ms`` or ``bytes``
``timestamp too old``    ``ts`` more than ``max_past_s`` before ingest time
``timestamp in future``  ``ts`` more than ``max_future_s`` after ingest time
======================  ===================================================================

``event_id``: the JSON field; else the Kafka header ``event_id`` (the file shipper sets it
from the file identity and byte offset); else ``"<topic>-<partition>-<offset>"``.

Spark 4 runs in ANSI mode, so every conversion here is a ``try_`` variant: a bad value
becomes a quarantine reason, never a failed micro-batch.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipeline import access_log, log_formats
from pipeline.log_formats import HEADER_LOG_GROUPS, HEADER_LOG_REGEX
from pipeline.log_formats_spark import custom_fields, custom_match, format_fields
from pipeline.schemas import HEADER_EVENT_ID, HEADER_FORMAT, HEADER_SOURCE, LEVELS
from pipeline.transforms.columns import (
    LOGS_COLUMNS,
    QUARANTINE_COLUMNS,
    batch_constant,
    conform,
)

#: JSON fields an event must carry (non-null, non-empty); the others may be absent.
REQUIRED_JSON_FIELDS: tuple[str, ...] = ("ts", "level", "source", "method", "endpoint", "status")
#: ``source`` of an access-log line whose producer set no ``source`` header.
DEFAULT_ACCESS_SOURCE = "access-log"
#: Status codes outside this range are invalid values.
STATUS_RANGE = (100, 599)
#: JSON ``ts`` must lie within (0, this) epoch ms (year 5138), else it is a bad timestamp.
_MAX_EPOCH_MS = 1e14

_NUMERIC = {"ts": T.DoubleType(), "status": T.IntegerType(), "latency_ms": T.DoubleType(),
            "bytes": T.LongType()}
_JSON_FIELDS = ("event_id", "ts", "level", "source", "method", "endpoint", "status",
                "latency_ms", "bytes", "client_ip", "user_agent", "message")
_CORRUPT = "_corrupt"

#: Typed parse: with the corrupt-record column, a type mismatch in any field sets ``_corrupt``
#: while the well-typed fields are still filled in.
JSON_TYPED = T.StructType(
    [T.StructField(f, _NUMERIC.get(f, T.StringType())) for f in _JSON_FIELDS]
    + [T.StructField(_CORRUPT, T.StringType())]
)
#: All-strings parse, run only for rows whose typed parse failed: tells malformed JSON from a
#: wrong type and names the offending fields.
JSON_STRINGS = T.StructType(
    [T.StructField(f, T.StringType()) for f in _JSON_FIELDS]
    + [T.StructField(_CORRUPT, T.StringType())]
)
_JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT}
_COMMON_TAIL = r"[ \t]*$"
if not access_log.COMMON_RE.endswith(_COMMON_TAIL) or not access_log.COMBINED_RE.startswith(
    access_log.COMMON_RE[: -len(_COMMON_TAIL)]
):  # pragma: no cover - guards the shared-head assumption of _access_fields
    raise ImportError("pipeline.access_log patterns no longer share their head")
_ACCESS_HEAD = access_log.COMMON_RE[: -len(_COMMON_TAIL)]
#: Formats the ``format`` header may name besides the fixed ones: every preset of
#: :mod:`pipeline.log_format_presets`, compiled once at import.
PRESET_FORMATS = log_formats.presets()
#: ``custom``: a format string the shipper compiled; regex and group spec come in headers.
ACCESS_FORMATS: tuple[str, ...] = ("combined", "common", *PRESET_FORMATS, "custom")


def _header(name: str) -> Column:
    """The first Kafka header called ``name`` as a string (null if absent).

    By position in ``headers.key`` rather than ``filter(headers, h -> ...)``: a lambda is
    interpreted per element, and three of them per record cost more than the JSON parse.
    """
    return F.expr(f"get(headers.value, array_position(headers.key, '{name}') - 1)").cast(
        "string"
    )


def _blank_to_null(c: Column) -> Column:
    return F.when(F.trim(c) != "", c)


def _list(items: list[tuple[Column, str]]) -> Column:
    """Comma-separated names whose condition holds ('' when none does)."""
    return F.concat_ws(", ", *[F.when(cond, F.lit(name)) for cond, name in items])


def _access_fields(text: Column, fmt: Column) -> dict[str, Column]:
    """Access-log fields of a line already known to match its format's pattern.

    Groups 1-9 mean the same in both patterns, and COMMON_RE is their shared head anchored at
    the line end, so they are read with the unanchored head (one regex for both formats);
    only the user agent needs COMBINED_RE.
    """

    def g(i: int) -> Column:
        return F.regexp_extract(text, _ACCESS_HEAD, i)

    method, path, protocol = (g(access_log.GROUP_METHOD), g(access_log.GROUP_PATH),
                              g(access_log.GROUP_PROTOCOL))
    size = g(access_log.GROUP_BYTES)
    fixed = {
        "ts": F.try_to_timestamp(g(access_log.GROUP_TIME), F.lit(access_log.SPARK_TIME_FORMAT)),
        "ts_text": g(access_log.GROUP_TIME),
        "method": method,
        "endpoint": F.substring_index(path, "?", 1),
        "status": g(access_log.GROUP_STATUS).try_cast("int"),
        "bytes": F.when(size == "-", F.lit(0).cast("bigint")).otherwise(size.try_cast("bigint")),
        "client_ip": g(access_log.GROUP_CLIENT_IP),
        "user_agent": F.when(
            fmt == "combined",
            F.regexp_extract(text, access_log.COMBINED_RE, access_log.GROUP_USER_AGENT),
        ),
        "message": F.when(protocol != "", F.concat_ws(" ", method, path, protocol)).otherwise(
            F.concat_ws(" ", method, path)
        ),
        "latency_ms": F.lit(None).cast("double"),
        "extra": F.lit(None).cast("map<string,string>"),
    }
    per_format = {name: format_fields(text, compiled) for name, compiled in PRESET_FORMATS.items()}
    per_format["custom"] = custom_fields(text, F.col("_h_regex"), F.col("_h_groups"))
    out = {}
    for key, column in fixed.items():
        case = F.when(fmt.isin("combined", "common"), column)
        for name, cols in per_format.items():
            case = case.when(fmt == name, cols[key])
        out[key] = case
    return out


def parse_records(
    records: DataFrame,
    *,
    max_message_bytes: int,
    max_past_s: int,
    max_future_s: int,
    now: Column | None = None,
) -> DataFrame:
    """Kafka source rows -> every ``logs`` column plus ``raw`` (the value) and ``reason``.

    ``reason`` is null for a valid event. ``records`` has the Kafka source's columns
    (``value``, ``topic``, ``partition``, ``offset``, ``timestamp``; ``headers`` optional).
    ``now`` defaults to ``current_timestamp()``, which in a stream is the micro-batch's
    timestamp, recorded in the checkpoint, so a replayed batch routes every row identically
    (passed as a :func:`~pipeline.transforms.columns.batch_constant`: one compiled parser for
    every batch).
    """
    if "headers" not in records.columns:
        records = records.withColumn(
            "headers",
            F.lit(None).cast("array<struct<key:string,value:binary>>"),
        )
    now = now if now is not None else F.current_timestamp()
    df = records.select(
        F.col("value").alias("raw"),
        F.col("value").cast("string").alias("_text"),
        F.octet_length("value").alias("_size"),
        F.col("topic").alias("kafka_topic"),
        F.col("partition").cast("int").alias("kafka_partition"),
        F.col("offset").cast("bigint").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.timestamp_micros(batch_constant(now, "partition")).alias("ingest_ts"),
        F.lower(F.trim(_header(HEADER_FORMAT))).alias("_h_format"),
        _blank_to_null(_header(HEADER_SOURCE)).alias("_h_source"),
        _blank_to_null(_header(HEADER_EVENT_ID)).alias("_h_event_id"),
        _header(HEADER_LOG_REGEX).alias("_h_regex"),
        _header(HEADER_LOG_GROUPS).alias("_h_groups"),
    )
    text = F.col("_text")
    decodable = (
        text.isNotNull()
        & (F.col("_size") <= max_message_bytes)
        & F.is_valid_utf8(text)
        & text.rlike(r"\S")
    )
    sniffed = (
        F.when(F.ltrim(text).startswith("{"), F.lit("json"))
        .when(text.rlike(access_log.COMBINED_RE), F.lit("combined"))
        .when(text.rlike(access_log.COMMON_RE), F.lit("common"))
    )
    header_fmt = F.col("_h_format")
    df = df.withColumn(
        "raw_format",
        F.when(~decodable, F.lit(None))
        .when(header_fmt.isin("json", *ACCESS_FORMATS), header_fmt)
        .otherwise(sniffed),
    )
    fmt = F.col("raw_format")
    is_json = fmt == "json"
    df = df.withColumn("_j", F.when(is_json, F.from_json(text, JSON_TYPED, _JSON_OPTIONS)))
    df = df.withColumn(
        "_js",
        F.when(
            is_json & F.col(f"_j.{_CORRUPT}").isNotNull(),
            F.from_json(text, JSON_STRINGS, _JSON_OPTIONS),
        ),
    )
    a_match = F.when(fmt == "combined", text.rlike(access_log.COMBINED_RE)).when(
        fmt == "common", text.rlike(access_log.COMMON_RE))
    for name, compiled in PRESET_FORMATS.items():
        a_match = a_match.when(fmt == name, text.rlike(compiled.regex))
    a_match = a_match.when(fmt == "custom", custom_match(text, F.col("_h_regex")))
    df = df.withColumn("_a_match", a_match)
    fields = _access_fields(text, fmt)

    def access(name: str) -> Column:
        return F.when(F.col("_a_match"), fields[name])

    def jf(name: str) -> Column:
        return F.col(f"_j.{name}")

    # JSON ts: epoch milliseconds as a number, or an ISO-8601 string (only in the slow path).
    json_ts_ms = jf("ts")
    json_ts_iso = F.try_to_timestamp(F.col("_js.ts"))
    json_ts = F.when(
        (json_ts_ms > 0) & (json_ts_ms < _MAX_EPOCH_MS),
        F.timestamp_millis(json_ts_ms.cast("bigint")),
    ).otherwise(json_ts_iso)
    df = df.select(
        "*",
        F.when(is_json, _blank_to_null(jf("event_id")))
        .alias("_event_id_body"),
        F.when(is_json, json_ts).otherwise(access("ts")).alias("ts"),
        F.upper(_blank_to_null(jf("level"))).alias("_json_level"),
        F.when(is_json, _blank_to_null(jf("source")))
        .otherwise(F.coalesce(F.col("_h_source"), F.lit(DEFAULT_ACCESS_SOURCE)))
        .alias("source"),
        F.when(is_json, _blank_to_null(jf("method"))).otherwise(access("method")).alias("method"),
        F.when(is_json, _blank_to_null(jf("endpoint"))).otherwise(access("endpoint"))
        .alias("endpoint"),
        F.when(is_json, jf("status")).otherwise(access("status")).alias("status"),
        F.when(is_json, jf("latency_ms")).otherwise(access("latency_ms")).alias("latency_ms"),
        F.when(is_json, jf("bytes")).otherwise(access("bytes")).alias("bytes"),
        F.when(is_json, jf("client_ip")).otherwise(access("client_ip")).alias("client_ip"),
        F.when(is_json, jf("user_agent")).otherwise(access("user_agent")).alias("user_agent"),
        F.when(is_json, jf("message")).otherwise(access("message")).alias("message"),
        access("ts_text").alias("_a_ts_text"),
        access("extra").alias("extra"),
    )
    status = F.col("status")
    df = df.withColumn(
        "level",
        F.when(is_json, F.col("_json_level"))
        # access logs carry no level: pipeline.access_log.level_for_status
        .when(status >= 500, F.lit("ERROR"))
        .when(status >= 400, F.lit("WARN"))
        .when(status.isNotNull(), F.lit("INFO")),
    )
    df = df.withColumn(
        "event_id",
        F.coalesce(
            F.col("_event_id_body"),
            F.col("_h_event_id"),
            F.concat_ws("-", "kafka_topic", "kafka_partition", "kafka_offset"),
        ),
    )
    df = df.withColumns({"_wrong": _wrong_types(), "_missing": _missing_fields()})
    df = df.withColumn("reason", _reason(max_message_bytes, max_past_s, max_future_s))
    df = df.withColumn("date", F.to_date("ts"))
    return df


def _wrong_types() -> Column:
    """Names of JSON fields present with the wrong JSON type ('' when none)."""

    def mistyped(f: str) -> Column:
        bad = F.col(f"_j.{f}").isNull() & F.col(f"_js.{f}").isNotNull()
        if f == "ts":  # an ISO-8601 string is a valid ts
            bad = bad & F.try_to_timestamp(F.col("_js.ts")).isNull()
        return bad

    return F.when(F.col(f"_j.{_CORRUPT}").isNotNull(), _list([
        (mistyped(f), f"{f} (expected {'a number' if f in _NUMERIC else 'a string'})")
        for f in _JSON_FIELDS
    ])).otherwise(F.lit(""))


def _missing_fields() -> Column:
    """Names of required JSON fields that are absent, null or blank ('' when none)."""
    return _list([
        (F.col(f"_j.{f}").isNull() & F.col(f"_js.{f}").isNull() if f in _NUMERIC
         else F.col(f).isNull(), f)
        for f in REQUIRED_JSON_FIELDS
    ])


def _reason(max_message_bytes: int, max_past_s: int, max_future_s: int) -> Column:
    text, fmt = F.col("_text"), F.col("raw_format")
    is_json = fmt == "json"
    is_access = fmt.isin(*ACCESS_FORMATS)
    wrong_types, missing = F.col("_wrong"), F.col("_missing")
    level_list = ", ".join(LEVELS)
    age_s = F.unix_timestamp("ingest_ts") - F.unix_timestamp("ts")
    lo, hi = STATUS_RANGE
    return F.coalesce(
        F.when(text.isNull() | ~text.rlike(r"\S"), F.lit("empty message")),
        F.when(
            F.col("_size") > max_message_bytes,
            F.format_string(
                f"oversize: %d bytes > max_message_bytes {max_message_bytes}", F.col("_size")
            ),
        ),
        F.when(~F.is_valid_utf8(text), F.lit("invalid UTF-8: the message body is not UTF-8 text")),
        F.when(
            fmt.isNull(),
            F.when(F.col("_h_format").isNotNull() & ~F.col("_h_format").isin(
                "json", *ACCESS_FORMATS), F.format_string(
                    "unrecognised format: no format named '%s' (lakewatch formats lists them)",
                    F.col("_h_format")))
            .otherwise(F.lit("unrecognised format: neither a JSON object nor a "
                             "combined/common access-log line")),
        ),
        F.when(
            is_json & F.col(f"_js.{_CORRUPT}").isNotNull(),
            F.lit("malformed JSON: the body is not one JSON object"),
        ),
        F.when(is_json & (wrong_types != ""), F.concat(F.lit("wrong type: "), wrong_types)),
        F.when(is_json & (missing != ""), F.concat(F.lit("missing field: "), missing)),
        F.when(
            is_access & ~F.col("_a_match"),
            F.format_string("no match: the line is not a %s access-log line", fmt),
        ),
        F.when(
            is_access & F.col("ts").isNull(),
            F.when(fmt.isin("combined", "common"), F.format_string(
                "bad timestamp: '%s' is not dd/MMM/yyyy:HH:mm:ss Z", F.col("_a_ts_text")))
            .otherwise(F.format_string("bad timestamp: '%s' is not a valid %s time",
                                       F.col("_a_ts_text"), fmt)),
        ),
        F.when(
            F.col("ts").isNull(),
            F.lit("bad timestamp: ts is not epoch milliseconds or an ISO-8601 time"),
        ),
        F.when(
            ~F.col("level").isin(*LEVELS),
            F.format_string(f"invalid value: level '%s' is not one of {level_list}",
                            F.col("level")),
        ),
        F.when(
            (F.col("status") < lo) | (F.col("status") > hi),
            F.format_string(f"invalid value: status %d is outside {lo}-{hi}", F.col("status")),
        ),
        F.when(F.col("latency_ms") < 0,
               F.format_string("invalid value: latency_ms %s is negative", F.col("latency_ms"))),
        F.when(F.col("bytes") < 0,
               F.format_string("invalid value: bytes %d is negative", F.col("bytes"))),
        F.when(
            age_s > max_past_s,
            F.format_string(
                f"timestamp too old: %s is %d s before ingest time (limit {max_past_s} s)",
                F.date_format("ts", "yyyy-MM-dd'T'HH:mm:ss'Z'"), age_s,
            ),
        ),
        F.when(
            -age_s > max_future_s,
            F.format_string(
                f"timestamp in future: %s is %d s after ingest time (limit {max_future_s} s)",
                F.date_format("ts", "yyyy-MM-dd'T'HH:mm:ss'Z'"), -age_s,
            ),
        ),
    )


def valid_logs(parsed: DataFrame) -> DataFrame:
    """The valid rows of :func:`parse_records` with exactly the ``logs`` columns."""
    return conform(parsed.filter(F.col("reason").isNull()), LOGS_COLUMNS)


def quarantined(parsed: DataFrame) -> DataFrame:
    """The rejected rows of :func:`parse_records` with exactly the quarantine columns; their
    ``date`` is the ingest date (a rejected row may have no usable event time)."""
    rejected = parsed.filter(F.col("reason").isNotNull()).withColumn(
        "date", F.to_date("ingest_ts")
    )
    return conform(rejected, QUARANTINE_COLUMNS)


def dedup_key(parsed: DataFrame) -> DataFrame:
    """Adds ``dedup_key``: the event_id for valid rows; the Kafka coordinates for rejected
    ones (they are never duplicates of each other, and must not collapse on a null id)."""
    return parsed.withColumn(
        "dedup_key",
        F.when(F.col("reason").isNull(), F.concat(F.lit("e:"), F.col("event_id"))).otherwise(
            F.concat_ws(":", F.lit("q"), "kafka_topic", "kafka_partition", "kafka_offset")
        ),
    )


def drop_repeated_events(parsed: DataFrame, watermark: str) -> DataFrame:
    """Drops repeats of an event_id that arrive within ``watermark`` of the first copy.

    The watermark is on ``ingest_ts`` (arrival time), not on event time: a repeat is a
    producer retry or a re-shipped line, so it arrives close to the original, while an event
    whose event time is far behind must still be kept in ``logs`` (only the metrics skip it).
    """
    return dedup_key(parsed).withWatermark("ingest_ts", watermark).dropDuplicatesWithinWatermark(
        ["dedup_key"]
    )
