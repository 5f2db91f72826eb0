"""The live log stream: a Kafka tail shown in a filterable, bounded QTableView.

Pure parts (no Qt import; unit-tested fast): ``columns`` (column constants), ``vocab``
(categorical dictionaries), ``casefold`` (ASCII case folding), ``decode`` (Kafka records ->
columnar batches), ``ring`` (the bounded columnar ring buffer), ``filters`` (filter spec +
vectorized evaluation), ``filter_store`` (named filters in a JSON file), ``export`` (CSV /
JSON-lines writers), ``lineage`` (Delta table version of a Kafka record), ``sqltext`` (the
"Open in SQL" query), ``jump`` (the jump field's syntax) and ``kafka_tail`` (the consumer,
its seeks and the poll loop feeding a bounded batch queue).
Qt parts: ``model`` (the table model), ``table`` (the view that paints it), ``tail`` (the
QThread worker running ``kafka_tail``), ``tasks`` (thread-pool jobs), ``toolbar``
(``StreamToolbar``, ``FilterBar``), ``filtering`` (``FilterController``), ``saved_filters``,
``details`` (``DetailsPane``), ``export_actions`` (``ExportControls``) and ``widget``
(``LogStreamWidget``, which composes them).

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
