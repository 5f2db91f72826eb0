"""The dashboard's in-memory copy of the Delta ``metrics`` and ``anomalies`` tables, kept up to
date incrementally, and the aggregations the charts and metric grid draw.

Pure pandas/numpy (no Qt): the dashboard worker calls it on its own thread.

Aggregating a selection that spans several (source, endpoint, level) rows of one window sums
the counts; latency percentiles are request-weighted means of the rows' percentiles (exact when
the selection is one row per window, an approximation otherwise: percentiles don't add).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from desktop_app.dashboard.delta_reader import Change, IncrementalDeltaReader
from pipeline import schemas

#: how far back the dashboard can look (the longest selectable time range)
HORIZON = dt.timedelta(hours=24)
METRIC_COLUMNS = [c.split()[0] for c in schemas.METRICS_DDL.split(", ")]
ANOMALY_COLUMNS = [c.split()[0] for c in schemas.ANOMALIES_DDL.split(", ")]
COUNT_COLUMNS = ["requests", "errors", "bytes", "status_2xx", "status_3xx", "status_4xx",
                 "status_5xx", "status_404"]
LATENCY_COLUMNS = ["latency_p50", "latency_p95", "latency_p99"]
SERIES_KEYS = ["t", "requests", "throughput", "errors", "error_rate", *LATENCY_COLUMNS,
               "status_2xx", "status_3xx", "status_4xx", "status_5xx"]


@dataclass(frozen=True)
class Selection:
    """Which metrics rows a chart shows; None means all."""

    source: str | None = None
    endpoint: str | None = None
    level: str | None = None

    def label(self) -> str:
        parts = [v for v in (self.source, self.endpoint, self.level) if v]
        return " / ".join(parts) or "all"


def _to_ms(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Timestamps (any unit, naive = UTC as Spark writes them) to epoch milliseconds."""
    if pa.types.is_timestamp(column.type):
        # truncate sub-millisecond parts (Spark writes microseconds)
        column = column.cast(pa.timestamp("ms", tz=column.type.tz), safe=False).cast(pa.int64())
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype="int64")


def _frame(table: pa.Table, time_columns: list[str], wanted: list[str]) -> pd.DataFrame:
    data = {}
    for name in wanted:
        if name not in table.column_names:
            data[name] = np.full(table.num_rows, np.nan)
        elif name in time_columns:
            data[name] = _to_ms(table.column(name))
        else:
            data[name] = table.column(name).to_numpy(zero_copy_only=False)
    return pd.DataFrame(data)


class _FileFrames:
    """Rows per data file, so a removed file's rows can be dropped exactly."""

    def __init__(self, time_columns: list[str], columns: list[str]) -> None:
        self.time_columns = time_columns
        self.columns = columns
        self.by_file: dict[str, pd.DataFrame] = {}
        self._frame: pd.DataFrame | None = None

    def apply(self, change: Change) -> bool:
        if change.empty:
            return False
        if change.reset:
            self.by_file.clear()
        for path in change.removed:
            self.by_file.pop(path, None)
        for path, table in change.added.items():
            self.by_file[path] = _frame(table, self.time_columns, self.columns)
        self._frame = None
        return True

    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            frames = [f for f in self.by_file.values() if len(f)]
            self._frame = (pd.concat(frames, ignore_index=True) if frames
                           else _frame(pa.table({}), self.time_columns, self.columns))
        return self._frame


