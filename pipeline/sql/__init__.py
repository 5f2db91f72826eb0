"""Lakewatch's headless Spark SQL engine: read-only-by-default query execution over the
pipeline's Delta tables, with plan-based safety checks, cancellation, paging, EXPLAIN,
a pure query builder, table information, persisted history and the ``lakewatch sql`` CLI.

Nothing here imports Qt; the desktop SQL workbench (``desktop_app.sql``) drives this package
from worker threads.
"""
