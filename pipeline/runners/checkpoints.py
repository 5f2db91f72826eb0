"""The stream mode's queries and their checkpoints.

Each query has its checkpoint under ``settings.checkpoint_dir/<query>``, holding
``lakewatch-query.json``: the query's fingerprint. Starting against a checkpoint written by a
different query (other topic, sink, schema or query version) is refused with
:class:`CheckpointMismatch`.
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
    METRICS_DDL,
    QUARANTINE_DDL,
    TABLE_LOGS,
    TABLE_METRICS,
    TABLE_QUARANTINE,
    WINDOW_SIZES,
)
from pipeline.settings import ConfigError, Settings

#: Bump when a transform change makes existing checkpoints meaningless.
QUERY_VERSION = 1
INGEST = "ingest"
#: one metrics query per window size: query name -> ``WINDOW_SIZES`` label
METRICS_QUERIES = {f"metrics_{label}": label for label in WINDOW_SIZES}
FINGERPRINT_FILE = "lakewatch-query.json"


class CheckpointMismatch(ConfigError):
    """A checkpoint was written by a different query than the one being started."""


def query_fingerprint(settings: Settings, query: str) -> dict[str, Any]:
    """What must not change under an existing checkpoint (trigger, batch size and validation
    thresholds may: they change no state and no offsets)."""
    if query == INGEST:
        return {
            "query": INGEST,
            "query_version": QUERY_VERSION,
            "source": f"kafka:{settings.kafka.topic}",
            "sinks": [str(settings.table_path(TABLE_LOGS)),
                      str(settings.table_path(TABLE_QUARANTINE))],
            "schema": [LOGS_DDL, QUARANTINE_DDL],
            "state": "dropDuplicatesWithinWatermark(dedup_key) on ingest_ts",
        }
    return {
        "query": query,
        "query_version": QUERY_VERSION,
        "source": f"delta:{settings.table_path(TABLE_LOGS)}",
        "sinks": [str(settings.table_path(TABLE_METRICS))],
        "schema": [METRICS_DDL],
        "state": f"window({METRICS_QUERIES[query]}) by source, endpoint, level on ts",
    }


def checkpoint_path(settings: Settings, query: str) -> Path:
    return settings.checkpoint_dir / query


def check_checkpoint(settings: Settings, query: str) -> str:
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
    cp.mkdir(parents=True, exist_ok=True)
    app_id = f"lakewatch-{query}-{uuid.uuid4()}"
    atomic_write(meta_path, json.dumps({"fingerprint": wanted, "app_id": app_id,
                                        "created": time.time()}, indent=2))
    return app_id
