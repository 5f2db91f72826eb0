"""Make the Delta tables under ``settings.delta_dir`` queryable by name, and list them.

Tables are registered as external catalog tables (not temp views) so that time travel
(``VERSION AS OF`` / ``TIMESTAMP AS OF``) works. ``pipeline.delta_tables.register_tables``
(the processor's) runs first when it exists; every other Delta directory is registered here.
A name already registered at another location (another data dir in the same process) is
re-pointed: dropping an external table removes only the catalog entry, never data.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.settings import Settings

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_lock = threading.Lock()
#: table name -> location this process registered it at
_registered: dict[str, str] = {}


@dataclass(frozen=True)
class Column:
    name: str
    type: str


def delta_dirs(settings: Settings) -> dict[str, Path]:
    """Delta tables on disk: every subdirectory of delta_dir holding a ``_delta_log``."""
    root = settings.delta_dir
    if not root.is_dir():
        return {}
    return {
        p.name: p
        for p in sorted(root.iterdir())
        if p.is_dir() and (p / "_delta_log").is_dir() and _NAME_RE.match(p.name)
    }


def _location(spark: Any, name: str) -> str | None:
    try:
        rows = spark.sql(f"DESCRIBE TABLE EXTENDED `{name}`").collect()
    except Exception:  # noqa: BLE001 - not a table (or unreadable): re-register
        return None
    for row in rows:
        if str(row[0]).strip() == "Location":
            return str(row[1]).strip()
    return None


def _same_location(registered: str | None, path: Path) -> bool:
    if not registered:
        return False
    reg = registered.removeprefix("file:").rstrip("/")
    return Path(reg).resolve() == path.resolve()


def register_tables(spark: Any, settings: Settings) -> list[str]:
    """Register every Delta table of this data dir by name; return the registered names."""
    try:
        from pipeline import delta_tables  # the processor's registration, when built
    except ImportError:
        delta_tables = None
    names: list[str] = []
    done: dict[str, str] = {}
    if delta_tables is not None and hasattr(delta_tables, "register_tables"):
        try:
            done = {str(k): str(v) for k, v in (delta_tables.register_tables(spark, settings)
                                                 or {}).items()}
        except Exception:  # noqa: BLE001 - ours below still registers what exists
            log.exception("pipeline.delta_tables.register_tables failed")
    with _lock:
        for name, path in delta_dirs(settings).items():
            if name in done:
                _registered[name] = str(path)
                names.append(name)
                continue
            known = _registered.get(name)
            if known == str(path) and spark.catalog.tableExists(name):
                names.append(name)
                continue
            if spark.catalog.tableExists(name):
                if _same_location(_location(spark, name), path):
                    _registered[name] = str(path)
                    names.append(name)
                    continue
                spark.sql(f"DROP TABLE IF EXISTS `{name}`")
            location = str(path).replace("'", "\\'")
            spark.sql(f"CREATE TABLE `{name}` USING DELTA LOCATION '{location}'")
            _registered[name] = str(path)
            names.append(name)
    return names


def list_tables(spark: Any) -> list[str]:
    """Tables and views of the current namespace (temp views included), sorted."""
    return sorted(t.name for t in spark.catalog.listTables())


def table_columns(spark: Any, name: str) -> list[Column]:
    return [Column(f.name, f.dataType.simpleString()) for f in spark.table(name).schema.fields]


def catalog_snapshot(spark: Any) -> dict[str, list[Column]]:
    """Every table with its columns: the allow-list of the query builder and completion."""
    out: dict[str, list[Column]] = {}
    for name in list_tables(spark):
        try:
            out[name] = table_columns(spark, name)
        except Exception:  # noqa: BLE001 - a broken table must not hide the others
            log.warning("cannot read schema of table %s", name, exc_info=True)
    return out
