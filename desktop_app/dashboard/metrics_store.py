"""The dashboard's in-memory copy of the Delta ``metrics`` and ``anomalies`` tables, kept up to
date incrementally, and the aggregations the charts and metric grid draw.

Pure numpy/pandas (no Qt): the dashboard worker calls it on its own thread.

``metrics`` holds 10 s *partials* (see :mod:`pipeline.transforms.metrics`): one row per
(window, source, endpoint, level) and micro-batch. A chart point is the merge of every partial
of its window (10 s, or 1 m / 5 m / 1 h by flooring ``window_start``) and selection: counts
add, latency histograms merge exactly (:mod:`pipeline.latency_hist`, within 1 % of the exact
percentile). Rows without a histogram (tables written before histograms existed) fall back to
the request-weighted mean of their ``latency_p*``: percentiles don't add, so that is only an
approximation. Only rows of the finest window size present are merged (10 s; tables of the
old layout also hold 1 m rows, which would count twice). A point is *provisional* while its
window ends after the table's watermark, or while no watermark is known.

Rows are kept as flat numpy columns (strings as integer codes, histograms as one flattened
``(b, n)`` pair array in row order), so a refresh over a day of partials is a few vectorised
passes instead of pandas group-bys and Python objects per row.
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
import pyarrow.compute as pc

from desktop_app.dashboard.delta_reader import Change, IncrementalDeltaReader
from pipeline import latency_hist, schemas

#: how far back the dashboard can look (the longest selectable time range)
HORIZON = dt.timedelta(hours=24)
METRIC_COLUMNS = schemas.column_names(schemas.METRIC_PARTIALS_DDL)
ANOMALY_COLUMNS = schemas.column_names(schemas.ANOMALIES_DDL)
COUNT_COLUMNS = ["requests", "errors", "status_2xx", "status_3xx", "status_4xx", "status_5xx"]
LATENCY_COLUMNS = ["latency_p50", "latency_p95", "latency_p99"]
QUANTILE_OF = dict(zip(LATENCY_COLUMNS, latency_hist.QUANTILES, strict=True))
KEY_COLUMNS = ("source", "endpoint", "level")
SERIES_KEYS = ["t", "requests", "throughput", "errors", "error_rate", *LATENCY_COLUMNS,
               "status_2xx", "status_3xx", "status_4xx", "status_5xx", "provisional"]
#: the most points a chart gets: ``pick_window_size`` takes the finest size within it
MAX_POINTS = 400
#: merge histograms through a dense (window x bucket) count array up to this many cells
_DENSE_CELLS = 1 << 22
_CHUNK_PAIRS = 1 << 21
_CODED = ("window_size", *KEY_COLUMNS)
_FLOATS = (*COUNT_COLUMNS, *LATENCY_COLUMNS)
_SIZES = sorted(schemas.WINDOW_SIZES.values(), key=lambda size: size.seconds)


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


def _to_ms_or_nan(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Like :func:`_to_ms`, as floats with NaN for nulls (the watermark may be unknown)."""
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("ms", tz=column.type.tz), safe=False).cast(pa.int64())
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=float)


def _numpy(column: pa.ChunkedArray | pa.Array, fill: float | None = None) -> np.ndarray:
    """Arrow -> numpy, nulls replaced by ``fill`` (None: left to arrow, i.e. NaN)."""
    if fill is not None and column.null_count:
        column = column.fill_null(fill)
    return column.to_numpy(zero_copy_only=False)


def _smallest_int(values: np.ndarray, signed_dtypes: tuple[type, ...]) -> np.ndarray:
    """``values`` in the narrowest of ``signed_dtypes`` that holds them: a day of histogram
    pairs is tens of millions of small numbers."""
    if not values.size:
        return values.astype(signed_dtypes[0])
    low, high = values.min(), values.max()
    for dtype in signed_dtypes:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return values.astype(dtype, copy=False)
    return values


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


