"""Exactly once by batch tags: a replayed batch is skipped per table, on real Delta tables."""

from __future__ import annotations

import json

from pipeline.delta_tables import ensure_tables
from pipeline.runners.batch_tags import batch_tag, last_written_batch
from pipeline.runners.ingest import IngestBatchWriter
from pipeline.runners.progress import ProcessorStats
from pipeline.schemas import TABLE_LOGS, TABLE_METRICS, TABLE_QUARANTINE
from tests.pipeline.transforms.test_transforms import event, parse


def _commit(log_dir, version, *actions):
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / f"{version:020d}.json").write_text(
        "\n".join(json.dumps(a) for a in actions) + "\n")


def test_newest_commit_of_the_app_wins_over_others_and_user_metadata(tmp_path):
    log_dir = tmp_path / "t" / "_delta_log"
    _commit(log_dir, 0, {"commitInfo": {"operation": "CREATE TABLE"}})
    _commit(log_dir, 1, {"commitInfo": {"userMetadata": batch_tag("a", 4)}})
    _commit(log_dir, 2, {"commitInfo": {"userMetadata": batch_tag("b", 9)}})
    _commit(log_dir, 3, {"commitInfo": {"userMetadata": "{not json: a user's note"}})
    _commit(log_dir, 4, {"commitInfo": {"operation": "OPTIMIZE"}})
    assert last_written_batch(tmp_path / "t", "a") == 4
    assert last_written_batch(tmp_path / "t", "b") == 9
    assert last_written_batch(tmp_path / "t", "c") is None
    assert last_written_batch(tmp_path / "missing", "a") is None


def test_txn_action_of_the_older_writer_counts(tmp_path):
    log_dir = tmp_path / "t" / "_delta_log"
    _commit(log_dir, 0, {"txn": {"appId": "a", "version": 11}}, {"commitInfo": {}})
    _commit(log_dir, 1, {"txn": {"appId": "other", "version": 50}}, {"commitInfo": {}})
    assert last_written_batch(tmp_path / "t", "a") == 11


def test_replayed_batch_is_skipped_in_every_table(spark, settings):
    ensure_tables(spark, settings)
    paths = {name: str(settings.table_path(name))
             for name in (TABLE_LOGS, TABLE_QUARANTINE, TABLE_METRICS)}
    batch = parse(spark, [event(event_id=f"e{i}") for i in range(3)] + ["not json"])
    IngestBatchWriter(settings, "app-1", ProcessorStats())(batch, 7)

    restarted = IngestBatchWriter(settings, "app-1", ProcessorStats())
    assert restarted.written == {p: 7 for p in paths.values()}
    restarted(batch, 7)  # the replay after a crash: nothing written twice
    restarted(batch, 8)  # the next batch (here the same rows again): written

    def count(name):
        return spark.read.format("delta").load(paths[name]).count()

    assert (count(TABLE_LOGS), count(TABLE_QUARANTINE)) == (6, 2)
    metrics = spark.read.format("delta").load(paths[TABLE_METRICS])
    assert sorted(r.batch_id for r in metrics.select("batch_id").distinct().collect()) == [7, 8]
    assert sum(r.requests for r in metrics.collect()) == 6
    history = spark.sql(f"DESCRIBE HISTORY delta.`{paths[TABLE_LOGS]}`").collect()
    assert [json.loads(h.userMetadata) for h in history if h.userMetadata] == [
        {"app_id": "app-1", "batch_id": 8}, {"app_id": "app-1", "batch_id": 7}]
    assert IngestBatchWriter(settings, "app-2", ProcessorStats()).written == {
        p: None for p in paths.values()}
