"""Anomaly detection over the ``metrics`` and ``logs`` Delta tables.

Pure pandas core, testable without Spark or Kafka:

- ``features``: metrics rows -> one feature row per (window, entity); ``events_to_metrics``
  mirrors the processor's metrics for tests and the benchmark.
- ``baseline``: rolling median/MAD robust z-scores per entity and feature (seasonal when
  enough same-hour history exists).
- ``iforest``: IsolationForest over the deviation vectors, persisted with its versions.
- ``patterns``: drain3 log templates: new templates and template share changes.
- ``classify``: which kind of anomaly a set of deviating features is.
- ``engine``: the stateful ``Detector`` that turns new windows into anomaly rows (``process``
  learns from final windows; ``peek`` scores open ones without learning).
- ``explain``: an anomaly row's top contributors and its explanation text.
- ``evaluation``: precision / recall / F1 / delay against the generator's labels.

Spark and Delta I/O live only in ``delta_io`` (reads), ``anomaly_table`` (the ``anomalies``
table: provisional findings confirmed or withdrawn once their window is final) and the runner
``runner``.
"""