class MetricsStore:
    """Delta ``metrics`` rows of the last 24 h, read incrementally."""

    def __init__(self, table_path: Path) -> None:
        self.reader = IncrementalDeltaReader(table_path, METRIC_COLUMNS, "window_start")
        self._files = _FileFrames(["window_start", "window_end"], METRIC_COLUMNS)

    def refresh(self, now: dt.datetime | None = None) -> bool:
        now = now or dt.datetime.now(dt.UTC)
        return self._files.apply(self.reader.poll(now - HORIZON))

    def frame(self) -> pd.DataFrame:
        return self._files.frame()

    def choices(self) -> dict[str, list[str]]:
        """Distinct sources, endpoints and levels, for the filter boxes."""
        df = self.frame()
        return {c: sorted(str(v) for v in df[c].dropna().unique()) for c in
                ("source", "endpoint", "level")}

    def window_sizes(self) -> list[str]:
        return sorted(str(v) for v in self.frame()["window_size"].dropna().unique())

    def pick_window_size(self, range_s: float) -> str | None:
        """The finest windows up to a 1-hour range, the coarsest beyond, when both exist."""
        sizes = self.window_sizes()
        if not sizes:
            return None
        by_length = sorted(schemas.WINDOW_SIZES.values(), key=lambda size: size.seconds)
        preferred = (by_length[0] if range_s <= 3600 else by_length[-1]).label
        return preferred if preferred in sizes else sizes[0]

    def select(self, selection: Selection, start_ms: int | None = None,
               end_ms: int | None = None, window_size: str | None = None) -> pd.DataFrame:
        df = self.frame()
        mask = np.ones(len(df), dtype=bool)
        if window_size is not None:
            mask &= (df["window_size"] == window_size).to_numpy()
        for column in ("source", "endpoint", "level"):
            value = getattr(selection, column)
            if value is not None:
                mask &= (df[column] == value).to_numpy()
        if start_ms is not None:
            mask &= (df["window_start"] >= start_ms).to_numpy()
        if end_ms is not None:
            mask &= (df["window_start"] < end_ms).to_numpy()
        return df[mask]

    def series(self, selection: Selection, start_ms: int | None = None,
               end_ms: int | None = None, window_size: str | None = None) -> dict[str, np.ndarray]:
        """One point per window: time in seconds (window start), counts, rates, latencies."""
        rows = self.select(selection, start_ms, end_ms, window_size)
        if rows.empty:
            return {k: np.empty(0) for k in SERIES_KEYS}
        rows = rows.assign(**{f"_w_{c}": rows[c] * rows["requests"] for c in LATENCY_COLUMNS})
        grouped = rows.groupby("window_start", sort=True)
        sums = grouped[[*COUNT_COLUMNS, *(f"_w_{c}" for c in LATENCY_COLUMNS)]].sum(min_count=1)
        size = schemas.WINDOW_SIZES.get(window_size or "")
        seconds = size.seconds if size is not None else None
        if seconds is None:
            ends = grouped["window_end"].max()
            seconds_arr = ((ends - sums.index) / 1000.0).to_numpy(dtype=float)
        else:
            seconds_arr = np.full(len(sums), seconds)
        requests = sums["requests"].to_numpy(dtype=float)
        errors = sums["errors"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = {
                "t": sums.index.to_numpy(dtype=float) / 1000.0,
                "requests": requests,
                "throughput": requests / seconds_arr,
                "errors": errors,
                "error_rate": np.where(requests > 0, errors / requests, 0.0),
            }
            for c in LATENCY_COLUMNS:
                out[c] = np.where(requests > 0, sums[f"_w_{c}"].to_numpy(dtype=float) / requests,
                                  np.nan)
        for c in ("status_2xx", "status_3xx", "status_4xx", "status_5xx"):
            out[c] = sums[c].to_numpy(dtype=float)
        return out

    def grid(self, selection: Selection, now_ms: int, span_s: float = 60.0) -> dict[str, float]:
        """Headline numbers over the last ``span_s`` seconds of complete windows."""
        window_size = self.pick_window_size(span_s)
        latest = self.select(selection, window_size=window_size)
        if latest.empty:
            return {"events_per_s": 0.0, "error_rate": 0.0, "latency_p95": float("nan")}
        last_end = int(latest["window_end"].max())
        recent = latest[latest["window_end"] > last_end - span_s * 1000]
        series = self.series(selection, int(recent["window_start"].min()), None, window_size)
        seconds = (last_end - int(recent["window_start"].min())) / 1000.0
        requests = float(series["requests"].sum())
        errors = float(series["errors"].sum())
        weights = series["requests"]
        p95 = (float(np.nansum(series["latency_p95"] * weights) / weights.sum())
               if weights.sum() else float("nan"))
        return {
            "events_per_s": requests / seconds if seconds > 0 else 0.0,
            "error_rate": errors / requests if requests else 0.0,
            "latency_p95": p95,
            "last_window_end_ms": float(last_end),
            "age_s": max(0.0, (now_ms - last_end) / 1000.0),
        }


class AnomalyStore:
    """Delta ``anomalies`` rows, one per anomaly_id (the latest detection wins)."""

    def __init__(self, table_path: Path) -> None:
        self.reader = IncrementalDeltaReader(table_path, ANOMALY_COLUMNS, "window_end")
        self._files = _FileFrames(["window_start", "window_end", "detected_at"], ANOMALY_COLUMNS)
        self._frame: pd.DataFrame | None = None

    def refresh(self, now: dt.datetime | None = None) -> bool:
        now = now or dt.datetime.now(dt.UTC)
        changed = self._files.apply(self.reader.poll(now - HORIZON))
        if changed:
            self._frame = None
        return changed

    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            df = self._files.frame()
            if not df.empty:
                df = (df.sort_values(["anomaly_id", "detected_at"])
                        .drop_duplicates("anomaly_id", keep="last")
                        .sort_values("window_start", ascending=False)
                        .reset_index(drop=True))
            self._frame = df
        return self._frame

    def active(self, now_ms: int, within_s: float = 300.0) -> int:
        """Anomalies whose window ended in the last ``within_s`` seconds."""
        df = self.frame()
        if df.empty:
            return 0
        return int((df["window_end"] >= now_ms - within_s * 1000).sum())


def anomaly_records(df: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts (JSON columns decoded) for the list widget and chart regions."""
    records = []
    for row in df.to_dict("records"):
        for key in ("features", "top_contributors"):
            value = row.get(key)
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    row[key] = json.loads(value)
        records.append(row)
    return records
