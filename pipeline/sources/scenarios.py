"""Anomaly scenarios the generator injects, and the ground-truth labels it writes for them.

A :class:`Scenario` is a plan (kind, offset from the simulated start, duration, optional
entity and magnitude); the generator resolves it into a :class:`Label` (absolute event-time
window, concrete entity) when the scenario starts, and the :class:`LabelWriter` appends that
label as one JSON line. The anomaly detector's evaluation reads labels with :func:`read_labels`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from pipeline.schemas import ANOMALY_KINDS

#: Kinds the generator can inject (every ANOMALY_KINDS entry except "other").
INJECTABLE_KINDS: tuple[str, ...] = tuple(k for k in ANOMALY_KINDS if k != "other")

#: Entity type of each kind's label (traffic kinds are service-wide unless given a source).
ENTITY_TYPES: dict[str, str] = {
    "error_burst": "source",
    "latency_spike": "endpoint",
    "traffic_surge": "service",
    "traffic_drop": "service",
    "scan_404": "source",
    "new_pattern": "pattern",
}
#: Entity of a service-wide traffic scenario.
ALL_SOURCES = "all"

#: Default effect size per kind: error_burst = share of the source's requests that fail;
#: latency_spike = latency factor; surge/drop = traffic factor; scan_404 = scanner requests
#: per second relative to the target source's normal rate; new_pattern = share of events
#: that carry the new message.
DEFAULT_MAGNITUDE: dict[str, float] = {
    "error_burst": 0.5,
    "latency_spike": 8.0,
    "traffic_surge": 4.0,
    "traffic_drop": 0.15,
    "scan_404": 1.0,
    "new_pattern": 0.2,
}


class ScenarioError(ValueError):
    """A scenario schedule is invalid; the message says which entry and why."""


@dataclass(frozen=True)
class Scenario:
    """One planned anomaly; times are seconds of simulated time from the generator's start."""

    kind: str
    start_s: float
    duration_s: float
    entity: str | None = None  # None: chosen from the seed when the scenario starts
    magnitude: float | None = None  # None: DEFAULT_MAGNITUDE[kind]

    def __post_init__(self) -> None:
        if self.kind not in INJECTABLE_KINDS:
            raise ScenarioError(f"unknown scenario kind {self.kind!r}; "
                                f"expected one of {', '.join(INJECTABLE_KINDS)}")
        if not (self.start_s >= 0 and self.duration_s > 0):
            raise ScenarioError(f"{self.kind}: start_s must be >= 0 and duration_s > 0")
        if self.magnitude is not None and not self.magnitude > 0:
            raise ScenarioError(f"{self.kind}: magnitude must be > 0")


@dataclass(frozen=True)
class Label:
    """Ground truth of one injected anomaly, in simulated event time (epoch ms, end exclusive)."""

    kind: str
    entity_type: str
    entity: str
    start_ms: int
    end_ms: int
    magnitude: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"] = _iso(self.start_ms)
        out["end"] = _iso(self.end_ms)
        return out

    def contains(self, ts_ms: int) -> bool:
        return self.start_ms <= ts_ms < self.end_ms


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration_s(value: str | float | int) -> float:
    """``90``, ``"90s"``, ``"5m"``, ``"1.5h"`` -> seconds."""
    if isinstance(value, int | float):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ScenarioError(f"not a duration: {value!r} (use e.g. 90, '90s', '5m', '2h')")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def scenario_from_dict(entry: dict[str, Any], index: int = 0) -> Scenario:
    """``{"kind", "start" | "start_s", "duration" | "duration_s", "entity"?, "magnitude"?}``."""
    if not isinstance(entry, dict):
        raise ScenarioError(f"scenario #{index}: expected an object, got {type(entry).__name__}")
    unknown = set(entry) - {"kind", "start", "start_s", "duration", "duration_s", "entity",
                            "magnitude"}
    if unknown:
        raise ScenarioError(f"scenario #{index}: unknown keys {sorted(unknown)}")
    try:
        start = entry.get("start_s", entry.get("start"))
        duration = entry.get("duration_s", entry.get("duration"))
        if entry.get("kind") is None or start is None or duration is None:
            raise ScenarioError("needs kind, start and duration")
        return Scenario(
            kind=str(entry["kind"]),
            start_s=parse_duration_s(start),
            duration_s=parse_duration_s(duration),
            entity=None if entry.get("entity") is None else str(entry["entity"]),
            magnitude=None if entry.get("magnitude") is None else float(entry["magnitude"]),
        )
    except (ScenarioError, TypeError, ValueError) as exc:
        raise ScenarioError(f"scenario #{index}: {exc}") from None


def load_scenarios(spec: str | Path) -> list[Scenario]:
    """Scenarios from a JSON file / inline JSON: a list of objects, ``{"scenarios": [...]}``,
    or JSON lines with one object each."""
    text = str(spec)
    if not text.lstrip().startswith(("[", "{")):
        path = Path(text).expanduser()
        if not path.is_file():
            raise ScenarioError(f"scenario file {path} does not exist")
        text = path.read_text(encoding="utf-8")
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"scenarios: not JSON or JSON lines: {exc}") from None
    if isinstance(data, dict):
        data = data.get("scenarios", [data]) if "kind" not in data else [data]
    if not isinstance(data, list):
        raise ScenarioError("scenarios: expected a list of scenario objects")
    return [scenario_from_dict(entry, i) for i, entry in enumerate(data)]


def random_scenarios(seed: int, sim_duration_s: float, n: int = 6,
                     kinds: Iterable[str] = INJECTABLE_KINDS,
                     warmup_share: float = 0.2) -> list[Scenario]:
    """``n`` non-overlapping scenarios spread over ``sim_duration_s`` (after a warm-up share
    free of anomalies, so a detector can learn the baseline first), drawn from ``seed``.

    Kinds cycle through ``kinds`` in a seeded order; each scenario lasts 2-8 % of the span
    (at least 30 s, at most its slot); entities are left to the generator (seeded too).
    """
    kinds = tuple(kinds)
    if n <= 0:
        return []
    if not kinds:
        raise ScenarioError("random_scenarios: no kinds")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5CE7])
    first = sim_duration_s * warmup_share
    slot = (sim_duration_s - first) / n
    order = [kinds[i] for i in rng.permutation(len(kinds))]
    out = []
    for i in range(n):
        duration = min(max(30.0, sim_duration_s * rng.uniform(0.02, 0.08)), slot * 0.6)
        start = first + i * slot + rng.uniform(0.1, 0.9) * max(0.0, slot - duration) * 0.9
        out.append(Scenario(order[i % len(order)], round(start, 3), round(duration, 3)))
    return out


class LabelWriter:
    """Appends labels as JSON lines and flushes each one, so a crash loses no ground truth."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("ab")

    def write(self, label: Label) -> None:
        self._fh.write(orjson.dumps(label.to_json()) + b"\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> LabelWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_labels(path: str | Path) -> list[Label]:
    """Every label of a labels file, in the order written."""
    return list(_iter_labels(Path(path)))


def _iter_labels(path: Path) -> Iterator[Label]:
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                d = orjson.loads(line)
                yield Label(d["kind"], d["entity_type"], d["entity"], int(d["start_ms"]),
                            int(d["end_ms"]), float(d["magnitude"]), d.get("extra") or {})
