"""Write edited settings back to the TOML config file (``tomli_w`` is not a dependency, and the
config is flat sections of scalars, so a small writer suffices).

Only the keys the user edited change; other keys in the file are kept (comments are not).
Secrets are never written: they belong in the environment.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.files import atomic_write

SECRET_KEYS = {"sasl_password", "ssl_key_password"}


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"cannot write {value!r} to TOML")
        return repr(value)
    if isinstance(value, str | os.PathLike):
        return json.dumps(os.fspath(value), ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _key(key: str) -> str:
    if key and all(c.isalnum() or c in "_-" for c in key):
        return key
    return json.dumps(key, ensure_ascii=False)


def dumps(data: Mapping[str, Any]) -> str:
    """TOML text for top-level scalars followed by one table per section."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in data.items()
             if not isinstance(v, Mapping) and v is not None]
    for section, values in data.items():
        if not isinstance(values, Mapping):
            continue
        if lines:
            lines.append("")
        lines.append(f"[{_key(section)}]")
        for key, value in values.items():
            if value is not None:
                lines.append(f"{_key(key)} = {_value(value)}")
    return "\n".join(lines) + "\n"


def update_config_file(path: Path, changes: Mapping[str, Mapping[str, Any]]) -> None:
    """Set ``section.key`` values in the file (None removes the key); atomic replace."""
    data: dict[str, Any] = {}
    if path.is_file():
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    for section, values in changes.items():
        table = data.setdefault(section, {})
        for key, value in values.items():
            if key in SECRET_KEYS:
                continue
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
        if not table:
            data.pop(section)
    text = dumps(data)
    tomllib.loads(text)  # never write a file we could not read back
    atomic_write(path, text)
