"""From the version-1 layout (three streaming queries) to the one-pass stream job.

Version 1 ran ``ingest`` plus ``metrics_10s`` / ``metrics_1m``, which read ``logs`` again and
wrote complete windows without histograms. Version 2's ``metrics`` holds mergeable partials,
so the old rows cannot be mixed with new ones. Because ``metrics`` is derived from ``logs``,
the migration rebuilds it from ``logs`` (one partial per window, the watermark at the newest
event), moves the old metrics checkpoints aside and keeps the ingest checkpoint: its Kafka
offsets and dedup state are those of the same source and operator, so the stream resumes
where it stopped, nothing read twice or skipped.
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import TYPE_CHECKING

from pipeline.delta_tables import is_delta_table
from pipeline.runners.checkpoints import (
    INGEST,
    LEGACY_METRICS_QUERIES,
    checkpoint_path,
    query_fingerprint,
    stored_fingerprint,
    write_fingerprint,
)
from pipeline.schemas import TABLE_LOGS, TABLE_METRICS
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
#: fingerprint keys the layout change itself alters; any other difference is refused
_LAYOUT_KEYS = {"query_version", "sinks", "schema"}


def legacy_parts(spark: SparkSession, settings: Settings) -> list[str]:
    """What of the version-1 layout is on disk (empty: nothing to migrate)."""
    found = [q for q in LEGACY_METRICS_QUERIES if checkpoint_path(settings, q).exists()]
    stored = stored_fingerprint(settings)
    if stored and stored.get("fingerprint", {}).get("query_version") == 1:
        found.append(INGEST)
    metrics = settings.table_path(TABLE_METRICS)
    if is_delta_table(metrics) and "latency_hist" not in (
            spark.read.format("delta").load(str(metrics)).columns):
        found.append(TABLE_METRICS)
    return found


def migrate(spark: SparkSession, settings: Settings) -> str | None:
    """Migrate a version-1 data dir in place; returns what was done, None when nothing was.

    An ingest checkpoint that differs in more than the layout (another topic, say) is left
    for :func:`~pipeline.runners.checkpoints.check_checkpoint` to refuse.
    """
    parts = legacy_parts(spark, settings)
    if not parts:
        return None
    stored = stored_fingerprint(settings)
    if stored is not None:
        old, new = stored.get("fingerprint", {}), query_fingerprint(settings)
        if any(old.get(k) != new.get(k) for k in set(old) | set(new) if k not in _LAYOUT_KEYS):
            return None
    rows = rebuild_metrics(spark, settings)
    moved = []
    legacy_dir = settings.checkpoint_dir / f"legacy-v1-{time.strftime('%Y%m%d-%H%M%S')}"
    for query in LEGACY_METRICS_QUERIES:
        cp = checkpoint_path(settings, query)
        if cp.exists():
            legacy_dir.mkdir(parents=True, exist_ok=True)
            shutil.move(str(cp), str(legacy_dir / query))
            moved.append(query)
    if stored is not None:
        write_fingerprint(settings, str(stored["app_id"]))
    what = (f"migrated the version-1 layout ({', '.join(parts)}): metrics rebuilt from logs "
            f"as {rows} partial rows")
    if moved:
        what += f"; old metrics checkpoints moved to {legacy_dir}"
    log.warning("%s", what)
    return what


def rebuild_metrics(spark: SparkSession, settings: Settings) -> int:
    """Overwrite ``metrics`` with one partial per window computed from all of ``logs``."""
    from pyspark.sql import functions as F

    from pipeline.delta_tables import ensure_tables
    from pipeline.transforms.metrics import batch_partials

    metrics = str(settings.table_path(TABLE_METRICS))
    logs_path = settings.table_path(TABLE_LOGS)
    if not is_delta_table(logs_path):
        shutil.rmtree(metrics, ignore_errors=True)
        ensure_tables(spark, settings)
        return 0
    logs = spark.read.format("delta").load(str(logs_path))
    newest = logs.agg(F.max(F.unix_micros("ts")).alias("t")).first()["t"]
    watermark = None if newest is None else newest - int(settings.processor.watermark_s * 1e6)
    partials = batch_partials(logs, batch_id=-1, watermark_us=watermark).cache()
    try:
        (partials.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
         .save(metrics))
        return partials.count()
    finally:
        partials.unpersist()
