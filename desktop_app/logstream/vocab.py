"""Append-only string dictionaries for the categorical columns (level, source, ...).

The Kafka worker encodes strings to small integer codes; the GUI decodes them and evaluates
string predicates once per distinct value instead of once per row. Codes never change, so a
reader may use any code it has seen while the writer keeps appending. A dictionary is capped:
past ``max_size`` distinct values new strings get ``OVERFLOW`` and readers fall back to the
raw event for those rows, so a high-cardinality field cannot grow memory without bound.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

MISSING = -1
OVERFLOW = -2


class Vocab:
    """One dictionary: ``code(str) -> int``, ``values[code] -> str``."""

    def __init__(self, max_size: int = 100_000) -> None:
        self.max_size = max_size
        self.values: list[str] = []
        self._codes: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.values)

    def code(self, value: str | None) -> int:
        if value is None:
            return MISSING
        code = self._codes.get(value)
        if code is not None:
            return code
        with self._lock:
            code = self._codes.get(value)
            if code is None:
                if len(self.values) >= self.max_size:
                    return OVERFLOW
                code = len(self.values)
                self.values.append(value)
                self._codes[value] = code
        return code

    def lookup(self, value: str) -> int:
        """The code of ``value`` or MISSING if never seen (does not add it)."""
        return self._codes.get(value, MISSING)

    def decode(self, code: int) -> str | None:
        return self.values[code] if code >= 0 else None

    def lut(self, predicate: Callable[[str], bool]) -> np.ndarray:
        """Boolean table indexed by code; one extra trailing False so code -1 maps to False."""
        n = len(self.values)
        table = np.zeros(n + 2, dtype=bool)
        for i in range(n):
            if predicate(self.values[i]):
                table[i] = True
        return table


class Vocabs:
    """The dictionaries of one live stream."""

    def __init__(self, max_size: int = 100_000) -> None:
        self.level = Vocab(1000)
        self.source = Vocab(max_size)
        self.method = Vocab(1000)
        self.endpoint = Vocab(max_size)
        self.fmt = Vocab(1000)
