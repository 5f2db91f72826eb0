"""The Delta table contracts of :mod:`pipeline.schemas` as Spark types and column lists."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from pipeline.schemas import LOGS_DDL, METRIC_PARTIALS_DDL, METRICS_DDL, QUARANTINE_DDL, ddl_fields


def schema_of(ddl: str) -> StructType:
    return StructType.fromDDL(ddl)


LOGS_COLUMNS = ddl_fields(LOGS_DDL)
QUARANTINE_COLUMNS = ddl_fields(QUARANTINE_DDL)
METRICS_COLUMNS = ddl_fields(METRICS_DDL)
METRIC_PARTIALS_COLUMNS = ddl_fields(METRIC_PARTIALS_DDL)


def conform(df: DataFrame, columns: list[tuple[str, str]]) -> DataFrame:
    """Exactly the contract's columns, in order and with its types (a cast is a no-op when the
    type already matches), so every writer hands Delta the same schema."""
    cols: list[Column] = [F.col(name).cast(dtype).alias(name) for name, dtype in columns]
    return df.select(*cols)
