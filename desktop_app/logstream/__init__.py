"""The live log stream: a Kafka tail shown in a filterable, bounded QTableView.

Pure parts (no Qt import; unit-tested fast): ``columns`` (column constants), ``vocab``
(categorical dictionaries), ``decode`` (Kafka records -> columnar batches), ``ring`` (the
bounded columnar ring buffer), ``filters`` (filter spec + vectorized evaluation),
``filter_store`` (named filters in a JSON file), ``export`` (CSV / JSON-lines writers),
``lineage`` (Delta table version of a Kafka record) and ``sqltext`` (the "Open in SQL" query).
Qt parts: ``model`` (the table model), ``tail`` (the Kafka consumer worker), ``tasks``
(thread-pool jobs) and ``widget`` (``LogStreamWidget``).

``LogStreamWidget`` is imported lazily so that importing a pure module never loads Qt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from desktop_app.logstream.widget import LogStreamWidget

__all__ = ["LogStreamWidget"]


def __getattr__(name: str) -> Any:
    if name == "LogStreamWidget":
        from desktop_app.logstream.widget import LogStreamWidget

        return LogStreamWidget
    raise AttributeError(name)