class _Partials:
    """All partial rows as concatenated numpy columns, plus their histograms' pairs.

    ``rows`` holds, per row: ``window_start``/``window_end`` (epoch ms), ``watermark`` (ms,
    NaN unknown), codes of the string columns (-1 null), the counts and ``latency_p*`` as
    floats, ``has_hist`` (False: a row written without a histogram) and ``hist_len``. ``b`` and
    ``n`` are every row's histogram pairs, concatenated in row order; ``hist_off`` (derived)
    is where each row's pairs start. Files stay in arrival order so a removed file's rows and
    pairs are one slice each.
    """

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {c: [] for c in _CODED}
        self._codes: dict[str, dict[str, int]] = {c: {} for c in _CODED}
        self.files: list[tuple[str, int, int]] = []  # (path, rows, pairs)
        self.rows, self.b, self.n = self._convert(pa.table({}))
        self.bucket_range: tuple[int, int] | None = None  # (lowest, highest) b held
        self._derived: dict[str, object] = {}

    def apply(self, change: Change) -> bool:
        if change.empty:
            return False
        if change.reset:
            self.files, self.rows = [], self._convert(pa.table({}))[0]
            self.b, self.n = self.b[:0], self.n[:0]
            self.bucket_range = None
        elif change.removed & {path for path, _, _ in self.files}:
            self._drop(change.removed)
            self.bucket_range = (int(self.b.min()), int(self.b.max())) if len(self.b) else None
        converted = [self._convert(table) for table in change.added.values()]
        for _, b, _ in converted:  # kept up to date: a min/max over every pair costs ~20 ms
            if len(b):
                low, high = self.bucket_range or (int(b.min()), int(b.max()))
                self.bucket_range = (min(low, int(b.min())), max(high, int(b.max())))
        if converted:
            self.rows = {k: np.concatenate([self.rows[k], *(c[0][k] for c in converted)])
                         for k in self.rows}
            self.b = np.concatenate([self.b, *(c[1] for c in converted)])
            self.n = np.concatenate([self.n, *(c[2] for c in converted)])
            self.files += [(path, len(c[0]["window_start"]), len(c[1]))
                           for path, c in zip(change.added, converted, strict=True)]
        self._derived.clear()
        return True

    @property
    def size(self) -> int:
        return len(self.rows["window_start"])

    def _drop(self, removed: set[str]) -> None:
        keep = np.array([path not in removed for path, _, _ in self.files], dtype=bool)
        row_keep = np.repeat(keep, [rows for _, rows, _ in self.files])
        pair_keep = np.repeat(keep, [pairs for _, _, pairs in self.files])
        self.rows = {k: v[row_keep] for k, v in self.rows.items()}
        self.b, self.n = self.b[pair_keep], self.n[pair_keep]
        self.files = [f for f, k in zip(self.files, keep, strict=True) if k]

    def lookup(self, column: str, value: str) -> int | None:
        """The code of ``value`` in a string column, None if no row ever had it."""
        return self._codes[column].get(value)

    def code(self, column: str, value: str) -> int:
        codes = self._codes[column]
        if value not in codes:
            codes[value] = len(codes)
            self.names[column].append(value)
        return codes[value]

    def _convert(self, table: pa.Table) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """One file's arrow rows -> (row columns, bucket array, count array)."""
        n_rows, names = table.num_rows, table.column_names
        rows: dict[str, np.ndarray] = {}
        for name in ("window_start", "window_end"):
            rows[name] = (_to_ms(table.column(name)) if name in names
                          else np.zeros(n_rows, np.int64))
        rows["watermark"] = (_to_ms_or_nan(table.column("watermark")) if "watermark" in names
                             else np.full(n_rows, np.nan))
        for name in _CODED:
            rows[name] = np.full(n_rows, -1, np.int32)
            if name in names and n_rows:
                encoded = pc.dictionary_encode(table.column(name).combine_chunks())
                mapping = np.array([self.code(name, str(v)) for v in
                                    encoded.dictionary.to_pylist()] or [-1], np.int32)
                indices = _numpy(encoded.indices, -1)
                rows[name] = np.where(indices >= 0, mapping[np.maximum(indices, 0)], -1)
        for name in _FLOATS:
            if name not in names:
                rows[name] = np.full(n_rows, np.nan if name in LATENCY_COLUMNS else 0.0)
                continue
            fill = 0 if name in COUNT_COLUMNS else None
            rows[name] = np.asarray(_numpy(table.column(name), fill), dtype=float)
        if "latency_hist" in names:
            hist = table.column("latency_hist")
            rows["has_hist"] = np.asarray(hist.is_valid().to_numpy(zero_copy_only=False), bool)
            rows["hist_len"] = np.asarray(_numpy(pc.list_value_length(hist), 0), np.int64)
            flat = pc.list_flatten(hist)  # null lists skipped: pairs stay aligned with hist_len
            b = _numpy(pc.struct_field(flat, "b"), 0)
            n = _numpy(pc.struct_field(flat, "n"), 0)
        else:
            rows["has_hist"] = np.zeros(n_rows, bool)
            rows["hist_len"] = np.zeros(n_rows, np.int64)
            b = n = np.empty(0, np.int64)
        return (rows, _smallest_int(np.asarray(b), (np.int16, np.int32, np.int64)),
                _smallest_int(np.asarray(n), (np.uint8, np.uint16, np.uint32, np.int64)))

    def derived(self, name: str):
        """Values computed once per change of the rows."""
        if name not in self._derived:
            rows = self.rows
            if name == "hist_off":
                value = np.cumsum(rows["hist_len"]) - rows["hist_len"]
            elif name == "watermark":
                marks = rows["watermark"]
                value = float(np.nanmax(marks)) if np.isfinite(marks).any() else None
            elif name == "base":  # the finest window size present: merges start from it
                present = {self.names["window_size"][c] for c in
                           np.flatnonzero(np.bincount(rows["window_size"] + 1)[1:])}
                value = next((s for s in _SIZES if s.label in present), None)
            elif name == "base_mask":
                base = self.derived("base")
                value = (rows["window_size"] == self.lookup("window_size", base.label)
                         if base is not None else np.ones(self.size, bool))
            elif name == "present":
                value = {c: [self.names[c][i] for i in
                             np.flatnonzero(np.bincount(rows[c] + 1)[1:])] for c in KEY_COLUMNS}
            else:
                raise KeyError(name)
            self._derived[name] = value
        return self._derived[name]


