"""The stateful detector: new metric windows (and their log messages) -> anomaly rows.

Per window and entity it scores the features against the robust baseline, asks the
IsolationForest (when a model is loaded) about the whole deviation vector, and combines the
two verdicts:

- ``baseline``: some feature deviates by at least ``threshold`` robust z in a harmful
  direction, with a meaningful effect size (``classify.MIN_EFFECT``);
- ``iforest``: the forest's score exceeds its calibrated threshold *and* some feature
  deviates by at least ``CORROBORATION`` x threshold (the forest alone can't say what is
  wrong, so an alarm nobody can explain is not raised). Beside the baseline it continues
  or bridges an incident (the entity was flagged within ``IFOREST_REACH`` windows) but opens
  none: on a simulated day every incident it opened alone was a false alarm, every one it
  continued was real;
- ``combined``: both.

Each verdict becomes one row of the ``anomalies`` table (``anomaly_table.TABLE_DDL``)
whose ``anomaly_id`` hashes (window_start, entity_type, entity, kind), so re-running a window
yields the same ids and a MERGE adds nothing; and a provisional finding (``peek`` on a window
still open) and the final one of the same window share their id, which is how the final
verdict confirms or withdraws it. Template findings (``patterns``) either stand
alone (``detector = "pattern"``) or, when a metrics anomaly of the same kind exists in that
window, are listed among its top contributors.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.detection.baseline import RobustBaseline, inverse, min_latency_requests, transform
from pipeline.detection.classify import classify, deviating, strongest
from pipeline.detection.explain import EntityRow, WindowMetrics, explain, top_contributors
from pipeline.detection.features import (
    FEATURES,
    SERVICE_ENTITY,
    metrics_to_features,
    window_freq,
    window_label,
)
from pipeline.detection.iforest import IForestModel, fit_iforest
from pipeline.detection.patterns import PatternDetector, PatternFinding
from pipeline.detection.pooling import LatencyPool

ANOMALY_COLUMNS: tuple[str, ...] = (
    "anomaly_id", "window_start", "window_end", "entity_type", "entity", "kind", "score",
    "severity", "detector", "features", "top_contributors", "explanation", "detected_at",
    "status",
)
#: ``status`` of a finding on a window still open (its counts can grow) / on a closed one
PROVISIONAL = "provisional"
FINAL = "final"
CORROBORATION = 0.6
IFOREST_REACH = 2
_TRAIN_BUFFER = 50_000
_FEATURE_INPUT = ("entity_type", "entity", "requests", "errors", "latency_requests") + FEATURES[1:]


@dataclass
class DetectorConfig:
    """The detector's knobs (``settings.detector`` plus which detectors run)."""

    window: str = "10s"
    threshold: float = 6.0
    baseline_windows: int = 90
    min_history: int = 12
    min_requests: int = 20
    #: most windows a sparse entity's latency is pooled over (``pooling``)
    latency_pool_windows: int = 8
    max_excluded: int = 360
    pattern_min_count: int = 5
    pattern_learn_windows: int = 60
    iforest_trees: int = 100
    min_train_rows: int = 200
    use_baseline: bool = True
    use_iforest: bool = True
    use_patterns: bool = True

    @classmethod
    def from_settings(cls, settings: Any, **kw: Any) -> DetectorConfig:
        d = settings.detector
        return cls(window=window_freq(d.window), threshold=d.threshold,
                   baseline_windows=d.baseline_windows, min_history=d.min_history_windows,
                   min_requests=d.min_requests, max_excluded=d.max_excluded_windows,
                   pattern_min_count=d.pattern_min_count,
                   iforest_trees=d.iforest_trees, min_train_rows=d.iforest_min_train_rows, **kw)


def anomaly_id(window_start: pd.Timestamp, entity_type: str, entity: str, kind: str) -> str:
    """Deterministic id: the same window, entity and kind always give the same id."""
    key = f"{pd.Timestamp(window_start).isoformat()}|{entity_type}|{entity}|{kind}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def severity_of(score: float, threshold: float) -> str:
    r = score / threshold
    if r < 1.5:
        return "low"
    if r < 3:
        return "medium"
    if r < 6:
        return "high"
    return "critical"


