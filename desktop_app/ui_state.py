"""Remembered UI layout only (window geometry, dock/splitter state, last tab): a small JSON
file in ``settings.data_dir``. Configuration lives in Settings, never here.
"""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any

from pipeline.files import atomic_write
from pipeline.settings import Settings

FILE_NAME = "ui_state.json"


class UiState:
    """A flat JSON dict; QByteArray blobs are stored as base64 strings."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError, ValueError, OSError):
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                self._data = loaded

    @classmethod
    def for_settings(cls, settings: Settings) -> UiState:
        return cls(settings.data_dir / FILE_NAME)

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._data[key] = value

    def get_bytes(self, key: str) -> bytes | None:
        value = self._data.get(key)
        if not isinstance(value, str):
            return None
        try:
            return base64.b64decode(value)
        except ValueError:
            return None

    def set_bytes(self, key: str, value: bytes) -> None:
        self._data[key] = base64.b64encode(bytes(value)).decode("ascii")

    def save(self) -> None:
        """Write atomically so a crash mid-write never leaves a broken file."""
        atomic_write(self.path, json.dumps(self._data, indent=1, sort_keys=True))
