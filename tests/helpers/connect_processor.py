"""A stand-in for the stream processor in its own process: a SparkSession built the way the
processor's is (Spark Connect plugin + guard, ``lakewatch process --mode stream``), with the
test tables, serving SQL until its stdin closes. Prints ``ENDPOINT <path of the endpoint
file>`` when ready (the JVM logs to stdout too).

    python -m tests.helpers.connect_processor DATA_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(data_dir: str) -> None:
    from pipeline.jvm.connect_guard import connect_server_conf
    from pipeline.settings import load_settings
    from pipeline.spark_session_manager import configure_next_session, get_spark, stop_spark
    from pipeline.sql.connect_server import new_token, register_shared, serve
    from pipeline.sql.endpoint import endpoint_path

    settings = load_settings(None, {"storage.data_dir": data_dir,
                                    "spark.ui_enabled": False})
    token = new_token()
    conf = connect_server_conf(settings, token)
    if not conf:
        print("NO-GUARD-JAR", flush=True)
        return
    configure_next_session(conf, lambda spark: serve(spark, settings, token))
    spark = get_spark(settings)
    spark.conf.set("spark.databricks.delta.snapshotPartitions", "2")
    from tests.pipeline.sql.test_engine import LOG_ROWS, _logs_df

    logs = str(settings.table_path("logs"))
    if not Path(logs).exists():
        _logs_df(spark, LOG_ROWS[:3]).write.format("delta").partitionBy("date").save(logs)
        _logs_df(spark, LOG_ROWS[3:]).write.format("delta").mode("append").save(logs)
        spark.range(4).selectExpr("id", "id * 10 AS v").write.format("delta").save(
            str(settings.table_path("scratch")))
    register_shared(spark, settings)
    print(f"ENDPOINT {endpoint_path(settings)}", flush=True)
    sys.stdin.read()
    stop_spark()


if __name__ == "__main__":
    main(sys.argv[1])
