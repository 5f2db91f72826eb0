"""Exactly once without ``txnVersion``: each commit of the ingest writer names its batch.

Why not Delta's ``txnAppId`` / ``txnVersion``: on delta-spark 4.4.0 checking them reads
``Snapshot.transactions``, a state reconstruction of the whole table on every commit (1.5-2 s
each on a table a day old; delta-io/delta#6929 fixes it on Delta's master only). Yet a replay
can only be the first batch after a start - Spark runs again the batch whose offsets were
logged but not committed - and the writer lock allows one writer per data directory. So each
commit carries ``{"app_id", "batch_id"}`` in its ``userMetadata`` (visible in ``DESCRIBE
HISTORY``), the newest such commit of each table is read once at start, and a batch at or below
it is skipped for that table.

The scan reads ``_delta_log/<version>.json`` newest first and stops at the first commit of this
app id; a ``txn`` action of the app id (written by the ``txnVersion`` layout before) counts
too, so tables written by the older writer resume exactly once as well.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")


def batch_tag(app_id: str, batch_id: int) -> str:
    return json.dumps({"app_id": app_id, "batch_id": batch_id})


def _batch_of(line: str, app_id: str) -> int | None:
    action = json.loads(line)
    if "commitInfo" in action:
        meta = action["commitInfo"].get("userMetadata")
        if meta and meta.startswith("{"):
            try:
                tag = json.loads(meta)
            except ValueError:  # a user's own metadata, not ours
                return None
            if isinstance(tag, dict) and tag.get("app_id") == app_id:
                return int(tag["batch_id"])
    elif "txn" in action and action["txn"].get("appId") == app_id:
        return int(action["txn"]["version"])
    return None


def last_written_batch(table_path: str | Path, app_id: str) -> int | None:
    """The newest batch id ``app_id`` committed to the table (None: none, or no table)."""
    log_dir = Path(table_path) / "_delta_log"
    if not log_dir.is_dir():
        return None
    versions = sorted((int(m.group(1)) for m in map(_COMMIT_FILE.match, (
        p.name for p in log_dir.iterdir())) if m), reverse=True)
    for version in versions:
        try:
            lines = (log_dir / f"{version:020d}.json").read_text().splitlines()
        except FileNotFoundError:  # removed by log cleanup meanwhile: older ones are gone too
            break
        found = [b for b in (_batch_of(line, app_id) for line in lines if line) if b is not None]
        if found:
            return max(found)
    return None
