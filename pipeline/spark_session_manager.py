"""The one SparkSession of a process.

The streaming processor, the anomaly detector and the SQL editor share it (the original
design's singleton), so "Only one SparkContext may be running" never happens. Delta and the
Kafka connector come from the jar cache through ``spark.jars``: nothing is downloaded at start.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pipeline.jvm import require_java, spark_extra_jars
from pipeline.jvm.nio_fs import local_fs_conf
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

_lock = threading.RLock()
_session: SparkSession | None = None
_started_at: float | None = None
#: Extra conf and a start hook for the next session built (:func:`configure_next_session`).
_next_conf: dict[str, str] = {}
_on_start: list[Callable[[SparkSession], None]] = []


def configure_next_session(conf: dict[str, str],
                           on_start: Callable[[SparkSession], None] | None = None) -> None:
    """Add ``conf`` to the session :func:`get_spark` builds next and call ``on_start`` with
    it once built: how a command (the processor serving SQL) extends the session that library
    code creates. ``spark.driver.extraClassPath`` entries are joined, not replaced."""
    with _lock:
        _next_conf.update(conf)
        if on_start is not None:
            _on_start.append(on_start)


def _merged(conf: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    out = dict(conf)
    for key, value in extra.items():
        if key == "spark.driver.extraClassPath" and out.get(key):
            out[key] = f"{out[key]}:{value}"
        else:
            out[key] = value
    return out


def spark_conf(settings: Settings) -> dict[str, str]:
    """Every config entry the session is built with (pure; tests read it)."""
    s = settings.spark
    jars = spark_extra_jars(settings)
    local = s.master.startswith("local")
    shuffle = s.shuffle_partitions or max(2, 2 * (os.cpu_count() or 1))
    conf = {
        "spark.app.name": "lakewatch",
        "spark.master": s.master,
        "spark.jars": ",".join(str(j) for j in jars),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(shuffle),
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.memory": s.driver_memory,
        "spark.ui.enabled": str(s.ui_enabled).lower(),
        "spark.ui.port": str(s.ui_port),
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.streaming.stopGracefullyOnShutdown": "true",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        "spark.sql.adaptive.enabled": "true",
        # percentile_approx (metrics, SQL) is an object aggregate: past 128 groups per task
        # Spark falls back to sorting the whole input. Its buffers grow with the rows a task
        # reads, not with the number of groups, so a higher bound costs no memory and halves
        # a 500-endpoint GROUP BY on 10M rows (bench/sql.py, after OPTIMIZE: 16.1 -> 10.7 s).
        "spark.sql.objectHashAggregate.sortBased.fallbackThreshold": "10000",
        "spark.driver.extraJavaOptions": "-Dlog4j2.level=WARN -Djava.net.preferIPv4Stack=true",
    }
    if settings.processor.state_store == "rocksdb":
        conf["spark.sql.streaming.stateStore.providerClass"] = (
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider")
        conf["spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled"] = "true"
    if local:
        # Nothing listens beyond loopback; the UI (when on) is reachable only from this machine.
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        # Delta's default of 50 tasks per snapshot read dominates small queries on a laptop.
        conf["spark.databricks.delta.snapshotPartitions"] = str(max(2, os.cpu_count() or 2))
        # no chmod process per file written (pipeline.jvm.nio_fs), when `lakewatch setup` built it
        conf.update(local_fs_conf(settings))
    conf.update(s.extra_conf)
    return conf


def get_spark(settings: Settings) -> SparkSession:
    """The process's SparkSession, created on first call (thread-safe).

    Raises JavaError (Java missing / < 17) or MissingArtifactsError (run ``lakewatch setup``).
    """
    global _session, _started_at
    with _lock:
        if _session is not None and _session_alive(_session):
            return _session
        require_java()
        conf = _merged(spark_conf(settings), _next_conf)
        # Python workers (if a code path ever needs them) use this interpreter.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        from pyspark.sql import SparkSession

        started = time.monotonic()
        builder = SparkSession.builder
        for key, value in conf.items():
            builder = builder.config(key, value)
        _session = builder.getOrCreate()
        _session.sparkContext.setLogLevel(settings.spark.log_level)
        _started_at = time.monotonic() - started
        log.info("SparkSession ready in %.1f s (master %s)", _started_at, settings.spark.master)
        atexit.register(stop_spark)
        hooks = list(_on_start)
        _next_conf.clear()
        _on_start.clear()
        for hook in hooks:
            try:
                hook(_session)
            except Exception:  # an optional extra (the SQL endpoint) must not stop the job
                log.exception("session start hook %r failed", hook)
        return _session


def startup_seconds() -> float | None:
    return _started_at


def _session_alive(session: SparkSession) -> bool:
    try:
        return not session.sparkContext._jsc.sc().isStopped()
    except Exception:
        return False


def stop_spark() -> None:
    """Stop active streaming queries and the session; a no-op when none runs."""
    global _session
    with _lock:
        if _session is None:
            return
        try:
            for query in _session.streams.active:
                try:
                    query.stop()
                except Exception:  # a query failing on stop must not keep the JVM alive
                    log.exception("stopping streaming query %s", query.name)
            _session.stop()
        finally:
            _session = None
