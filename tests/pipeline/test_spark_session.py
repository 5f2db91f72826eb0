"""The shared SparkSession: Kafka source batch read -> Delta -> read back; singleton; config."""

from __future__ import annotations

import threading

import pytest

from pipeline.jvm import MissingArtifactsError, group_jars, spark_extra_jars
from pipeline.kafka_config import ensure_topic, spark_kafka_options
from pipeline.settings import Settings
from pipeline.spark_session_manager import get_spark, spark_conf
from tests.helpers.kafka import produce


def test_kafka_batch_read_to_delta_round_trip(kafka_settings: Settings, spark):
    topic = kafka_settings.kafka.topic
    ensure_topic(kafka_settings, partitions=3)
    sent = produce(kafka_settings, 10_000, topic)
    df = (
        spark.read.format("kafka")
        .options(**spark_kafka_options(kafka_settings))
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
        .selectExpr("partition", "offset", "CAST(value AS STRING) AS payload")
    )
    path = str(kafka_settings.table_path("roundtrip"))
    df.write.format("delta").mode("overwrite").save(path)
    back = spark.read.format("delta").load(path)
    assert back.count() == 10_000
    assert sorted(r.payload.encode() for r in back.select("payload").collect()) == sorted(sent)
    assert back.select("partition", "offset").distinct().count() == 10_000


def test_one_session_per_process_from_many_threads(base_settings: Settings, spark):
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(get_spark(base_settings)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(s is spark for s in seen)


def test_session_config(base_settings: Settings, spark):
    conf = spark_conf(base_settings)
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    jars = conf["spark.jars"].split(",")
    assert any("spark-sql-kafka-0-10_2.13-" in j for j in jars)
    assert any("delta-spark_4.2_2.13-" in j for j in jars)
    assert spark.conf.get("spark.sql.shuffle.partitions") == conf["spark.sql.shuffle.partitions"]
    assert spark.conf.get("spark.ui.enabled") == "false"
    assert spark.conf.get("spark.driver.bindAddress") == "127.0.0.1"


def test_empty_cache_names_what_is_missing_and_the_fix(base_settings: Settings, tmp_path):
    s = base_settings.model_copy(deep=True)
    s.storage.cache_dir = tmp_path / "empty-cache"
    with pytest.raises(MissingArtifactsError) as err:
        spark_extra_jars(s)
    msg = str(err.value)
    assert "spark-sql-kafka-0-10_2.13" in msg and "delta-spark_4.2_2.13" in msg
    assert "lakewatch setup" in msg
    with pytest.raises(MissingArtifactsError, match="kafka_2.13.*lakewatch setup"):
        group_jars(s, "kafka")