class MetricsStore:
    """Delta ``metrics`` partials of the last 24 h, read incrementally, merged on demand."""

    def __init__(self, table_path: Path) -> None:
        self.reader = IncrementalDeltaReader(table_path, METRIC_COLUMNS, "window_start")
        self.partials = _Partials()

    def refresh(self, now: dt.datetime | None = None) -> bool:
        now = now or dt.datetime.now(dt.UTC)
        return self.partials.apply(self.reader.poll(now - HORIZON))

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (strings decoded, histograms left out): for inspection and
        tests; the charts work on the numpy columns."""
        p = self.partials
        data = dict(p.rows)
        for name in _CODED:
            labels = np.array([*p.names[name], None], dtype=object)
            data[name] = labels[p.rows[name]]  # code -1 -> the trailing None
        return pd.DataFrame(data)

    @property
    def watermark_ms(self) -> float | None:
        """The table's watermark (newest of all rows'), None while unknown."""
        return self.partials.derived("watermark")

    def choices(self) -> dict[str, list[str]]:
        """Distinct sources, endpoints and levels, for the filter boxes."""
        return {c: sorted(v) for c, v in self.partials.derived("present").items()}

    def pick_window_size(self, range_s: float) -> str:
        """The finest window size that draws ``range_s`` in at most ``MAX_POINTS`` points (the
        range box's 1 h gets 10 s, 6 h 1 m, 24 h 5 m), never finer than the table's rows: more
        points than pixels would only cost merging time."""
        base = self.partials.derived("base")
        for size in _SIZES:
            if range_s / size.seconds <= MAX_POINTS and (base is None
                                                         or size.seconds >= base.seconds):
                return size.label
        return _SIZES[-1].label

    def _size(self, window_size: str | None) -> schemas.WindowSize:
        base = self.partials.derived("base") or schemas.WINDOW_SIZES[schemas.PARTIAL_WINDOW]
        size = schemas.WINDOW_SIZES.get(window_size or "", base)
        return size if size.seconds >= base.seconds else base

    def _rows(self, selection: Selection) -> np.ndarray:
        """Indices of the base-size rows in ``selection``."""
        p = self.partials
        mask = p.derived("base_mask")
        for column in KEY_COLUMNS:
            value = getattr(selection, column)
            if value is not None:
                code = p.lookup(column, value)
                if code is None:
                    return np.empty(0, np.int64)
                mask = mask & (p.rows[column] == code)
        return np.flatnonzero(mask)

    def series(self, selection: Selection, start_ms: int | None = None,
               end_ms: int | None = None, window_size: str | None = None) -> dict[str, np.ndarray]:
        """One point per ``window_size`` window overlapping ``[start_ms, end_ms)``: its start in
        seconds, counts, rates, merged latency percentiles and ``provisional``."""
        size = self._size(window_size)
        step = int(size.seconds * 1000)
        rows = self._rows(selection)
        w = self.partials.rows["window_start"][rows] // step * step  # epoch-aligned
        keep = np.ones(len(rows), bool)
        if start_ms is not None:
            keep &= w + step > start_ms
        if end_ms is not None:
            keep &= w < end_ms
        rows, w = rows[keep], w[keep]
        if not len(rows):
            return {k: np.empty(0, bool if k == "provisional" else float) for k in SERIES_KEYS}
        w0 = int(w.min())
        n_dense = int(w.max() - w0) // step + 1
        if n_dense <= 4 * len(rows) + 1024:
            groups = (w - w0) // step
            starts = w0 + step * np.arange(n_dense, dtype=np.int64)
        else:  # a few rows spread far apart: index the windows that exist
            starts, groups = np.unique(w, return_inverse=True)
        n_groups = len(starts)
        sums = {c: np.bincount(groups, weights=self.partials.rows[c][rows], minlength=n_groups)
                for c in COUNT_COLUMNS}
        latencies = self._latencies(rows, groups, n_groups, LATENCY_COLUMNS)
        present = np.bincount(groups, minlength=n_groups) > 0
        requests, errors = sums["requests"][present], sums["errors"][present]
        starts = starts[present]
        mark = self.watermark_ms
        with np.errstate(invalid="ignore", divide="ignore"):
            out = {
                "t": starts / 1000.0,
                "requests": requests,
                "throughput": requests / size.seconds,
                "errors": errors,
                "error_rate": np.where(requests > 0, errors / requests, 0.0),
            }
        for j, c in enumerate(LATENCY_COLUMNS):
            out[c] = latencies[present, j]
        for c in ("status_2xx", "status_3xx", "status_4xx", "status_5xx"):
            out[c] = sums[c][present]
        out["provisional"] = (np.ones(len(starts), bool) if mark is None
                              else starts + step > mark)
        return out

    def _latencies(self, rows: np.ndarray, groups: np.ndarray, n_groups: int,
                   columns: list[str]) -> np.ndarray:
        """``(n_groups, len(columns))`` percentiles: merged histograms of the rows that have
        one; where a group has none, the request-weighted mean of its rows' columns."""
        p = self.partials
        has = p.rows["has_hist"][rows]
        out = self._merged(rows[has], groups[has], n_groups, [QUANTILE_OF[c] for c in columns])
        if has.all():
            return out
        legacy, legacy_groups = rows[~has], groups[~has]
        weights = p.rows["requests"][legacy]
        for j, c in enumerate(columns):
            values = p.rows[c][legacy]
            ok = np.isfinite(values)
            total = np.bincount(legacy_groups[ok], weights=weights[ok], minlength=n_groups)
            weighted = np.bincount(legacy_groups[ok], weights=values[ok] * weights[ok],
                                   minlength=n_groups)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(total > 0, weighted / total, np.nan)
            out[:, j] = np.where(np.isnan(out[:, j]), mean, out[:, j])
        return out

    def _merged(self, rows: np.ndarray, groups: np.ndarray, n_groups: int,
                qs: list[float]) -> np.ndarray:
        """Percentiles ``qs`` of each group's merged histogram (NaN: no latency).

        Equal (group, bucket) pairs are summed first into a dense count array, so
        ``grouped_quantiles`` sorts only the distinct ones (a few hundred per window), not every
        partial's pairs; rows go in chunks of about ``_CHUNK_PAIRS`` pairs to bound memory.
        """
        p = self.partials
        low, high = p.bucket_range or (0, 0)
        width = high - low + 1
        dense = np.zeros(n_groups * width) if n_groups * width <= _DENSE_CELLS else None
        parts = []
        lens_all = p.rows["hist_len"][rows]
        bounds = np.searchsorted(np.cumsum(lens_all), np.arange(
            _CHUNK_PAIRS, int(lens_all.sum()), _CHUNK_PAIRS), side="right")
        for chunk in np.split(np.arange(len(rows)), bounds):
            lens = lens_all[chunk]
            total = int(lens.sum())
            if not total:
                continue
            first, last = rows[chunk[0]], rows[chunk[-1]]
            start = int(p.derived("hist_off")[first])
            if last - first == len(chunk) - 1:  # consecutive rows: their pairs are one slice
                b, n = p.b[start:start + total], p.n[start:start + total]
            else:  # each row's pairs are the slice hist_off[r]:hist_off[r] + len: gather
                index = (np.repeat(p.derived("hist_off")[rows[chunk]] - (np.cumsum(lens) - lens),
                                   lens) + np.arange(total))
                b, n = p.b[index], p.n[index]
            if dense is not None:
                key = np.repeat(groups[chunk] * width - low, lens)
                key += b
                dense += np.bincount(key, weights=n, minlength=len(dense))
            else:
                parts.append((np.repeat(groups[chunk], lens), b.astype(np.int64),
                              n.astype(np.int64)))
        if dense is not None:
            cells = np.flatnonzero(dense)
            return latency_hist.grouped_quantiles(cells // width, cells % width + low,
                                                  dense[cells].astype(np.int64), n_groups, qs)
        if not parts:
            return np.full((n_groups, len(qs)), np.nan)
        return latency_hist.grouped_quantiles(*(np.concatenate(a) for a in zip(*parts,
                                                                                strict=True)),
                                              n_groups, qs)

    def grid(self, selection: Selection, now_ms: int, span_s: float = 60.0) -> dict[str, float]:
        """Headline numbers over the last ``span_s`` seconds of windows that have ended (the
        newest, still filling on the clock, would read low); p95 from the merged histograms."""
        rows = self._rows(selection)
        if not len(rows):
            return {"events_per_s": 0.0, "error_rate": 0.0, "latency_p95": float("nan")}
        data = self.partials.rows
        ends = data["window_end"][rows]
        ended = ends <= now_ms
        if ended.any():
            rows, ends = rows[ended], ends[ended]
        last_end = int(ends.max())
        recent = rows[ends > last_end - span_s * 1000]
        seconds = (last_end - int(data["window_start"][recent].min())) / 1000.0
        requests = float(data["requests"][recent].sum())
        errors = float(data["errors"][recent].sum())
        p95 = self._latencies(recent, np.zeros(len(recent), np.int64), 1, ["latency_p95"])
        return {
            "events_per_s": requests / seconds if seconds > 0 else 0.0,
            "error_rate": errors / requests if requests else 0.0,
            "latency_p95": float(p95[0, 0]),
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