def empty_anomalies() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype=object) for c in ANOMALY_COLUMNS})
    for c in ("window_start", "window_end", "detected_at"):
        out[c] = pd.Series(dtype="datetime64[us]")
    out["score"] = pd.Series(dtype=float)
    return out


class Detector:
    """Feed windows in time order with ``process``; it remembers what it has seen."""

    def __init__(self, config: DetectorConfig | None = None,
                 model: IForestModel | None = None) -> None:
        self.config = cfg = config or DetectorConfig()
        self.window = pd.Timedelta(window_freq(cfg.window))
        self.window_size = window_label(cfg.window)
        self.baseline = RobustBaseline(baseline_windows=cfg.baseline_windows,
                                       min_history=cfg.min_history,
                                       min_requests=cfg.min_requests,
                                       max_excluded=cfg.max_excluded)
        self.patterns = PatternDetector(threshold=cfg.threshold, min_count=cfg.pattern_min_count,
                                        baseline_windows=cfg.baseline_windows,
                                        min_history=cfg.min_history, window=window_freq(cfg.window))
        if model is not None and model.extra.get("patterns"):
            self.patterns = PatternDetector.from_snapshot(
                model.extra["patterns"], threshold=cfg.threshold,
                min_count=cfg.pattern_min_count, baseline_windows=cfg.baseline_windows,
                min_history=cfg.min_history, window=window_freq(cfg.window))
        # a pool of ~min_requests is still mostly its biggest window (one slow request in
        # it flagged busy endpoints); twice that needs several windows to agree
        self.latency_pool = LatencyPool(min_latency_requests(cfg.min_requests),
                                        pool_requests=2 * cfg.min_requests,
                                        max_windows=cfg.latency_pool_windows)
        self.model = model
        self.last_window: pd.Timestamp | None = None
        self.windows_seen = 0
        self.train_rows: deque[np.ndarray] = deque(maxlen=_TRAIN_BUFFER)
        #: last window each entity was flagged in (an IsolationForest verdict continues one)
        self._flagged_at: dict[tuple[str, str], pd.Timestamp] = {}
        self.train_from: pd.Timestamp | None = None

    # -- public API ------------------------------------------------------------------
    def process(self, metrics: pd.DataFrame, logs: pd.DataFrame | None = None,
                detected_at: pd.Timestamp | None = None) -> pd.DataFrame:
        """Anomalies of every window in ``metrics`` newer than the last one processed.

        ``metrics``: rows shaped like the ``metrics`` table (other window sizes are ignored).
        ``logs``: optional rows with ``ts`` (datetime or epoch ms), ``message``, ``level``,
        ``status`` for the same period (template mining). The windows are learned from
        (baselines, latency pools, templates, forest training rows): pass final windows only.
        """
        return self._score(metrics, logs, detected_at, learn=True)

    def peek(self, metrics: pd.DataFrame,
             detected_at: pd.Timestamp | None = None) -> pd.DataFrame:
        """Anomalies (status ``provisional``) of windows newer than the last one processed,
        scored against the state as it is, which they leave untouched.

        For windows still open: their counts can grow, so nothing learns from them (a later
        ``process`` of the final window scores it for real). Metrics findings only: mining a
        window's templates is learning, so log-pattern findings wait for the final window.
        """
        return self._score(metrics, None, detected_at, learn=False)

    def _score(self, metrics: pd.DataFrame, logs: pd.DataFrame | None,
               detected_at: pd.Timestamp | None, learn: bool) -> pd.DataFrame:
        if "window_size" in metrics.columns and not metrics.empty:
            metrics = metrics[metrics["window_size"] == self.window_size]
        if metrics.empty:
            return empty_anomalies()
        metrics = metrics.assign(window_start=pd.to_datetime(metrics["window_start"]),
                                 window_end=pd.to_datetime(metrics["window_end"]))
        if self.last_window is not None:
            metrics = metrics[metrics["window_start"] > self.last_window]
            if metrics.empty:
                return empty_anomalies()
        feats = metrics_to_features(metrics)
        fcols = {c: feats[c].to_numpy() for c in _FEATURE_INPUT}
        feat_idx = feats.groupby("window_start", sort=True).indices
        metric_idx = metrics.groupby("window_start", sort=True).indices
        log_cols: dict[str, np.ndarray] = {}
        log_idx: dict[Any, np.ndarray] = {}
        if logs is not None and not logs.empty and self.config.use_patterns:
            ts = logs["ts"]
            if not pd.api.types.is_datetime64_any_dtype(ts):
                ts = pd.to_datetime(ts.astype("int64"), unit="ms")
            log_idx = ts.dt.floor(self.window).groupby(ts.dt.floor(self.window).to_numpy(),
                                                       sort=True).indices
            log_cols = {"message": logs["message"].to_numpy(dtype=object)}
            if "level" in logs:
                log_cols["level"] = logs["level"].to_numpy(dtype=object)
            if "status" in logs:
                log_cols["status"] = logs["status"].fillna(0).to_numpy(dtype="int64")
        stamp = detected_at or pd.Timestamp.now(tz="UTC").tz_localize(None)
        rows: list[dict[str, Any]] = []
        for ws in sorted(feat_idx):
            ws = pd.Timestamp(ws)
            fi = feat_idx[ws]
            li = log_idx.get(ws.to_datetime64())
            if li is None:
                li = log_idx.get(ws)
            win_logs = {k: v[li] for k, v in log_cols.items()} if li is not None else None
            rows.extend(self._window(ws, {c: v[fi] for c, v in fcols.items()},
                                     lambda ws=ws: metrics.iloc[metric_idx[ws]],
                                     win_logs, stamp, learn))
        if not rows:
            return empty_anomalies()
        out = pd.DataFrame(rows, columns=list(ANOMALY_COLUMNS))
        out["status"] = FINAL if learn else PROVISIONAL
        return out

    def train(self, seed: int = 0) -> IForestModel:
        """Fit the IsolationForest on the normal windows seen so far and start using it."""
        rows = np.array(self.train_rows)
        model = fit_iforest(rows, trees=self.config.iforest_trees, seed=seed,
                            trained_from=_iso(self.train_from), trained_to=_iso(self.last_window),
                            min_rows=self.config.min_train_rows)
        model.extra["patterns"] = self.patterns.snapshot()
        model.extra["window"] = self.window_size
        self.model = model
        return model

    def end_learning(self) -> None:
        """Templates seen so far are the baseline; later ones are new patterns."""
        self.patterns.learning = False

    # -- one window ------------------------------------------------------------------
    def _window(self, ws: pd.Timestamp, feats: dict[str, np.ndarray],
                metrics: Any, logs: dict[str, np.ndarray] | None,
                stamp: pd.Timestamp, learn: bool = True) -> list[dict[str, Any]]:
        cfg = self.config
        we = ws + self.window
        if self.train_from is None and learn:
            self.train_from = ws
        rows = self._rows(ws, feats, learn)
        scored = [r for r in rows if r.score is not None]
        if_scores = np.full(len(scored), np.nan)
        if self.model is not None and cfg.use_iforest and scored:
            if_scores = self.model.score(np.array([r.score.z for r in scored]))
        verdicts: dict[tuple[str, str], dict[str, Any]] = {}
        reach = ws - IFOREST_REACH * self.window
        for r, ifs in zip(scored, if_scores, strict=True):
            key = (r.entity_type, r.entity)
            v = self._verdict(r, float(ifs))
            last = self._flagged_at.get(key)
            if v is None or (v["detector"] == "iforest" and cfg.use_baseline
                             and (last is None or last < reach)):
                continue
            verdicts[key] = v
            if learn:
                self._flagged_at[key] = ws
        # During a service-wide incident no entity learns: an endpoint whose share of a
        # traffic drop stayed under the threshold would otherwise take the dip as normal
        # and flag the recovery as a surge.
        service_wide = ("service", SERVICE_ENTITY) in verdicts
        for r in rows if learn else ():
            normal = (r.entity_type, r.entity) not in verdicts and not service_wide
            self.baseline.update((r.entity_type, r.entity), ws, r.x, anomalous=not normal)
            if r.score is not None and normal:  # the forest trains on normal windows only
                self.train_rows.append(r.score.z)
        if learn:
            self.windows_seen += 1
            self.last_window = ws
        if learn and self.windows_seen % 60 == 0:
            self.baseline.forget_idle(ws, self.window * cfg.baseline_windows * 4)
            self._flagged_at = {k: t for k, t in self._flagged_at.items() if t >= reach}

        out: list[dict[str, Any]] = []
        by_key = {(r.entity_type, r.entity): r for r in rows}
        window_metrics = WindowMetrics(metrics()) if verdicts else None
        for key, v in verdicts.items():
            r = by_key[key]
            contributors = top_contributors(v["kind"], r, window_metrics, by_key)
            out.append(self._anomaly(ws, we, r.entity_type, r.entity, v, contributors, stamp))

        if cfg.use_patterns and logs is not None and len(logs["message"]):
            if self.patterns.learning and \
                    self.patterns.windows_processed >= cfg.pattern_learn_windows:
                self.patterns.learning = False
            for f in self.patterns.process(ws, logs):
                host = next((a for a in out if a["kind"] in (f.kind, f.signal)
                             and a["detector"] != "pattern"), None)
                if host is not None:
                    contrib = json.loads(host["top_contributors"])
                    contrib.insert(0, {"field": "template", "value": f.template,
                                       "share": round(f.share, 4)})
                    host["top_contributors"] = json.dumps(contrib)
                    continue
                out.append(self._pattern_anomaly(ws, we, f, stamp))
        return out

    def _rows(self, ws: pd.Timestamp, cols: dict[str, np.ndarray],
              learn: bool = True) -> list[EntityRow]:
        rows: list[EntityRow] = []
        present = set()
        raws: list[tuple[str, str, dict[str, float]]] = []
        names = ("requests", "errors", "latency_requests") + FEATURES[1:]
        values = np.column_stack([cols[c].astype(float) for c in names])
        for i, (et, ent) in enumerate(zip(cols["entity_type"], cols["entity"], strict=True)):
            et, ent = str(et), str(ent)
            present.add((et, ent))
            raws.append((et, ent, dict(zip(names, values[i].tolist(), strict=True))))
        # Entities with a baseline that sent nothing this window: zero traffic.
        for key in self.baseline.entities():
            if key not in present and self.baseline.has_history(key) \
                    and self.baseline.typical_requests(key) >= 1.0:
                raw = {"requests": 0.0, "errors": 0.0, "latency_requests": 0.0,
                       **{f: math.nan for f in FEATURES[1:]}}
                raws.append((key[0], key[1], raw))
        if not raws:
            return rows
        for et, ent, raw in raws:
            (raw["latency_p50"], raw["latency_p95"], raw["latency_p99"],
             raw["latency_requests"]) = self.latency_pool.latency(
                (et, ent), raw["latency_p50"], raw["latency_p95"], raw["latency_p99"],
                raw["latency_requests"], commit=learn)
        if learn:
            self.latency_pool.end_window()
        xs = np.array([transform(np.array([raw[f] for f in FEATURES], dtype=float),
                                 raw["requests"], self.config.min_requests,
                                 raw["latency_requests"]) for _, _, raw in raws])
        req = np.array([raw["requests"] for _, _, raw in raws])
        lat_n = np.array([raw["latency_requests"] for _, _, raw in raws])
        scores = self.baseline.score_many([(et, ent) for et, ent, _ in raws], ws, xs, req,
                                          lat_n)
        for (et, ent, raw), x, sc in zip(raws, xs, scores, strict=True):
            rows.append(EntityRow(et, ent, raw, x, sc, raw["requests"]))
        return rows

    def _verdict(self, r: EntityRow, if_score: float) -> dict[str, Any] | None:
        cfg = self.config
        sc = r.score
        expected = {f: inverse(f, sc.expected[i]) for i, f in enumerate(FEATURES)}
        devs = deviating(sc.z, r.raw, expected, cfg.threshold) if cfg.use_baseline else {}
        if_flag = (self.model is not None and cfg.use_iforest and not math.isnan(if_score)
                   and if_score >= self.model.threshold)
        if devs:
            detector = "combined" if if_flag else "baseline"
        elif if_flag:
            devs = deviating(sc.z, r.raw, expected, cfg.threshold * CORROBORATION)
            if not devs and not cfg.use_baseline:  # IsolationForest-only mode
                devs = dict(sorted(strongest(sc.z).items(), key=lambda kv: -abs(kv[1]))[:1])
            if not devs:
                return None
            detector = "iforest"
        else:
            return None
        kind = classify(devs, r.entity_type)
        zmax = max(abs(z) for z in devs.values())
        if detector == "iforest":
            zmax = max(zmax, cfg.threshold * if_score / self.model.threshold)
        feats = {f: {"expected": _round(expected[f]), "observed": _round(r.raw[f]),
                     "z": _round(z)} for f, z in devs.items()}
        if self.model is not None and not math.isnan(if_score):
            feats["iforest_score"] = {"expected": _round(self.model.threshold),
                                      "observed": _round(if_score), "z": None}
        return {"kind": kind, "score": float(min(zmax, 1e4)), "detector": detector,
                "features": feats, "seasonal": sc.seasonal}

    def _anomaly(self, ws, we, et, ent, v, contributors, stamp) -> dict[str, Any]:
        return {
            "anomaly_id": anomaly_id(ws, et, ent, v["kind"]), "window_start": ws,
            "window_end": we, "entity_type": et, "entity": ent, "kind": v["kind"],
            "score": round(v["score"], 3),
            "severity": severity_of(v["score"], self.config.threshold),
            "detector": v["detector"], "features": json.dumps(v["features"]),
            "top_contributors": json.dumps(contributors),
            "explanation": explain(v["kind"], et, ent, v["features"], contributors,
                                    v["seasonal"]),
            "detected_at": stamp,
        }

    def _pattern_anomaly(self, ws, we, f: PatternFinding, stamp) -> dict[str, Any]:
        thr = self.config.threshold
        if f.new:
            score = thr * (1 + math.log10(max(f.count, 1)))
            feats = {"template_count": {"expected": 0, "observed": f.count, "z": None}}
            expl = (f"new log pattern: {f.count} messages like '{_clip(f.template, 90)}' "
                    "never seen in the baseline")
            contributors = [{"field": "message", "value": e, "share": None} for e in f.examples]
        else:
            score = min(f.z, 1e4)
            feats = {"template_share": {"expected": _round(f.expected_share),
                                        "observed": _round(f.share), "z": _round(f.z)}}
            expl = (f"log pattern '{_clip(f.template, 80)}' jumped to {f.share:.1%} of messages "
                    f"(usually {f.expected_share:.1%})")
            contributors = []
        return {
            "anomaly_id": anomaly_id(ws, "pattern", f.template, f.kind), "window_start": ws,
            "window_end": we, "entity_type": "pattern", "entity": f.template, "kind": f.kind,
            "score": round(score, 3), "severity": severity_of(score, thr),
            "detector": "pattern", "features": json.dumps(feats),
            "top_contributors": json.dumps(contributors), "explanation": expl,
            "detected_at": stamp,
        }


def _round(v: float | None) -> float | None:
    if v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v))):
        return None
    return round(float(v), 4)


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _iso(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else pd.Timestamp(ts).isoformat()
