"""Score detections against the generator's ground-truth labels.

Labels are the JSON lines ``pipeline.sources.scenarios.LabelWriter`` writes (``kind``,
``entity_type``, ``entity``, ``start_ms``/``end_ms`` or ISO ``start``/``end``).

Matching rules (documented because every figure depends on them):

- Consecutive windows flagged for the same (entity_type, entity, kind) form one *incident*
  (gaps of up to ``gap_windows`` windows are bridged).
- An incident *matches* a label of the same kind when their times overlap, the label's end
  extended by ``grace_windows`` (a window that straddles the end still shows the anomaly),
  and their entities are related: the same entity; or different entity types (a source's
  error burst also shows on its endpoints and on the service); or either is the service or
  a log pattern. Two different entities of the same type are not related.
- precision = matching incidents / incidents; recall = labels matched / labels;
  delay = windows from the window holding the label's start to the first matching flag.
- A false positive is an incident that overlaps no label of any kind (related entity); a
  misclassified incident lowers its kind's precision but is not counted as a false alarm.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.schemas import ANOMALY_KINDS


@dataclass(frozen=True)
class GroundTruth:
    kind: str
    entity_type: str
    entity: str
    start: pd.Timestamp  # naive UTC
    end: pd.Timestamp


def _ts(value: Any) -> pd.Timestamp:
    if isinstance(value, int | float):
        return pd.Timestamp(int(value), unit="ms")
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def label_from_dict(d: dict[str, Any]) -> GroundTruth:
    start = d["start_ms"] if "start_ms" in d else d["start"]
    end = d["end_ms"] if "end_ms" in d else d["end"]
    return GroundTruth(str(d["kind"]), str(d["entity_type"]), str(d["entity"]),
                       _ts(start), _ts(end))


def read_labels(path: str | Path) -> list[GroundTruth]:
    """Labels from a JSON-lines file; a bad line raises ValueError naming its number."""
    out = []
    with Path(path).open(encoding="utf-8") as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(label_from_dict(json.loads(line)))
            except (KeyError, ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{no}: not a label ({exc})") from None
    return out


def labels_from(objs: Iterable[Any]) -> list[GroundTruth]:
    """From ``pipeline.sources.scenarios.Label`` objects or dicts."""
    out = []
    for o in objs:
        out.append(label_from_dict(o if isinstance(o, dict) else o.to_json()))
    return out


def _related(a_type: str, a: str, b_type: str, b: str) -> bool:
    if "service" in (a_type, b_type) or "pattern" in (a_type, b_type):
        return True
    if a_type != b_type:
        return True
    return a == b


def incidents(anomalies: pd.DataFrame, window: pd.Timedelta,
              gap_windows: int = 1) -> pd.DataFrame:
    """Group flagged windows into incidents (entity_type, entity, kind, start, end, first)."""
    cols = ["entity_type", "entity", "kind", "start", "end"]
    if anomalies.empty:
        return pd.DataFrame(columns=cols)
    a = anomalies.sort_values(["entity_type", "entity", "kind", "window_start"])
    rows = []
    for (et, ent, kind), g in a.groupby(["entity_type", "entity", "kind"], sort=False):
        starts = pd.to_datetime(g["window_start"]).sort_values().tolist()
        cur_s = cur_e = starts[0]
        for ws in starts[1:]:
            if ws - cur_e <= window * (gap_windows + 1):
                cur_e = ws
            else:
                rows.append((et, ent, kind, cur_s, cur_e + window))
                cur_s = cur_e = ws
        rows.append((et, ent, kind, cur_s, cur_e + window))
    return pd.DataFrame(rows, columns=cols)


def evaluate(anomalies: pd.DataFrame, labels: list[GroundTruth], window: str | pd.Timedelta,
             sim_hours: float | None = None, grace_windows: int = 1) -> dict[str, Any]:
    """Precision / recall / F1 / delay overall and per kind (see the module doc)."""
    w = pd.Timedelta(window)
    inc = incidents(anomalies, w)
    a = anomalies.copy()
    if not a.empty:
        a["window_start"] = pd.to_datetime(a["window_start"])

    def overlaps(s, e, lab: GroundTruth) -> bool:
        return s < lab.end + grace_windows * w and e > lab.start

    inc_match = []
    inc_fp = []
    for r in inc.itertuples(index=False):
        same = any(lab.kind == r.kind and overlaps(r.start, r.end, lab)
                   and _related(r.entity_type, r.entity, lab.entity_type, lab.entity)
                   for lab in labels)
        anyk = any(overlaps(r.start, r.end, lab)
                   and _related(r.entity_type, r.entity, lab.entity_type, lab.entity)
                   for lab in labels)
        inc_match.append(same)
        inc_fp.append(not anyk)
    inc = inc.assign(match=inc_match, false_positive=inc_fp)

    label_rows = []
    for lab in labels:
        delay = None
        if not a.empty:
            hit = a[(a["kind"] == lab.kind)
                    & (a["window_start"] + w > lab.start)
                    & (a["window_start"] < lab.end + grace_windows * w)]
            hit = hit[[_related(et, ent, lab.entity_type, lab.entity)
                       for et, ent in zip(hit["entity_type"], hit["entity"], strict=True)]]
            if not hit.empty:
                first = hit["window_start"].min()
                delay = int(max(0, (first - lab.start.floor(w)) // w))
        label_rows.append({"kind": lab.kind, "entity_type": lab.entity_type,
                           "entity": lab.entity, "start": lab.start.isoformat(),
                           "detected": delay is not None, "delay_windows": delay})

    def figures(kind: str | None) -> dict[str, Any]:
        li = [r for r in label_rows if kind is None or r["kind"] == kind]
        ii = inc if kind is None else inc[inc["kind"] == kind]
        tp_labels = sum(r["detected"] for r in li)
        n_inc = len(ii)
        n_match = int(ii["match"].sum()) if n_inc else 0
        precision = n_match / n_inc if n_inc else (1.0 if not li else 0.0)
        recall = tp_labels / len(li) if li else (1.0 if not n_inc else 0.0)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        delays = [r["delay_windows"] for r in li if r["delay_windows"] is not None]
        out = {"labels": len(li), "detected": tp_labels, "incidents": n_inc,
               "matching_incidents": n_match, "precision": round(precision, 4),
               "recall": round(recall, 4), "f1": round(f1, 4),
               "median_delay_windows": statistics.median(delays) if delays else None,
               "false_positives": int(ii["false_positive"].sum()) if n_inc else 0}
        return out

    result = figures(None)
    result["per_kind"] = {k: figures(k) for k in ANOMALY_KINDS
                          if any(r["kind"] == k for r in label_rows)
                          or (not inc.empty and (inc["kind"] == k).any())}
    if sim_hours:
        result["false_positives_per_hour"] = round(result["false_positives"] / sim_hours, 3)
    result["labels_detail"] = label_rows
    result["false_positive_incidents"] = [
        {"entity_type": r.entity_type, "entity": r.entity, "kind": r.kind,
         "start": r.start.isoformat()} for r in inc[inc["false_positive"]].itertuples()]
    return result
