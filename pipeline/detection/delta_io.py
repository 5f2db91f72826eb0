"""Delta reads of the detector: merged ``metrics`` windows and their ``logs``.

``metrics`` holds partials (one row per micro-batch and 10 s window, see
:mod:`pipeline.transforms.metrics`); :func:`read_metrics` merges them into windows of the
detector's size and by default returns only **final** ones (ended at or before the table's
watermark): a provisional window's counts can still grow. :func:`read_windows` returns both
halves from one read, for the stream detector that scores open windows provisionally and
settles them once final. Final windows become final in window order and never change
afterwards, so "new" means ``window_start`` after the last window the detector processed; the
table's Delta version is checked first so an idle poll costs one metadata read. Writing
``anomalies`` is :mod:`pipeline.detection.anomaly_table`'s.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.delta_tables import is_delta_table
from pipeline.schemas import TABLE_LOGS, TABLE_METRICS, ddl_fields
from pipeline.schemas import window_size as size_of
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

METRIC_COLUMNS = (
    "window_start", "window_end", "window_size", "source", "endpoint", "level", "requests",
    "errors", "error_rate", "latency_p50", "latency_p95", "latency_p99", "bytes",
    "status_2xx", "status_3xx", "status_4xx", "status_5xx", "status_404",
)
LOG_COLUMNS = ("ts", "message", "level", "status")


def table_version(spark: SparkSession, path: Path) -> int | None:
    """The table's latest Delta version, or None when there is no table yet."""
    if not is_delta_table(path):
        return None
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, str(path)).history(1).select("version").first()
    return int(row["version"]) if row else None


def _ts_literal(ts: pd.Timestamp | datetime) -> str:
    return pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M:%S.%f")


def _partials(spark: SparkSession, settings: Settings) -> DataFrame | None:
    """The ``metrics`` partials (None when there is no table yet).

    A version-1 table (complete windows, no histograms) is refused with a clear ValueError:
    the processor migrates it when it starts.
    """
    path = settings.table_path(TABLE_METRICS)
    if not is_delta_table(path):
        return None
    df = spark.read.format("delta").load(str(path))
    if "watermark" not in df.columns:
        raise ValueError(f"{path} is a version-1 metrics table: start the processor once "
                         "(lakewatch process) to migrate it")
    return df


def _watermark_us(partials: DataFrame) -> int | None:
    """The table's watermark (epoch µs; as a number, so no local-time conversion)."""
    from pyspark.sql import functions as F

    row = partials.agg(F.max(F.unix_micros("watermark")).alias("wm")).first()
    return None if row is None or row["wm"] is None else int(row["wm"])


def ts_column(value: pd.Timestamp | datetime) -> Column:
    """A naive-UTC time as a Spark timestamp literal (the session time zone is UTC)."""
    from pyspark.sql import functions as F

    return F.lit(_ts_literal(value)).cast("timestamp")


def _where_start(df: DataFrame, after: pd.Timestamp | None, start: pd.Timestamp | None,
                 end: pd.Timestamp | None) -> DataFrame:
    """``window_start`` after ``after`` and in [start, end) (None: no bound)."""
    from pyspark.sql import functions as F

    ts = ts_column
    col = F.col("window_start")
    if after is not None:
        df = df.where(col > ts(after))
    if start is not None:
        df = df.where(col >= ts(start))
    if end is not None:
        df = df.where(col < ts(end))
    return df


def read_metrics(spark: SparkSession, settings: Settings, window_size: str,
                 after: pd.Timestamp | None = None, start: pd.Timestamp | None = None,
                 end: pd.Timestamp | None = None,
                 include_provisional: bool = False) -> pd.DataFrame:
    """Merged ``metrics`` windows of one size as pandas (naive UTC), optionally filtered.

    ``after``: window_start strictly after it (the incremental watermark);
    ``start``/``end``: window_start in [start, end). Final windows only unless
    ``include_provisional``.

    The watermark is read before the partials: a write in between can only make more windows
    final, and a final window's partials no longer change, so no version pinning is needed.
    """
    from pyspark.sql import functions as F

    from pipeline.transforms.metrics import merge_partials

    size = size_of(window_size)
    partials = _partials(spark, settings)
    wm = None if partials is None or include_provisional else _watermark_us(partials)
    if partials is None or (wm is None and not include_provisional):
        return pd.DataFrame(columns=list(METRIC_COLUMNS))
    # Conservative pre-filters on the partials' own window_start (they prune files): a merged
    # window starting at W holds the partials starting in [W, W + size), all before its end.
    span = pd.Timedelta(seconds=size.seconds)
    partials = _where_start(partials, after, start,
                            None if end is None else pd.Timestamp(end) + span)
    if wm is not None:
        partials = partials.where(F.col("window_start") < F.timestamp_micros(F.lit(wm)))
    merged = _where_start(merge_partials(partials, size.label, watermark_us=wm), after, start,
                          end)
    if wm is not None:  # judged against the whole table's watermark, not the slice's
        merged = merged.where(F.col("window_end") <= F.timestamp_micros(F.lit(wm)))
    return _to_pandas(merged.select(*METRIC_COLUMNS))


