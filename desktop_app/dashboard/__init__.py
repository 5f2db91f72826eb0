"""The dashboard: Delta ``metrics``/``anomalies`` read incrementally with delta-rs on a worker
thread (no Spark), a metric grid, pyqtgraph live charts and the anomaly list.
"""
