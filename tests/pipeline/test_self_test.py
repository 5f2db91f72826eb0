"""``lakewatch self-test`` in-process: real broker, real Spark, one event into Delta and back."""

from __future__ import annotations

import io

import pytest
from confluent_kafka.admin import AdminClient

from pipeline.kafka_config import admin_config
from pipeline.self_test import FAIL, OK, SKIP, passed, run_self_test
from tests.helpers.ports import free_port


def topics(settings) -> set[str]:
    return set(AdminClient(admin_config(settings)).list_topics(timeout=20).topics)


@pytest.mark.slow
def test_self_test_passes_end_to_end_with_its_own_broker(spark, settings):
    """Not attached: the self-test starts an embedded broker, and stops it again."""
    settings.broker.port = free_port()
    settings.broker.controller_port = free_port()
    settings.broker.heap_mb = 256
    seen = []

    def extra(s):
        seen.append(s.bootstrap_servers)
        return "extra hook ran"

    tables_before = sorted(t.name for t in spark.catalog.listTables())
    out = io.StringIO()
    results = run_self_test(settings, extra_steps=[("extra check", extra)], out=out)
    text = out.getvalue()
    assert passed(results), text
    # a shared session's catalog is left alone (its names keep meaning the real tables)
    assert sorted(t.name for t in spark.catalog.listTables()) == tables_before
    titles = [r.title for r in results]
    assert titles == [
        "Kafka broker", "topic", "SparkSession", "produce one event",
        "processor stream -> Delta (availableNow)", "read the event back from Delta",
        "extra check", "delete the topic", "stop the broker",
    ]
    assert seen == [settings.bootstrap_servers]
    assert "embedded broker started" in results[0].detail
    assert results[4].detail == "1 row(s) to logs, 0 quarantined"
    assert results[5].detail == "1 row, every field as sent"
    assert text.count(f" {OK} ") == len(results) and FAIL not in text
    assert "self-test passed" in text
    # the shared SparkSession survives; the scratch data is gone; the broker is stopped
    assert spark.range(3).count() == 3
    assert list((settings.data_dir / "self-test").iterdir()) == []
    from pipeline.broker import EmbeddedBroker

    assert EmbeddedBroker(settings).running_pid() is None


def test_self_test_reports_an_unreachable_kafka_and_skips_the_rest(settings):
    settings.kafka.bootstrap_servers = f"127.0.0.1:{free_port()}"
    settings.broker.ready_timeout_s = 2.0
    out = io.StringIO()
    results = run_self_test(settings, extra_steps=[("extra", lambda s: None)], out=out)
    assert not passed(results)
    assert [r.ok for r in results] == [False, None, None, None, None, None, None]
    assert results[0].detail.startswith("RuntimeError: no Kafka broker answers at 127.0.0.1:")
    text = out.getvalue()
    assert f" {FAIL} Kafka broker" in text and f" {SKIP} topic" in text
    assert "self-test FAILED" in text


@pytest.mark.slow
def test_a_failing_extra_step_fails_the_self_test_and_cleanup_still_runs(kafka_settings, spark):
    s = kafka_settings
    s.kafka.bootstrap_servers = s.bootstrap_servers  # attach to the session broker
    before = topics(s)

    def qt_window(_settings):
        raise RuntimeError("no offscreen platform plugin")

    out = io.StringIO()
    results = run_self_test(s, extra_steps=[("Qt window", qt_window)], out=out)
    by_title = {r.title: r for r in results}
    assert not passed(results)
    assert by_title["Qt window"].ok is False, out.getvalue()
    assert by_title["Qt window"].detail == "RuntimeError: no offscreen platform plugin"
    assert by_title["read the event back from Delta"].ok is True
    assert by_title["delete the topic"].ok is True
    assert "stop the broker" not in by_title and "stop Spark" not in by_title
    assert topics(s) - before == set()
