"""The processor's side of the SQL endpoint: once its SparkSession (with the Spark Connect
plugin, :func:`pipeline.jvm.connect_guard.connect_server_conf`) is up, install the read-only
policy in the guard, make the tables visible to the endpoint's sessions and publish the
endpoint for the app.

Spark Connect gives each client a fresh session of the same SparkContext: it shares the
catalog (the Delta tables registered by name) but not the processor's temp views, so the
``metrics_*`` views are also created as catalog views.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import threading
from typing import Any

from pipeline.settings import Settings
from pipeline.sql.connect_policy import ConnectPolicy
from pipeline.sql.endpoint import Endpoint, publish, withdraw

log = logging.getLogger(__name__)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def serve(spark: Any, settings: Settings, token: str) -> Endpoint | None:
    """Install the policy and publish the endpoint; None when the session has no endpoint."""
    jvm = spark.sparkContext._jvm
    service = getattr(jvm.org.apache.spark.sql.connect.service, "SparkConnectService$")
    module = getattr(service, "MODULE$")
    if not module.started():
        log.warning("Spark Connect did not start in this session: SQL stays in the app")
        return None
    from pyspark.java_gateway import ensure_callback_server_started

    ensure_callback_server_started(spark.sparkContext._gateway)
    jvm.io.lakewatch.connect.Guard.install(ConnectPolicy(spark, settings.sql.allow_writes))
    register_shared(spark, settings)
    endpoint = Endpoint(host="127.0.0.1", port=int(module.localPort()), token=token,
                        pid=os.getpid())
    publish(settings, endpoint)
    atexit.register(withdraw, settings, endpoint.pid)
    threading.Thread(target=_keep_registering, args=(spark, settings), daemon=True,
                     name="lakewatch-sql-endpoint-tables").start()
    log.info("SQL endpoint on 127.0.0.1:%d (Spark Connect, read-only)", endpoint.port)
    return endpoint


def _keep_registering(spark: Any, settings: Settings, every_s: float = 15.0) -> None:
    """Tables the pipeline creates later (a fresh data dir) become visible within ``every_s``."""
    stop = threading.Event()
    while not stop.wait(every_s):
        try:
            if spark.sparkContext._jsc.sc().isStopped():
                return
            register_shared(spark, settings)
        except Exception:  # noqa: BLE001 - the session is stopping, or a table is mid-creation
            log.debug("registering tables for the SQL endpoint", exc_info=True)


def register_shared(spark: Any, settings: Settings) -> list[str]:
    """Name the Delta tables in the shared catalog and the merged metrics views as catalog
    views (from a fresh session, so no temp view of the processor's is in the way)."""
    from pipeline.sql.catalog import register_tables

    names = register_tables(spark, settings)
    if "metrics" not in names:
        return names
    from pipeline.schemas import WINDOW_SIZES, merged_metrics_view
    from pipeline.transforms.metrics import merged_view_sql

    shared = spark.newSession()
    if "latency_hist" not in shared.table("metrics").columns:
        return names
    for size in WINDOW_SIZES:
        view = merged_metrics_view(size)
        names.append(view)
        if shared.catalog.tableExists(view):
            continue
        shared.sql(f"CREATE OR REPLACE VIEW `{view}` AS {merged_view_sql('metrics', size)}")
    return names
