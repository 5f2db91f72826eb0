"""The ``anomalies`` Delta table: provisional findings, then confirmed or withdrawn.

The stream detector scores a window as soon as its first metrics partials exist, while the
window is still open (provisional: late partials can still change its counts), and again once
the stored watermark has closed it. Each row's ``status`` says which verdict it is:

- ``provisional``: raised on an open window; may still be withdrawn.
- ``final``: raised or confirmed on the closed window. Only final rows are ever counted by
  the evaluation (``bench/detection.py``).

When a window becomes final, one MERGE settles its provisional rows: a finding the final
window raises again (same ``anomaly_id``: window, entity, kind) is **confirmed**, i.e. updated
in place to the final scores and ``status = 'final'``, keeping its ``detected_at`` (when the
alert was first raised); a provisional finding the final window does not raise is
**withdrawn**: the row is deleted, so ``SELECT * FROM anomalies`` never shows an alarm the
detector itself took back (Delta's history keeps the delete; the detector's status counts
withdrawals). New final findings are inserted. So a query that wants only settled verdicts
filters ``status = 'final'``; one that wants the live picture reads every row.

Rows written before the column existed were final findings: the first write to such a table
adds ``status`` (``ALTER TABLE ... ADD COLUMNS``) and sets it to ``final`` on them.
Only the detector writes this table; ``AnomaliesLock`` keeps a second one out.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.delta_tables import WriterLock, is_delta_table
from pipeline.detection.engine import ANOMALY_COLUMNS, FINAL, PROVISIONAL
from pipeline.schemas import ANOMALIES_DDL, TABLE_ANOMALIES
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: The contract schema plus the finding's status (see the module doc).
STATUS_DDL = "status STRING"
TABLE_DDL = f"{ANOMALIES_DDL}, {STATUS_DDL}"
#: Paths already checked for the ``status`` column in this process.
_CHECKED: set[str] = set()


class AnomaliesLock(WriterLock):
    """One anomalies writer per data dir (the processor's writer lock is a different file)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.path = settings.run_dir / "anomalies-writer.lock"


def ensure_table(spark: SparkSession, settings: Settings) -> Path:
    """Create the table if missing; give an older one its ``status`` column (module doc)."""
    from delta.tables import DeltaTable
    from pyspark.sql.types import StructType

    path = settings.table_path(TABLE_ANOMALIES)
    if not is_delta_table(path):
        (DeltaTable.createIfNotExists(spark).location(str(path))
         .addColumns(StructType.fromDDL(TABLE_DDL)).execute())
    elif str(path) not in _CHECKED and \
            "status" not in spark.read.format("delta").load(str(path)).columns:
        quoted = str(path).replace("`", "``")
        spark.sql(f"ALTER TABLE delta.`{quoted}` ADD COLUMNS ({STATUS_DDL})")
        DeltaTable.forPath(spark, str(path)).update("status IS NULL", {"status": f"'{FINAL}'"})
    _CHECKED.add(str(path))
    return path


def _frame(spark: SparkSession, anomalies: pd.DataFrame, staging: Path) -> DataFrame:
    """pandas anomalies -> a Spark DataFrame with exactly the table's schema.

    Staged as one Parquet file and read back, so the rows reach the JVM without Python
    workers (``createDataFrame`` from Python objects would start them).
    """
    import pyarrow.parquet as pq
    from pyspark.sql.types import StructType

    from pipeline.detection.delta_io import to_arrow

    staging.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(to_arrow(anomalies[list(ANOMALY_COLUMNS)], TABLE_DDL), staging)
    return spark.read.schema(StructType.fromDDL(TABLE_DDL)).parquet(str(staging))


def _merge(spark: SparkSession, settings: Settings, anomalies: pd.DataFrame,
           build) -> dict[str, int]:
    """Run the MERGE ``build(target, source)`` returns; its inserted/updated/deleted rows."""
    from delta.tables import DeltaTable

    from pipeline.detection.delta_io import table_version

    anomalies = anomalies.drop_duplicates("anomaly_id", keep="first")
    path = ensure_table(spark, settings)
    staging = settings.data_dir / "tmp" / f"anomalies-{uuid.uuid4().hex}.parquet"
    table = DeltaTable.forPath(spark, str(path))
    before = table_version(spark, path)
    try:
        build(table.alias("t"), _frame(spark, anomalies, staging).alias("s")).execute()
    finally:
        staging.unlink(missing_ok=True)
    last = table.history(1).select("version", "operation", "operationMetrics").first()
    if last is None or last["version"] == before or last["operation"] != "MERGE":
        return {"inserted": 0, "updated": 0, "deleted": 0}  # Delta commits no no-op MERGE
    m = last["operationMetrics"] or {}
    return {"inserted": int(m.get("numTargetRowsInserted", 0)),
            "updated": int(m.get("numTargetRowsUpdated", 0)),
            "deleted": int(m.get("numTargetRowsDeleted", 0))}


def insert_new(spark: SparkSession, settings: Settings, anomalies: pd.DataFrame) -> int:
    """MERGE on anomaly_id inserting only ids not in the table; returns the rows inserted.

    Re-running a window (a restart, an ``analyze`` over a streamed range, a provisional
    window scored again on the next poll) adds nothing and never overwrites a verdict.
    """
    if anomalies.empty:
        return 0
    return _merge(spark, settings, anomalies, lambda t, s: t.merge(
        s, "t.anomaly_id = s.anomaly_id").whenNotMatchedInsertAll())["inserted"]


def settle(spark: SparkSession, settings: Settings, anomalies: pd.DataFrame,
           first: pd.Timestamp, last: pd.Timestamp) -> dict[str, int]:
    """Write the final findings of the windows starting in [first, last] (module doc).

    Returns ``inserted`` (new final rows), ``confirmed`` (provisional rows made final) and
    ``withdrawn`` (provisional rows of those windows that the final verdict does not hold).
    Final rows already there are left as they are, so settling a range twice is a no-op.
    """
    from pyspark.sql import functions as F

    from pipeline.detection.delta_io import ts_column

    if not anomalies.empty and (anomalies["status"] != FINAL).any():
        raise ValueError("settle takes final findings only")
    provisional = F.col("t.status") == F.lit(PROVISIONAL)
    in_range = (F.col("t.window_start") >= ts_column(first)) & \
        (F.col("t.window_start") <= ts_column(last))
    keep = {"anomaly_id", "detected_at"}
    update = {c: F.col(f"s.{c}") for c in ANOMALY_COLUMNS if c not in keep}

    def build(t, s):
        return (t.merge(s, "t.anomaly_id = s.anomaly_id")
                .whenMatchedUpdate(condition=provisional, set=update)
                .whenNotMatchedInsertAll()
                .whenNotMatchedBySourceDelete(condition=provisional & in_range))

    got = _merge(spark, settings, anomalies, build)
    return {"inserted": got["inserted"], "confirmed": got["updated"],
            "withdrawn": got["deleted"]}


def read(spark: SparkSession, settings: Settings) -> pd.DataFrame:
    """Every row of ``anomalies`` (empty frame with the columns when there is no table)."""
    path = settings.table_path(TABLE_ANOMALIES)
    if not is_delta_table(path):
        return pd.DataFrame(columns=list(ANOMALY_COLUMNS))
    return spark.read.format("delta").load(str(path)).toPandas()
