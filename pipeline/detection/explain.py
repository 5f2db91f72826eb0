"""Why an anomaly row was raised: its top contributors and its one-line explanation.

:func:`top_contributors` lists the field values that carry the anomaly within the entity's
window (the sources, endpoints, levels and status classes with the largest share of the
kind's measure); :func:`explain` turns the deviating features and the top contributor into
the ``explanation`` text of the ``anomalies`` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.detection.baseline import Score, inverse
from pipeline.detection.features import SERVICE_ENTITY


@dataclass
class EntityRow:
    """One entity's values in one window, as the detector scored them."""

    entity_type: str
    entity: str
    raw: dict[str, float]
    x: np.ndarray
    score: Score | None
    requests: float


_MEASURE = {"error_burst": "errors", "scan_404": "status_404", "traffic_surge": "requests",
            "latency_spike": "latency", "traffic_drop": "requests", "other": "requests"}
_CHILD_DIMS = {"service": ("source", "endpoint"), "source": ("endpoint",),
               "endpoint": ("source",)}


class WindowMetrics:
    """One window's metrics rows as arrays, factorized once for the contributor sums."""

    def __init__(self, metrics: pd.DataFrame) -> None:
        self.codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for dim in ("source", "endpoint", "level"):
            codes, uniq = pd.factorize(metrics[dim].astype(str))
            self.codes[dim] = (codes, np.asarray(uniq, dtype=object))
        req = metrics["requests"].fillna(0).to_numpy(dtype=float)
        self.values = {
            "requests": req,
            "errors": metrics["errors"].fillna(0).to_numpy(dtype=float),
            "status_404": metrics["status_404"].fillna(0).to_numpy(dtype=float),
            "latency": np.nan_to_num(metrics["latency_p95"].to_numpy(dtype=float)) * req,
            **{f"status_{c}": metrics[f"status_{c}"].fillna(0).to_numpy(dtype=float)
               for c in ("4xx", "5xx", "404")},
        }

    def mask(self, entity_type: str, entity: str) -> np.ndarray | None:
        if entity_type == "service":
            return None
        codes, uniq = self.codes[entity_type]
        hit = np.flatnonzero(uniq == entity)
        return codes == hit[0] if len(hit) else np.zeros(len(codes), dtype=bool)

    def sums(self, measure: str, dim: str, mask: np.ndarray | None) -> dict[str, float]:
        codes, uniq = self.codes[dim]
        vals = self.values[measure]
        if mask is not None:
            codes, vals = codes[mask], vals[mask]
        totals = np.bincount(codes, weights=vals, minlength=len(uniq))
        return {str(uniq[i]): float(v) for i, v in enumerate(totals) if v > 0}

    def total(self, measure: str, mask: np.ndarray | None) -> float:
        vals = self.values[measure]
        return float(vals.sum() if mask is None else vals[mask].sum())


def top_contributors(kind: str, r: EntityRow, wm: WindowMetrics,
                  rows: dict[tuple[str, str], EntityRow]) -> list[dict[str, Any]]:
    """Field values that carry the anomaly (like Elastic's log-rate analysis), top 3 each.

    Shares are of the kind's measure within the anomalous entity this window (errors for an
    error burst, 404s for a scan, request-weighted p95 for latency, requests for a surge);
    for a drop, of the missing requests, from the child entities' own baselines.
    """
    out: list[dict[str, Any]] = []
    if kind == "traffic_drop":
        for dim in _CHILD_DIMS[r.entity_type]:
            deficits = {}
            for (et, ent), cr in rows.items():
                if et == dim and cr.score is not None:
                    exp = inverse("requests", cr.score.expected[0])
                    if exp > cr.requests:
                        deficits[ent] = exp - cr.requests
            out.extend(_top(dim, deficits))
        return out
    mask = wm.mask(r.entity_type, r.entity)
    if mask is not None and not mask.any():
        return out
    measure = _MEASURE.get(kind, "requests")
    dims = _CHILD_DIMS[r.entity_type] + (("level",) if kind == "error_burst" else ())
    for dim in dims:
        out.extend(_top(dim, wm.sums(measure, dim, mask)))
    req = wm.total("requests", mask)
    if req > 0 and kind in ("error_burst", "scan_404", "other"):
        if kind == "error_burst":
            top = ("5xx", wm.total("status_5xx", mask))
        elif kind == "scan_404":
            top = ("404", wm.total("status_404", mask))
        else:
            classes = {c: wm.total(f"status_{c}", mask) for c in ("404", "5xx", "4xx")}
            top = max(classes.items(), key=lambda kv: kv[1])
        out.append({"field": "status", "value": top[0], "share": round(top[1] / req, 4)})
    return out


def _top(field: str, values: dict[str, float], n: int = 3) -> list[dict[str, Any]]:
    total = sum(v for v in values.values() if v > 0)
    if total <= 0:
        return []
    best = sorted(((k, v) for k, v in values.items() if v > 0), key=lambda kv: -kv[1])[:n]
    return [{"field": field, "value": k, "share": round(v / total, 4)} for k, v in best]


_FEATURE_TEXT = {
    "requests": ("requests", "{:.0f}"), "error_rate": ("error rate", "{:.1%}"),
    "latency_p50": ("median latency", "{:.0f} ms"),
    "latency_p95": ("p95 latency", "{:.0f} ms"), "latency_p99": ("p99 latency", "{:.0f} ms"),
    "share_4xx": ("4xx share", "{:.1%}"), "share_404": ("404 share", "{:.1%}"),
}
_KIND_TEXT = {"error_burst": "error burst", "latency_spike": "latency spike",
              "traffic_surge": "traffic surge", "traffic_drop": "traffic drop",
              "scan_404": "404 scan", "other": "unusual behaviour"}


def explain(kind: str, et: str, ent: str, feats: dict[str, Any],
             contributors: list[dict[str, Any]], seasonal: bool) -> str:
    where = "the whole service" if et == "service" and ent == SERVICE_ENTITY else f"{et} {ent}"
    parts = []
    ranked = sorted(((f, d) for f, d in feats.items() if f in _FEATURE_TEXT),
                    key=lambda fd: -abs(fd[1]["z"] or 0))
    for f, d in ranked[:2]:
        name, fmt = _FEATURE_TEXT[f]
        parts.append(f"{name} {fmt.format(d['observed'])} vs {fmt.format(d['expected'])} "
                     f"expected (z={d['z']:.1f})")
    text = f"{_KIND_TEXT.get(kind, kind)} on {where}: " + "; ".join(parts)
    if seasonal:
        text += " [same-hour baseline]"
    top = next((c for c in contributors if c["field"] != "status"), None)
    if top is not None:
        text += f"; mostly {top['field']} {top['value']} ({top['share']:.0%})"
    return text