def read_windows(spark: SparkSession, settings: Settings, window_size: str,
                 after: pd.Timestamp | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(final, provisional) merged windows with ``window_start`` after ``after``, one read.

    Final: judged against the whole table's watermark, read first (as ``read_metrics``).
    Provisional: not final, but *ended*: a partial of a later 10 s window exists (the stream
    has moved past the window's end). A window still filling is left out of both: a third
    of a window's requests would read as a traffic drop.
    """
    from pyspark.sql import functions as F

    from pipeline.transforms.metrics import merge_partials

    empty = pd.DataFrame(columns=list(METRIC_COLUMNS))
    partials = _partials(spark, settings)
    if partials is None:
        return empty, empty
    row = partials.agg(F.max(F.unix_micros("watermark")).alias("wm"),
                       F.max(F.unix_micros("window_start")).alias("newest")).first()
    if row is None or row["newest"] is None:
        return empty, empty
    wm = 0 if row["wm"] is None else int(row["wm"])
    partials = _where_start(partials, after, None, None)
    merged = _where_start(merge_partials(partials, size_of(window_size).label,
                                         watermark_us=wm), after, None, None)
    merged = merged.where(~F.col("provisional") | (
        F.col("window_end") <= F.timestamp_micros(F.lit(int(row["newest"])))))
    both = _to_pandas(merged.select(*METRIC_COLUMNS, F.col("provisional")))
    if both.empty:
        return empty, empty
    open_ = both.pop("provisional").astype(bool).to_numpy()
    return both[~open_].reset_index(drop=True), both[open_].reset_index(drop=True)


def read_logs(spark: SparkSession, settings: Settings, start: pd.Timestamp,
              end: pd.Timestamp, limit: int | None = None) -> pd.DataFrame:
    """``logs`` (ts, message, level, status) with ts in [start, end), date-pruned."""
    from pyspark.sql import functions as F

    path = settings.table_path(TABLE_LOGS)
    if not is_delta_table(path):
        return pd.DataFrame(columns=list(LOG_COLUMNS))
    lo, hi = _ts_literal(start), _ts_literal(end)
    df = (spark.read.format("delta").load(str(path))
          .where(F.col("date").between(F.lit(str(pd.Timestamp(start).date())).cast("date"),
                                       F.lit(str(pd.Timestamp(end).date())).cast("date")))
          .where((F.col("ts") >= F.lit(lo).cast("timestamp"))
                 & (F.col("ts") < F.lit(hi).cast("timestamp")))
          .select(*LOG_COLUMNS))
    if limit is not None:
        df = df.limit(limit)
    return _to_pandas(df)


def metrics_window_range(
        spark: SparkSession, settings: Settings, window_size: str,
        include_provisional: bool = False) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """First and last merged window_start of one size, final windows only unless
    ``include_provisional`` ((None, None) when there is none)."""
    from pyspark.sql import functions as F

    partials = _partials(spark, settings)
    if partials is None:
        return None, None
    size_us = int(size_of(window_size).seconds * 1_000_000)
    start_us = F.unix_micros("window_start")
    merged_start = start_us - F.pmod(start_us, F.lit(size_us))  # the merged window holding it
    if not include_provisional:
        wm = _watermark_us(partials)
        if wm is None:
            return None, None
        partials = partials.where(merged_start + size_us <= F.lit(wm))
    row = partials.agg(F.min(merged_start).alias("lo"), F.max(merged_start).alias("hi")).first()
    if row is None or row["lo"] is None:
        return None, None
    return pd.Timestamp(row["lo"], unit="us"), pd.Timestamp(row["hi"], unit="us")


def to_arrow(frame: pd.DataFrame, ddl: str):
    """pandas -> an Arrow table with a Spark DDL's columns and types.

    TIMESTAMP columns (naive UTC in pandas) become UTC instants, as Spark stores them;
    ``latency_hist`` cells are lists of ``(b, n)`` pairs.
    """
    import pyarrow as pa

    types = {"STRING": pa.string(), "TIMESTAMP": pa.timestamp("us", tz="UTC"),
             "INT": pa.int32(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(),
             "DATE": pa.date32(), "BINARY": pa.binary(), "BOOLEAN": pa.bool_(),
             "ARRAY<STRUCT<b: INT, n: BIGINT>>":  # metrics.latency_hist
                 pa.list_(pa.struct([("b", pa.int32()), ("n", pa.int64())]))}
    fields = [pa.field(name, types[t]) for name, t in ddl_fields(ddl)]
    arrays = []
    for f in fields:
        col = frame[f.name]
        if pa.types.is_timestamp(f.type):
            col = pd.to_datetime(col)
            col = col.dt.tz_localize("UTC") if col.dt.tz is None else col.dt.tz_convert("UTC")
        values = col.tolist() if f.type == pa.date32() else col
        arrays.append(pa.array(values, type=f.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _to_pandas(df: DataFrame) -> pd.DataFrame:
    """toPandas with Arrow; timestamps come back naive UTC (the session time zone is UTC)."""
    return df.toPandas()
