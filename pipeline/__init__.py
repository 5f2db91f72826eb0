"""Lakewatch's headless core: settings, JVM provisioning, the embedded Kafka broker, the shared
SparkSession, log sources, Spark jobs, the anomaly detector and the orchestrator.

Nothing in this package imports Qt; ``desktop_app`` builds on it, never the reverse.
"""

__version__ = "0.1.0"
