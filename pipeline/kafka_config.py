"""Client configuration for confluent-kafka and Spark's Kafka source, from one Settings.

Both clients get the same security settings; secrets are read from SecretStr only here and
never logged (``redacted`` gives a printable copy).
"""

from __future__ import annotations

from typing import Any

from pipeline.settings import Settings

_SECRET_KEYS = ("sasl.password", "ssl.key.password", "sasl.jaas.config")


def _security(settings: Settings) -> dict[str, str]:
    k = settings.kafka
    conf: dict[str, str] = {"security.protocol": k.security_protocol}
    if k.sasl_mechanism:
        conf["sasl.mechanism"] = k.sasl_mechanism
    if k.sasl_username:
        conf["sasl.username"] = k.sasl_username
    if k.sasl_password is not None:
        conf["sasl.password"] = k.sasl_password.get_secret_value()
    if k.ssl_ca_location:
        conf["ssl.ca.location"] = str(k.ssl_ca_location)
    if k.ssl_certificate_location:
        conf["ssl.certificate.location"] = str(k.ssl_certificate_location)
    if k.ssl_key_location:
        conf["ssl.key.location"] = str(k.ssl_key_location)
    if k.ssl_key_password is not None:
        conf["ssl.key.password"] = k.ssl_key_password.get_secret_value()
    return conf


def admin_config(settings: Settings) -> dict[str, Any]:
    return {"bootstrap.servers": settings.bootstrap_servers, **_security(settings)}


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Idempotent, throughput-tuned producer (acks=all is implied by idempotence)."""
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        **_security(settings),
    }
    conf.update(extra)
    return conf


def consumer_config(
    settings: Settings, group_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": group_id or settings.kafka.consumer_group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        **_security(settings),
    }
    conf.update(extra)
    return conf


def spark_kafka_options(settings: Settings) -> dict[str, str]:
    """``kafka.*`` options for Spark's Kafka source (Java client property names)."""
    k = settings.kafka
    opts = {
        "kafka.bootstrap.servers": settings.bootstrap_servers,
        "kafka.security.protocol": k.security_protocol,
    }
    if k.sasl_mechanism:
        opts["kafka.sasl.mechanism"] = k.sasl_mechanism
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if k.sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        password = k.sasl_password.get_secret_value() if k.sasl_password else ""
        opts["kafka.sasl.jaas.config"] = (
            f'{module} required username="{k.sasl_username or ""}" password="{password}";'
        )
    if k.ssl_ca_location:
        opts["kafka.ssl.truststore.type"] = "PEM"
        opts["kafka.ssl.truststore.location"] = str(k.ssl_ca_location)
    if k.ssl_certificate_location and k.ssl_key_location:
        opts["kafka.ssl.keystore.type"] = "PEM"
        opts["kafka.ssl.keystore.certificate.chain"] = k.ssl_certificate_location.read_text()
        opts["kafka.ssl.keystore.key"] = k.ssl_key_location.read_text()
        if k.ssl_key_password is not None:
            opts["kafka.ssl.key.password"] = k.ssl_key_password.get_secret_value()
    return opts


def redacted(conf: dict[str, Any]) -> dict[str, Any]:
    """A copy safe to log."""
    return {
        key: ("***" if any(s in key for s in _SECRET_KEYS) or key.endswith("keystore.key") else v)
        for key, v in conf.items()
    }


def ensure_topic(settings: Settings, topic: str | None = None, partitions: int | None = None,
                 timeout: float = 30.0) -> bool:
    """Create the topic if missing (partitions and retention from config); True if created."""
    from confluent_kafka.admin import AdminClient, NewTopic

    name = topic or settings.kafka.topic
    admin = AdminClient(admin_config(settings))
    md = admin.list_topics(timeout=timeout)
    if name in md.topics and md.topics[name].error is None:
        return False
    new = NewTopic(
        name,
        num_partitions=partitions or settings.kafka.partitions,
        replication_factor=-1,
        config={"retention.ms": str(settings.kafka.retention_ms)},
    )
    futures = admin.create_topics([new], operation_timeout=timeout, request_timeout=timeout)
    try:
        futures[name].result(timeout=timeout)
    except Exception as exc:  # TOPIC_ALREADY_EXISTS from a concurrent creator is fine
        if "TOPIC_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc):
            raise
        return False
    return True
