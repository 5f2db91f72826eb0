"""The stream mode's query and its checkpoint.

The query has its checkpoint under ``settings.checkpoint_dir/ingest``, holding
``lakewatch-query.json``: the query's fingerprint. Starting against a checkpoint written by a
different query (other topic, sink, schema or query version) is refused with
:class:`CheckpointMismatch`; one written by the three-query layout of version 1 (``ingest``
plus ``metrics_10s`` / ``metrics_1m`` reading ``logs`` again) is migrated by
:mod:`pipeline.runners.migrate`, never mixed.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from pipeline.files import atomic_write
from pipeline.schemas import (
    LOGS_DDL,
    METRIC_PARTIALS_DDL,
    QUARANTINE_DDL,
    TABLE_LOGS,
    TABLE_METRICS,
    TABLE_QUARANTINE,
)
from pipeline.settings import ConfigError, Settings

#: Bump when a transform change makes existing checkpoints meaningless.
QUERY_VERSION = 2
INGEST = "ingest"
#: the metrics queries of the version-1 layout (their checkpoints are migrated away)
LEGACY_METRICS_QUERIES = ("metrics_10s", "metrics_1m")
FINGERPRINT_FILE = "lakewatch-query.json"


class CheckpointMismatch(ConfigError):
    """A checkpoint was written by a different query than the one being started."""


def query_fingerprint(settings: Settings, query: str = INGEST) -> dict[str, Any]:
    """What must not change under an existing checkpoint (trigger, batch size and validation
    thresholds may: they change no state and no offsets)."""
    return {
        "query": query,
        "query_version": QUERY_VERSION,
        "source": f"kafka:{settings.kafka.topic}",
        "sinks": [str(settings.table_path(TABLE_LOGS)),
                  str(settings.table_path(TABLE_QUARANTINE)),
                  str(settings.table_path(TABLE_METRICS))],
        "schema": [LOGS_DDL, QUARANTINE_DDL, METRIC_PARTIALS_DDL],
        "state": "dropDuplicatesWithinWatermark(dedup_key) on ingest_ts",
    }


def checkpoint_path(settings: Settings, query: str) -> Path:
    return settings.checkpoint_dir / query


def stored_fingerprint(settings: Settings, query: str = INGEST) -> dict[str, Any] | None:
    meta_path = checkpoint_path(settings, query) / FINGERPRINT_FILE
    return json.loads(meta_path.read_text()) if meta_path.is_file() else None


def write_fingerprint(settings: Settings, app_id: str, query: str = INGEST) -> None:
    cp = checkpoint_path(settings, query)
    cp.mkdir(parents=True, exist_ok=True)
    atomic_write(cp / FINGERPRINT_FILE, json.dumps(
        {"fingerprint": query_fingerprint(settings, query), "app_id": app_id,
         "created": time.time()}, indent=2))


def check_checkpoint(settings: Settings, query: str = INGEST) -> str:
    """Verify (or create) the checkpoint's fingerprint; return the query's Delta txn app id.

    Raises CheckpointMismatch naming what changed and what to do.
    """
    cp = checkpoint_path(settings, query)
    meta_path = cp / FINGERPRINT_FILE
    wanted = query_fingerprint(settings, query)
    if meta_path.is_file():
        stored = json.loads(meta_path.read_text())
        old = stored.get("fingerprint", {})
        if old != wanted:
            changed = sorted(k for k in set(old) | set(wanted) if old.get(k) != wanted.get(k))
            details = "; ".join(
                f"{k}: was {old.get(k)!r}, now {wanted.get(k)!r}" for k in changed
            )
            raise CheckpointMismatch(
                f"refusing to start query {query!r}: its checkpoint {cp} was written by a "
                f"different query ({details}). Restore the previous configuration, or move "
                f"that checkpoint directory away to start this query from scratch."
            )
        return str(stored["app_id"])
    app_id = f"lakewatch-{query}-{uuid.uuid4()}"
    write_fingerprint(settings, app_id, query)
    return app_id
