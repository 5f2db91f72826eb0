"""Named filters of the live view, kept in one small JSON file under ``settings.data_dir``.

The file also remembers the last filter in use so a restart shows the same view. Writes are
atomic (temp file + rename); a corrupt or unreadable file raises ``FilterStoreError`` with
the path, and is never silently overwritten by load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from desktop_app.logstream.filters import FilterError, FilterSpec
from pipeline.files import atomic_write
from pipeline.settings import Settings

FILE_NAME = "logstream_filters.json"
_VERSION = 1


class FilterStoreError(RuntimeError):
    """The filters file cannot be read or written; the message names it."""


def store_path(settings: Settings) -> Path:
    return settings.data_dir / "app" / FILE_NAME


class FilterStore:
    """``{name: FilterSpec}`` plus the last used spec, backed by ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.filters: dict[str, FilterSpec] = {}
        self.last: FilterSpec = FilterSpec()

    @classmethod
    def for_settings(cls, settings: Settings) -> FilterStore:
        return cls(store_path(settings))

    def load(self) -> FilterStore:
        """Read the file (absent is fine: no filters)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return self
        except (OSError, ValueError) as exc:
            raise FilterStoreError(f"{self.path}: cannot read saved filters: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("filters", {}), dict):
            raise FilterStoreError(f"{self.path}: not a Lakewatch filters file")
        try:
            self.filters = {str(k): FilterSpec.from_dict(v)
                            for k, v in data.get("filters", {}).items()}
            self.last = FilterSpec.from_dict(data.get("last") or {})
        except (FilterError, TypeError) as exc:
            raise FilterStoreError(f"{self.path}: invalid saved filter: {exc}") from exc
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "filters": {k: v.to_dict() for k, v in sorted(self.filters.items())},
            "last": self.last.to_dict(),
        }

    def save(self) -> None:
        try:
            atomic_write(self.path, json.dumps(self.to_json(), indent=2))
        except OSError as exc:
            raise FilterStoreError(f"{self.path}: cannot save filters: {exc}") from exc

    def put(self, name: str, spec: FilterSpec) -> None:
        name = name.strip()
        if not name:
            raise FilterStoreError("a saved filter needs a name")
        self.filters[name] = spec

    def remove(self, name: str) -> bool:
        return self.filters.pop(name, None) is not None
