"""The Settings dialog over the ``Settings`` object: edits are validated by the pydantic section
models (the error names the key, e.g. ``kafka.topic``) and saved to the TOML config file.

Passwords are applied to this session only and never written to the file; set them through
``LAKEWATCH_KAFKA__SASL_PASSWORD`` / ``LAKEWATCH_KAFKA__SSL_KEY_PASSWORD`` to persist them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from desktop_app.config_file import update_config_file
from pipeline.settings import Settings, default_config_path


@dataclass(frozen=True)
class Field:
    section: str
    key: str
    label: str
    kind: str = "text"  # text | int | bool | choice | password | path
    choices: tuple[str, ...] = ()
    tip: str = ""

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"


FIELDS: tuple[Field, ...] = (
    Field("kafka", "bootstrap_servers", "Bootstrap servers", tip="host:port[,host:port]; "
          "empty runs the embedded broker, set attaches to an existing cluster"),
    Field("kafka", "topic", "Topic"),
    Field("kafka", "security_protocol", "Security protocol", "choice",
          ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")),
    Field("kafka", "sasl_mechanism", "SASL mechanism", "choice",
          ("", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")),
    Field("kafka", "sasl_username", "SASL username"),
    Field("kafka", "sasl_password", "SASL password", "password",
          tip="used for this session only; persist it with LAKEWATCH_KAFKA__SASL_PASSWORD"),
    Field("kafka", "ssl_ca_location", "SSL CA file", "path"),
    Field("kafka", "ssl_certificate_location", "SSL certificate", "path"),
    Field("kafka", "ssl_key_location", "SSL key", "path"),
    Field("storage", "data_dir", "Data directory", "path",
          tip="empty: the per-user data directory"),
    Field("spark", "master", "Spark master", tip="local[*], spark://host:port, yarn or k8s://..."),
    Field("spark", "driver_memory", "Driver memory", tip="e.g. 2g"),
    Field("app", "buffer_rows", "Log buffer (rows)", "int"),
    Field("app", "refresh_ms", "Dashboard refresh (ms)", "int"),
    Field("app", "theme", "Theme", "choice", ("dark", "light")),
    Field("app", "keep_pipeline_running", "Keep pipeline running after closing", "bool"),
)


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value)


def validate_changes(settings: Settings, values: dict[str, Any]) -> tuple[Settings, dict]:
    """Apply ``{"section.key": value}`` to a copy of ``settings`` through pydantic.

    Returns the new Settings and the validated values that differ; raises ValueError whose message
    starts with the offending key.
    """
    by_section: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        section, key = name.split(".", 1)
        by_section.setdefault(section, {})[key] = value
    updates = {}
    for section, changes in by_section.items():
        model = getattr(settings, section)
        data = model.model_dump()
        data.update(changes)
        try:
            updates[section] = type(model).model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join([section, *(str(p) for p in err["loc"])])
            raise ValueError(f"{key}: {err['msg']}") from None
    changed = {
        section: {k: getattr(updates[section], k) for k in keys
                  if getattr(updates[section], k) != getattr(getattr(settings, section), k)}
        for section, keys in by_section.items()
    }
    new = settings.model_copy(update=updates)
    new.config_file = settings.config_file
    return new, {s: c for s, c in changed.items() if c}


class SettingsDialog(QDialog):
    """On accept: ``result_settings`` holds the validated Settings, ``saved_to`` the file."""

    def __init__(self, settings: Settings, config_path: Path | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Lakewatch settings")
        self.settings = settings
        self.config_path = config_path or settings.config_file or default_config_path()
        self.result_settings: Settings | None = None
        self.saved_to: Path | None = None
        self.editors: dict[str, QWidget] = {}
        body = QWidget()
        body_layout = QVBoxLayout(body)
        forms: dict[str, QFormLayout] = {}
        for field in FIELDS:
            if field.section not in forms:
                box = QGroupBox(field.section.capitalize())
                forms[field.section] = QFormLayout(box)
                body_layout.addWidget(box)
            editor = self._editor(field, getattr(getattr(settings, field.section), field.key))
            editor.setObjectName(field.name)
            editor.setToolTip(field.tip or field.name)
            self.editors[field.name] = editor
            forms[field.section].addRow(field.label, editor)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.error = QLabel()
        self.error.setObjectName("settingsError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color:#e74c3c")
        where = QLabel(f"Saved to {self.config_path}")
        where.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.error)
        layout.addWidget(where)
        layout.addWidget(buttons)
        self.resize(560, 640)

    @staticmethod
    def _editor(field: Field, value: Any) -> QWidget:
        if field.kind == "bool":
            box = QCheckBox()
            box.setChecked(bool(value))
            return box
        if field.kind == "choice":
            combo = QComboBox()
            combo.addItems(list(field.choices))
            combo.setCurrentText(_display(value))
            return combo
        edit = QLineEdit(_display(value))
        if field.kind == "password":
            edit.setEchoMode(QLineEdit.EchoMode.Password)
        return edit

    def set_value(self, name: str, value: Any) -> None:
        editor = self.editors[name]
        if isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QComboBox):
            editor.setCurrentText(str(value))
        else:
            editor.setText(str(value))

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in FIELDS:
            editor = self.editors[field.name]
            if isinstance(editor, QCheckBox):
                out[field.name] = editor.isChecked()
                continue
            text = (editor.currentText() if isinstance(editor, QComboBox)
                    else editor.text()).strip()
            if field.kind == "int":
                try:
                    out[field.name] = int(text)
                except ValueError:
                    out[field.name] = text  # pydantic names the key and the problem
            else:
                out[field.name] = text or None
        return out

    def accept(self) -> None:
        values = self.values()
        try:
            new, changes = validate_changes(self.settings, values)
        except ValueError as exc:
            self.error.setText(str(exc))
            key = str(exc).split(":", 1)[0]
            editor = self.editors.get(key)
            if editor is not None:
                editor.setFocus()
            return
        file_changes = {
            section: {k: (str(v) if hasattr(v, "__fspath__") else v) for k, v in items.items()}
            for section, items in changes.items()
        }
        try:
            update_config_file(self.config_path, file_changes)
        except (OSError, ValueError, TypeError) as exc:
            self.error.setText(f"cannot write {self.config_path}: {exc}")
            return
        new.config_file = self.config_path
        self.result_settings = new
        self.saved_to = self.config_path
        super().accept()
