"""Delta I/O of the detector: read new ``metrics`` windows and their ``logs``, MERGE anomalies.

Incremental reads: the processor appends each metrics window once, complete (append mode
behind its watermark), so "new" means ``window_start`` after the last window the detector
processed; the table's Delta version is checked first so an idle poll costs one metadata
read. ``anomalies`` is written with MERGE on ``anomaly_id`` (insert when not matched), so
re-running a window - after a restart, or an ``analyze`` over a range already streamed -
adds nothing. Only the detector writes ``anomalies``; an flock on
``run_dir/anomalies-writer.lock`` keeps a second detector on the same data dir out.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.delta_tables import WriterLock, WriterLockBusy, is_delta_table
from pipeline.detection.engine import ANOMALY_COLUMNS
from pipeline.schemas import ANOMALIES_DDL, TABLE_ANOMALIES, TABLE_LOGS, TABLE_METRICS
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

METRIC_COLUMNS = (
    "window_start", "window_end", "window_size", "source", "endpoint", "level", "requests",
    "errors", "error_rate", "latency_p50", "latency_p95", "latency_p99", "bytes",
    "status_2xx", "status_3xx", "status_4xx", "status_5xx", "status_404",
)
LOG_COLUMNS = ("ts", "message", "level", "status")


__all__ = ["AnomaliesLock", "WriterLockBusy"]


class AnomaliesLock(WriterLock):
    """One anomalies writer per data dir (the processor's writer lock is a different file)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.path = settings.run_dir / "anomalies-writer.lock"


def table_version(spark: SparkSession, path: Path) -> int | None:
    """The table's latest Delta version, or None when there is no table yet."""
    if not is_delta_table(path):
        return None
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, str(path)).history(1).select("version").first()
    return int(row["version"]) if row else None


def _ts_literal(ts: pd.Timestamp | datetime) -> str:
    return pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M:%S.%f")


def read_metrics(spark: SparkSession, settings: Settings, window_size: str,
                 after: pd.Timestamp | None = None, start: pd.Timestamp | None = None,
                 end: pd.Timestamp | None = None) -> pd.DataFrame:
    """``metrics`` rows of one window size as pandas (naive UTC), optionally filtered.

    ``after``: window_start strictly after it (the incremental watermark);
    ``start``/``end``: window_start in [start, end).
    """
    from pyspark.sql import functions as F

    path = settings.table_path(TABLE_METRICS)
    if not is_delta_table(path):
        return pd.DataFrame(columns=list(METRIC_COLUMNS))
    df = spark.read.format("delta").load(str(path)).where(F.col("window_size") == window_size)
    if after is not None:
        df = df.where(F.col("window_start") > F.lit(_ts_literal(after)).cast("timestamp"))
    if start is not None:
        df = df.where(F.col("window_start") >= F.lit(_ts_literal(start)).cast("timestamp"))
    if end is not None:
        df = df.where(F.col("window_start") < F.lit(_ts_literal(end)).cast("timestamp"))
    return _to_pandas(df.select(*METRIC_COLUMNS))


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


def metrics_window_range(spark: SparkSession, settings: Settings,
                         window_size: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """First and last window_start of the metrics table (None, None when empty)."""
    from pyspark.sql import functions as F

    path = settings.table_path(TABLE_METRICS)
    if not is_delta_table(path):
        return None, None
    row = (spark.read.format("delta").load(str(path))
           .where(F.col("window_size") == window_size)
           .agg(F.min("window_start").alias("lo"), F.max("window_start").alias("hi")).first())
    if row is None or row["lo"] is None:
        return None, None
    return pd.Timestamp(row["lo"]), pd.Timestamp(row["hi"])


def ensure_anomalies_table(spark: SparkSession, settings: Settings) -> Path:
    """Create the ``anomalies`` Delta table (contract schema) if it does not exist."""
    from delta.tables import DeltaTable
    from pyspark.sql.types import StructType

    path = settings.table_path(TABLE_ANOMALIES)
    if not is_delta_table(path):
        (DeltaTable.createIfNotExists(spark).location(str(path))
         .addColumns(StructType.fromDDL(ANOMALIES_DDL)).execute())
    return path


def to_arrow(frame: pd.DataFrame, ddl: str):
    """pandas -> an Arrow table with a Spark DDL's columns and types.

    TIMESTAMP columns (naive UTC in pandas) become UTC instants, as Spark stores them.
    """
    import pyarrow as pa

    types = {"STRING": pa.string(), "TIMESTAMP": pa.timestamp("us", tz="UTC"),
             "INT": pa.int32(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(),
             "DATE": pa.date32(), "BINARY": pa.binary(), "BOOLEAN": pa.bool_()}
    fields = [pa.field(name, types[t]) for name, t in (c.split() for c in ddl.split(", "))]
    arrays = []
    for f in fields:
        col = frame[f.name]
        if pa.types.is_timestamp(f.type):
            col = pd.to_datetime(col)
            col = col.dt.tz_localize("UTC") if col.dt.tz is None else col.dt.tz_convert("UTC")
        values = col.tolist() if f.type == pa.date32() else col
        arrays.append(pa.array(values, type=f.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def anomalies_frame(spark: SparkSession, anomalies: pd.DataFrame, staging: Path) -> DataFrame:
    """pandas anomalies -> a Spark DataFrame with exactly the ANOMALIES_DDL schema.

    Staged as one Parquet file and read back, so the rows reach the JVM without Python
    workers (``createDataFrame`` from Python objects would start them).
    """
    import pyarrow.parquet as pq

    staging.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(to_arrow(anomalies[list(ANOMALY_COLUMNS)], ANOMALIES_DDL), staging)
    from pyspark.sql.types import StructType

    return spark.read.schema(StructType.fromDDL(ANOMALIES_DDL)).parquet(str(staging))


def merge_anomalies(spark: SparkSession, settings: Settings, anomalies: pd.DataFrame) -> int:
    """MERGE on anomaly_id (insert only when new); returns the number of rows inserted."""
    if anomalies.empty:
        return 0
    from delta.tables import DeltaTable

    if anomalies["anomaly_id"].duplicated().any():
        anomalies = anomalies.drop_duplicates("anomaly_id", keep="first")
    path = ensure_anomalies_table(spark, settings)
    staging = settings.data_dir / "tmp" / f"anomalies-{uuid.uuid4().hex}.parquet"
    table = DeltaTable.forPath(spark, str(path))
    before = table_version(spark, path)
    try:
        source = anomalies_frame(spark, anomalies, staging)
        (table.alias("t")
         .merge(source.alias("s"), "t.anomaly_id = s.anomaly_id")
         .whenNotMatchedInsertAll()
         .execute())
    finally:
        staging.unlink(missing_ok=True)
    last = table.history(1).select("version", "operation", "operationMetrics").first()
    if last is None or last["version"] == before or last["operation"] != "MERGE":
        return 0  # nothing new: Delta commits no version for a MERGE that changes nothing
    return int((last["operationMetrics"] or {}).get("numTargetRowsInserted", 0))


def read_anomalies(spark: SparkSession, settings: Settings) -> pd.DataFrame:
    path = settings.table_path(TABLE_ANOMALIES)
    if not is_delta_table(path):
        return pd.DataFrame(columns=list(ANOMALY_COLUMNS))
    return _to_pandas(spark.read.format("delta").load(str(path)))


def _to_pandas(df: DataFrame) -> pd.DataFrame:
    """toPandas with Arrow; timestamps come back naive UTC (the session time zone is UTC)."""
    return df.toPandas()
