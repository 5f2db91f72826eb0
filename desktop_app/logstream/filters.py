"""Filter spec of the live view and its vectorized evaluation over the ring (no Qt).

Categorical predicates (level, source, endpoint) are evaluated once per distinct value on the
dictionary and applied with one lookup-table index per row; status and time are numpy range
masks; free text / regex runs in C++ (Arrow's RE2 kernel, one call per core) over zero-copy
views of the raw bytes, only on rows the cheaper predicates kept. The result is the array of
matching seqs.
"""

from __future__ import annotations

import fnmatch
import os
import re
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from itertools import groupby, pairwise
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from desktop_app.logstream.casefold import ascii_folded
from desktop_app.logstream.ring import LogRing
from desktop_app.logstream.vocab import OVERFLOW, Vocab

_RE2_SPECIAL = set("\\.+*?()|[]{}^$")
#: Text search splits work across this many threads above _PARALLEL_MIN_ROWS rows.
_SEARCH_THREADS = max(1, min(4, os.cpu_count() or 1))
_PARALLEL_MIN_ROWS = 50_000
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _search_pool() -> ThreadPoolExecutor:
    """The search threads, started on the first large search and kept for the next ones."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_SEARCH_THREADS, thread_name_prefix="lakewatch-search")
        return _pool


class FilterError(ValueError):
    """The filter cannot be evaluated (e.g. an invalid regular expression)."""


def _strs(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [p.strip() for p in value.split(",")]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise FilterError(f"{name}: expected a list of strings, got {value!r}")
    return tuple(v for v in value if v)


def _opt_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FilterError(f"{name}: expected an integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class FilterSpec:
    """What the live view shows. Empty tuples / None mean "no constraint".

    ``sources`` and ``endpoints`` are exact values or shell globs (``/api/*``); ``text`` is
    a case-insensitive substring unless ``regex`` (RE2 syntax) or ``case_sensitive``; it is
    matched against the whole event as received (the JSON text or the raw line).
    """

    levels: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    status_min: int | None = None
    status_max: int | None = None
    text: str = ""
    regex: bool = False
    case_sensitive: bool = False
    start_ms: int | None = None
    end_ms: int | None = None
    _fields: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(x.upper() for x in _strs(self.levels, "levels")))
        object.__setattr__(self, "sources", _strs(self.sources, "sources"))
        object.__setattr__(self, "endpoints", _strs(self.endpoints, "endpoints"))
        for name in ("status_min", "status_max", "start_ms", "end_ms"):
            object.__setattr__(self, name, _opt_int(getattr(self, name), name))
        if not isinstance(self.text, str):
            raise FilterError(f"text: expected a string, got {self.text!r}")

    @property
    def is_empty(self) -> bool:
        return self == FilterSpec()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_fields", None)
        for k in ("levels", "sources", "endpoints"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FilterSpec:
        if not isinstance(data, dict):
            raise FilterError(f"a filter must be an object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)} - {"_fields"}
        unknown = set(data) - known
        if unknown:
            raise FilterError(f"unknown filter keys: {sorted(unknown)}")
        return cls(**data)

    def text_pattern(self) -> str | None:
        """The RE2 pattern of the text predicate, or None."""
        if not self.text:
            return None
        if self.regex:
            return self.text
        return "".join("\\" + ch if ch in _RE2_SPECIAL else ch for ch in self.text)

    def validate(self) -> None:
        """Raise FilterError if the regex does not compile (RE2)."""
        pattern = self.text_pattern()
        if pattern is None:
            return
        try:
            pc.match_substring_regex(pa.array([""]), pattern,
                                     ignore_case=not self.case_sensitive)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise FilterError(f"invalid regular expression {self.text!r}: {exc}") from None


def _matcher(patterns: Iterable[str]):
    exact = {p for p in patterns if not any(ch in p for ch in "*?[")}
    globs = [re.compile(fnmatch.translate(p)) for p in patterns if p not in exact]

    def match(value: str) -> bool:
        return value in exact or any(g.match(value) for g in globs)

    return match


def _categorical(codes: np.ndarray, vocab: Vocab, patterns: tuple[str, ...],
                 ring: LogRing, seqs: np.ndarray, field_name: str) -> np.ndarray:
    match = _matcher(patterns)
    mask = vocab.lut(match)[codes]
    for i in np.flatnonzero(codes == OVERFLOW):  # values past the dictionary cap
        val = ring.event(int(seqs[i])).get(field_name)
        mask[i] = val is not None and match(str(val))
    return mask


def evaluate(spec: FilterSpec, ring: LogRing, start: int | None = None,
             stop: int | None = None) -> np.ndarray:
    """Seqs in ``[start, stop)`` (default: the whole ring) that match ``spec``, ascending.

    Safe to run on a worker thread while the GUI appends (see ``ring``): the caller drops
    seqs below ``ring.head`` from the result.
    """
    start = ring.head if start is None else max(start, ring.head)
    stop = ring.tail if stop is None else min(stop, ring.tail)
    n = stop - start
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    seqs = np.arange(start, stop, dtype=np.int64)
    if spec.is_empty:
        return seqs
    v = ring.vocabs
    mask: np.ndarray | None = None  # None: every row so far (a text-only filter skips it)

    def narrow(keep: np.ndarray) -> None:
        nonlocal mask
        mask = keep if mask is None else mask & keep

    if spec.start_ms is not None or spec.end_ms is not None:
        ts = ring.logical("ts", start, stop)
        if spec.start_ms is not None:
            narrow(ts >= spec.start_ms)
        if spec.end_ms is not None:
            narrow(ts <= spec.end_ms)
    if spec.status_min is not None or spec.status_max is not None:
        st = ring.logical("status", start, stop)
        narrow(st >= 0)
        if spec.status_min is not None:
            narrow(st >= spec.status_min)
        if spec.status_max is not None:
            narrow(st <= spec.status_max)
    if spec.levels:
        wanted = set(spec.levels)
        narrow(v.level.lut(lambda s: s in wanted)[ring.logical("level", start, stop)])
    for attr, patterns in (("source", spec.sources), ("endpoint", spec.endpoints)):
        if patterns:
            codes = ring.logical(attr, start, stop)
            narrow(_categorical(codes, getattr(v, attr), patterns, ring, seqs, attr))
    kept = seqs if mask is None else seqs[mask]
    pattern = spec.text_pattern()
    if pattern is not None and len(kept):
        kept = kept[text_mask(ring, kept, pattern, ignore_case=not spec.case_sensitive)]
    return kept


def text_mask(ring: LogRing, seqs: np.ndarray, pattern: str, ignore_case: bool) -> np.ndarray:
    """RE2 search of ``pattern`` in the raw bytes of each seq (ascending seqs)."""
    out = np.zeros(len(seqs), dtype=bool)
    if not len(seqs):
        return out
    lo, hi = int(seqs[0]), int(seqs[-1]) + 1
    if hi - lo == len(seqs):  # a range (the whole buffer): copied slices, no gather
        addrs, lens = ring.logical("addr", lo, hi).copy(), ring.logical("lengths", lo, hi).copy()
    else:
        addrs, lens = ring.take("addr", seqs), ring.take("lengths", seqs)
    bases, chunks = ring.bytes.snapshot()
    runs = _chunk_runs(addrs, np.asarray(bases, dtype=np.int64))

    arrays, steps, folds = [], [], []
    for a, b, ci in runs:
        if ci < 0:  # evicted while we read; the caller drops these seqs
            arrays.append(pa.array([""] * (b - a), pa.string()))
            steps.append(1)
            folds.append(False)
            continue
        chunk = chunks[ci]
        folds.append(chunk.folds)
        rel = addrs[a:b] - chunk.base
        # a row overwritten while we read may pair an old address with a new length
        ends = np.minimum(rel + lens[a:b], len(chunk.data))
        if np.array_equal(rel[1:], ends[:-1]):
            # Adjacent rows (the whole buffer, unfiltered): one offset each, no gaps.
            offsets = np.append(rel, ends[-1]).astype(np.int32)
            step, n = 1, b - a
        else:
            # Rows need not be adjacent (other rows may sit between them): one offset pair
            # each; the odd elements are the gaps between them and are ignored (a third
            # slower: twice the kernel calls).
            offsets = np.empty(2 * (b - a), dtype=np.int32)
            offsets[0::2] = rel
            offsets[1::2] = ends
            step, n = 2, 2 * (b - a) - 1
        arrays.append(pa.Array.from_buffers(
            pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(chunk.data)]))
        steps.append(step)
    flat = _search(arrays, pattern, ignore_case, folds)
    pos = 0
    for (a, b, _), array, step in zip(runs, arrays, steps, strict=True):
        out[a:b] = flat[pos:pos + len(array):step]
        pos += len(array)
    return out


def _chunk_runs(addrs: np.ndarray, bases: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs ``[start, stop)`` of rows that lie in one chunk each, and that chunk (-1: evicted).

    Addresses grow with seqs, so the runs are where the chunk bases fall among them; a slot
    overwritten while we read can break that order, and then each row is placed on its own.
    """
    if len(addrs) < 2 or bool((addrs[1:] >= addrs[:-1]).all()):
        bounds = np.searchsorted(addrs, bases, side="left")
        edges = np.concatenate([[0], bounds, [len(addrs)]]).tolist()
        return [(a, b, ci) for ci, (a, b) in enumerate(pairwise(edges), start=-1) if b > a]
    which = np.searchsorted(bases, addrs, side="right") - 1
    cuts = np.flatnonzero(np.diff(which)) + 1
    edges = np.concatenate([[0], cuts, [len(addrs)]]).tolist()
    return [(a, b, int(which[a])) for a, b in pairwise(edges)]


def _search(arrays: list[pa.Array], pattern: str, ignore_case: bool,
            folds: list[bool]) -> np.ndarray:
    """RE2 search over the arrays, concatenated, as one bool array.

    One kernel call per core, each over a contiguous run of chunks: the kernel is
    single-threaded and releases the GIL, and one call per run builds the regex (and its
    DFA) once per run; per-chunk calls rebuilt it ~100 times per million rows. A
    case-insensitive search runs as ``ascii_folded`` except on arrays whose chunk ``folds``.
    """
    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    parts = min(_SEARCH_THREADS, len(arrays)) if lengths.sum() >= _PARALLEL_MIN_ROWS else 1
    bounds = np.searchsorted(np.cumsum(lengths), np.linspace(0, lengths.sum(), parts + 1)[1:-1])
    groups = [g for g in np.split(np.arange(len(arrays)), bounds) if len(g)]
    fast = ascii_folded(pattern) if ignore_case else None

    def run(group: np.ndarray) -> np.ndarray:
        out = []  # one call per run of arrays searched the same way: the whole group, mostly
        for exact, run_of in groupby(group, key=lambda i: fast is None or folds[i]):
            chunked = pa.chunked_array([arrays[i] for i in run_of], pa.string())
            hit = (pc.match_substring_regex(chunked, pattern, ignore_case=ignore_case) if exact
                   else pc.match_substring_regex(chunked, fast))
            out.append(hit.to_numpy())  # the kernel may re-chunk its output: index the whole
        return np.concatenate(out)

    try:
        if len(groups) == 1:
            return run(groups[0])
        return np.concatenate(list(_search_pool().map(run, groups)))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise FilterError(f"invalid regular expression {pattern!r}: {exc}") from None


def parse_status(text: str) -> tuple[int | None, int | None]:
    """``500``, ``400-499``, ``>=500``, ``<400``, ``4xx`` -> (min, max)."""
    t = text.strip().replace(" ", "")
    if not t:
        return None, None
    try:
        if len(t) == 3 and t[0].isdigit() and t[1:].lower() == "xx":
            base = int(t[0]) * 100
            return base, base + 99
        if t.startswith(">="):
            return int(t[2:]), None
        if t.startswith("<="):
            return None, int(t[2:])
        if t.startswith(">"):
            return int(t[1:]) + 1, None
        if t.startswith("<"):
            return None, int(t[1:]) - 1
        if "-" in t[1:]:
            lo, hi = t.split("-", 1) if not t.startswith("-") else ("", t[1:])
            return (int(lo) if lo else None), (int(hi) if hi else None)
        return int(t), int(t)
    except ValueError:
        raise FilterError(f"status {text!r}: use 500, 400-499, 4xx, >=500 or <400") from None


def status_text(spec: FilterSpec) -> str:
    lo, hi = spec.status_min, spec.status_max
    if lo is None and hi is None:
        return ""
    if lo is not None and hi is not None:
        if lo == hi:
            return str(lo)
        if lo % 100 == 0 and hi == lo + 99:
            return f"{lo // 100}xx"
        return f"{lo}-{hi}"
    return f">={lo}" if lo is not None else f"<={hi}"
