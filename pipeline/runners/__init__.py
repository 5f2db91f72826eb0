"""The long-running Spark jobs behind ``lakewatch process``.

``readStream`` / ``writeStream``, checkpoints, sinks, status and maintenance live here; the
transformations they run stay pure (DataFrame in, DataFrame out) in :mod:`pipeline.transforms`.

- ``checkpoints``: the queries' names, checkpoint directories and fingerprints.
- ``ingest``: the Kafka -> ``logs`` / ``logs_quarantine`` and ``logs`` -> ``metrics`` queries.
- ``progress``: counters fed by the queries, Kafka lag and the processor's status fields.
- ``stream_job``: stream mode: the queries in one SparkSession, status loop, maintenance.
- ``batch_jobs``: analytics reports and the standalone OPTIMIZE + VACUUM.
"""
