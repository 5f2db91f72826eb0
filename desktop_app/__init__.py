"""Lakewatch's PySide6 desktop app: the main window, dashboard charts, pipeline health and
control, the live log stream and the SQL workbench, built on the headless ``pipeline`` core.

Nothing here is imported by ``pipeline``; Spark is reached only through service modules.
"""

__version__ = "0.1.0"
