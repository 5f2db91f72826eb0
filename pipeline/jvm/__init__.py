"""JVM side of Lakewatch: finding Java, and the Maven artifacts (Kafka broker, Spark's Kafka
connector, Delta) resolved from Maven Central into the per-user jar cache by ``lakewatch setup``.
"""

from pipeline.jvm.artifacts import (
    ARTIFACT_GROUPS,
    MissingArtifactsError,
    delta_version,
    group_jars,
    kafka_classpath,
    spark_extra_jars,
    spark_version,
)
from pipeline.jvm.java import JavaError, find_java, require_java

__all__ = [
    "ARTIFACT_GROUPS",
    "JavaError",
    "MissingArtifactsError",
    "delta_version",
    "find_java",
    "group_jars",
    "kafka_classpath",
    "require_java",
    "spark_extra_jars",
    "spark_version",
]
