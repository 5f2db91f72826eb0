"""The query-builder panel: pick a table, columns, filters, time range, grouping and
aggregates; it writes the SQL (values as named parameters) into the editor and can run it.

Its percentiles are approximate (a KLL sketch): a note under the aggregates says by how much
whenever one is chosen, and the Percentile column's header and cells carry it as a tooltip."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import QDateTime, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from pipeline.sql.errors import SqlError
from pipeline.sql.query_builder import (
    AGGREGATES,
    OPERATORS,
    Aggregate,
    Filter,
    QuerySpec,
    TimeRange,
    build_query,
    percentile_note,
)


def parse_value(text: str, type_name: str) -> Any:
    """A typed filter value from the text box (by the column's Spark type)."""
    t = type_name.lower()
    if t in ("int", "bigint", "smallint", "tinyint"):
        return int(text)
    if t in ("double", "float") or t.startswith("decimal"):
        return float(text)
    if t == "boolean":
        return text.strip().lower() in ("true", "1", "yes")
    if t == "timestamp":
        return datetime.fromisoformat(text)
    return text


class BuilderPanel(QWidget):
    sqlReady = Signal(str, object, bool)  # sql, args, run

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._catalog: dict[str, list[Any]] = {}
        self.table = QComboBox()
        self.table.currentTextChanged.connect(self._on_table)
        self.columns = QListWidget()
        self.filters = QTableWidget(0, 3)
        self.filters.setHorizontalHeaderLabels(["Column", "Operator", "Value"])
        self.filters.horizontalHeader().setStretchLastSection(True)
        add_filter = QPushButton("Add filter")
        add_filter.clicked.connect(lambda: self.add_filter())
        remove_filter = QPushButton("Remove filter")
        remove_filter.clicked.connect(lambda: self.filters.removeRow(self.filters.currentRow()))
        self.time_enabled = QCheckBox("Time range on")
        self.time_column = QComboBox()
        self.time_start = QDateTimeEdit(QDateTime.currentDateTimeUtc().addSecs(-3600))
        self.time_end = QDateTimeEdit(QDateTime.currentDateTimeUtc())
        for w in (self.time_start, self.time_end):
            w.setCalendarPopup(True)
            w.setDisplayFormat("yyyy-MM-dd HH:mm:ss")
        self.group_by = QListWidget()
        self.aggregates = QTableWidget(0, 3)
        self.aggregates.setHorizontalHeaderLabels(["Function", "Column", "Percentile"])
        self.aggregates.horizontalHeaderItem(2).setToolTip(percentile_note())
        self.percentile_note = QLabel(percentile_note())
        self.percentile_note.setWordWrap(True)
        self.percentile_note.setStyleSheet("color: #9CDCFE")
        self.percentile_note.setHidden(True)
        add_agg = QPushButton("Add aggregate")
        add_agg.clicked.connect(lambda: self.add_aggregate())
        self.order_column = QComboBox()
        self.order_desc = QCheckBox("descending")
        self.limit = QSpinBox()
        self.limit.setRange(0, 10_000_000)
        self.limit.setValue(1000)
        self.limit.setSpecialValueText("no limit")
        self.error = QLabel()
        self.error.setStyleSheet("color: #F44747")
        write = QPushButton("Write SQL")
        write.clicked.connect(lambda: self.emit_sql(run=False))
        run = QPushButton("Run")
        run.clicked.connect(lambda: self.emit_sql(run=True))
        form = QFormLayout()
        form.addRow("Table", self.table)
        form.addRow("Columns", self.columns)
        fl = QHBoxLayout()
        fl.addWidget(add_filter)
        fl.addWidget(remove_filter)
        form.addRow("Filters", self.filters)
        form.addRow("", _wrap(fl))
        tl = QHBoxLayout()
        for w in (self.time_enabled, self.time_column, self.time_start, self.time_end):
            tl.addWidget(w)
        form.addRow("Time", _wrap(tl))
        form.addRow("Group by", self.group_by)
        form.addRow("Aggregates", self.aggregates)
        form.addRow("", add_agg)
        form.addRow("", self.percentile_note)
        ol = QHBoxLayout()
        ol.addWidget(self.order_column, 1)
        ol.addWidget(self.order_desc)
        form.addRow("Order by", _wrap(ol))
        form.addRow("Limit", self.limit)
        buttons = QHBoxLayout()
        buttons.addWidget(write)
        buttons.addWidget(run)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addLayout(buttons)

    # -- catalog -------------------------------------------------------------------------
    def set_catalog(self, catalog: dict[str, list[Any]]) -> None:
        self._catalog = catalog
        current = self.table.currentText()
        self.table.blockSignals(True)
        self.table.clear()
        self.table.addItems(sorted(catalog))
        self.table.blockSignals(False)
        self.table.setCurrentText(current if current in catalog else self.table.currentText())
        self._on_table(self.table.currentText())

    def _cols(self) -> list[Any]:
        return self._catalog.get(self.table.currentText(), [])

    def _on_table(self, _name: str) -> None:
        cols = self._cols()
        for lst in (self.columns, self.group_by):
            lst.clear()
            for c in cols:
                item = QListWidgetItem(c.name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Unchecked)
                lst.addItem(item)
        self.time_column.clear()
        self.time_column.addItems([c.name for c in cols if c.type in ("timestamp", "date")])
        self.order_column.clear()
        self.order_column.addItem("")
        self.order_column.addItems([c.name for c in cols])
        self.filters.setRowCount(0)
        self.aggregates.setRowCount(0)
        self._update_percentile_note()

    # -- rows ----------------------------------------------------------------------------
    def add_filter(self, column: str | None = None, op: str = "=", value: str = "") -> None:
        row = self.filters.rowCount()
        self.filters.insertRow(row)
        col_box = QComboBox()
        col_box.addItems([c.name for c in self._cols()])
        if column:
            col_box.setCurrentText(column)
        op_box = QComboBox()
        op_box.addItems(OPERATORS)
        op_box.setCurrentText(op)
        self.filters.setCellWidget(row, 0, col_box)
        self.filters.setCellWidget(row, 1, op_box)
        self.filters.setCellWidget(row, 2, QLineEdit(value))

    def add_aggregate(self, func: str = "count", column: str | None = None,
                      percentile: str = "") -> None:
        row = self.aggregates.rowCount()
        self.aggregates.insertRow(row)
        f_box = QComboBox()
        f_box.addItems(AGGREGATES)
        f_box.setItemData(AGGREGATES.index("percentile"), percentile_note(),
                          Qt.ItemDataRole.ToolTipRole)
        f_box.setCurrentText(func)
        f_box.currentTextChanged.connect(self._update_percentile_note)
        c_box = QComboBox()
        c_box.addItems(["*", *[c.name for c in self._cols()]])
        c_box.setCurrentText(column or "*")
        self.aggregates.setCellWidget(row, 0, f_box)
        self.aggregates.setCellWidget(row, 1, c_box)
        pct = QLineEdit(percentile)
        pct.setPlaceholderText("0.5")
        pct.setToolTip(percentile_note())
        self.aggregates.setCellWidget(row, 2, pct)
        self._update_percentile_note()

    def _update_percentile_note(self, *_: object) -> None:
        """Show the note on approximate percentiles while an aggregate row is a percentile."""
        self.percentile_note.setHidden(not any(
            self.aggregates.cellWidget(r, 0).currentText() == "percentile"
            for r in range(self.aggregates.rowCount())))

    def set_checked(self, which: str, names: list[str]) -> None:
        lst = self.columns if which == "columns" else self.group_by
        for i in range(lst.count()):
            item = lst.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names
                               else Qt.CheckState.Unchecked)

    # -- output --------------------------------------------------------------------------
    def spec(self) -> QuerySpec:
        types = {c.name: c.type for c in self._cols()}

        def checked(lst: QListWidget) -> list[str]:
            return [lst.item(i).text() for i in range(lst.count())
                    if lst.item(i).checkState() == Qt.CheckState.Checked]

        filters = []
        for r in range(self.filters.rowCount()):
            col = self.filters.cellWidget(r, 0).currentText()
            op = self.filters.cellWidget(r, 1).currentText()
            text = self.filters.cellWidget(r, 2).text()
            if op in ("IN", "NOT IN"):
                value: Any = [parse_value(v.strip(), types.get(col, "string"))
                              for v in text.split(",") if v.strip()]
            elif op in ("IS NULL", "IS NOT NULL"):
                value = None
            else:
                value = parse_value(text, types.get(col, "string"))
            filters.append(Filter(col, op, value))
        aggs = []
        for r in range(self.aggregates.rowCount()):
            func = self.aggregates.cellWidget(r, 0).currentText()
            col = self.aggregates.cellWidget(r, 1).currentText()
            pct = self.aggregates.cellWidget(r, 2).text().strip()
            aggs.append(Aggregate(func, None if col == "*" else col,
                                  float(pct) if pct else (0.5 if func == "percentile" else None)))
        time_range = None
        if self.time_enabled.isChecked() and self.time_column.currentText():
            time_range = TimeRange(
                self.time_column.currentText(),
                self.time_start.dateTime().toPython().replace(tzinfo=None),
                self.time_end.dateTime().toPython().replace(tzinfo=None),
            )
        order = self.order_column.currentText()
        return QuerySpec(
            table=self.table.currentText(),
            columns=checked(self.columns),
            filters=filters,
            time_range=time_range,
            group_by=checked(self.group_by),
            aggregates=aggs,
            order_by=[(order, self.order_desc.isChecked())] if order else [],
            limit=self.limit.value() or None,
        )

    def build(self) -> tuple[str, dict]:
        catalog = {t: [c.name for c in cols] for t, cols in self._catalog.items()}
        return build_query(self.spec(), catalog)

    def emit_sql(self, run: bool) -> None:
        try:
            sql, args = self.build()
        except (SqlError, ValueError) as exc:
            self.error.setText(str(exc))
            return
        self.error.setText("")
        self.sqlReady.emit(sql, args, run)


def _wrap(layout) -> QWidget:
    w = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    w.setLayout(layout)
    return w

