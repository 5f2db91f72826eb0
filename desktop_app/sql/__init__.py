"""The SQL workbench tab: a Scintilla SQL editor, results grid, table browser, query builder
and history, over ``pipeline.sql``'s engine (all Spark work happens on worker threads)."""

from desktop_app.sql.workbench import SqlWorkbench

__all__ = ["SqlWorkbench"]
