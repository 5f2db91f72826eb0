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


def batch_constant(value: int | Column, anchor: str) -> Column:
    """A BIGINT that is constant within a micro-batch but changes between them (the batch's
    time, id or watermark: an int, or a timestamp Column as epoch µs), kept out of Spark's
    generated code.

    Spark inlines an integer or timestamp literal into the Java it generates, so each batch
    would compile the whole stage again and the JVM run it unoptimised until its JIT catches
    up (measured: a new parser per batch before, none after warm-up). A decimal literal is
    passed to the code by reference instead; adding ``anchor * 0`` (a column) keeps the
    optimizer from folding it back into a BIGINT literal. Costs a decimal add per row.
    """
    micros = F.unix_micros(value) if isinstance(value, Column) else F.lit(value)
    dec = micros.cast("decimal(20,0)")
    return (dec + (F.col(anchor) * 0).cast("decimal(20,0)")).cast("bigint")
