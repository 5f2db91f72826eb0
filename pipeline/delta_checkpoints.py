"""Delta checkpoints beside the stream, never inside a micro-batch.

Delta writes a checkpoint (the table's whole state, as Parquet) inside the commit of every
``delta.checkpointInterval``-th version, 10 by default. For the stream that meant every tenth
micro-batch of each table paid 2-17 s on top of its ~3 s (measured on 5,000-row batches,
2 cores): the p99 of freshness. The processor's tables therefore carry an interval no commit
reaches (:data:`HOT_PATH_INTERVAL`), and the writer process checkpoints them from its monitor
loop (:class:`DeltaCheckpointer`) once a table is ``processor.delta_checkpoint_every`` commits
past its last checkpoint, while the next batches go on; a standalone OPTIMIZE checkpoints what
it rewrote. Readers then replay at most that many JSON commits after the checkpoint.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: ``delta.checkpointInterval`` of the processor's tables: no commit of theirs reaches it.
HOT_PATH_INTERVAL = 1_000_000
PROPERTY = "delta.checkpointInterval"


def last_checkpoint_version(path: Path) -> int:
    """Version of the table's newest checkpoint (``_last_checkpoint``), -1 when none."""
    try:
        return int(json.loads((path / "_delta_log" / "_last_checkpoint").read_text())["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def checkpoint_table(spark: SparkSession, path: Path) -> None:
    """Write a checkpoint of the table's current snapshot."""
    _delta_log(spark, path).checkpoint()


def _delta_log(spark: SparkSession, path: Path):
    # DeltaLog instances are cached per path in the JVM: the writer's own, kept current by
    # its commits, so reading its version costs no I/O
    return spark.sparkContext._jvm.org.apache.spark.sql.delta.DeltaLog.forTable(
        spark._jsparkSession, str(path))


class DeltaCheckpointer:
    """Checkpoints tables that are ``every`` commits past their last checkpoint.

    Runs on a thread of the writer process (py4j calls release the GIL): Delta checkpoints a
    snapshot already committed, so commits of later versions go on meanwhile.
    """

    def __init__(self, spark: SparkSession, paths: list[Path], every: int) -> None:
        self.spark = spark
        self.paths = list(paths)
        self.every = every
        self.done = {path: last_checkpoint_version(path) for path in self.paths}

    def run_due(self) -> dict[str, int]:
        """Checkpoint every table that is due; returns table dir name -> version written."""
        written: dict[str, int] = {}
        for path in self.paths:
            version = int(_delta_log(self.spark, path).unsafeVolatileSnapshot().version())
            if version - self.done[path] < self.every:
                continue
            checkpoint_table(self.spark, path)
            # what the checkpoint covered: the snapshot it took, at or after ``version``
            self.done[path] = max(version, last_checkpoint_version(path))
            written[path.name] = self.done[path]
            log.debug("Delta checkpoint of %s at version %d", path.name, self.done[path])
        return written
