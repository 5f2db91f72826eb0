"""Seeded, vectorized web-log event generation (pure numpy; no Kafka, no clock).

Simulated time is cut into fixed slices (their length depends only on ``rate`` and
``speedup``); slice ``i`` draws everything from ``PCG64([seed, i])``, so the same seed and
parameters give the same events however the caller consumes them. Within a slice, per-source
Poisson counts follow the daily curve and active traffic scenarios; every other field is drawn
per event in one numpy pass, and only the final step builds Python objects.

In-process API (no Kafka needed; the anomaly detector's tests and evaluation use it)::

    from pipeline.sources.events import EventGenerator
    from pipeline.sources.scenarios import LabelWriter, Scenario, random_scenarios

    gen = EventGenerator(seed=7, start_ms=1_767_225_600_000, rate=2000, speedup=60,
                         scenarios=random_scenarios(7, sim_duration_s=6 * 3600, n=6),
                         sources=6, on_label=LabelWriter("labels.jsonl").write)
    for batch in gen.batches(count=100_000):   # or sim_duration_s=..., or endless
        batch.dicts()        # list of {field: value} with exactly schemas.EVENT_FIELDS
        batch.serialized()   # list of JSON bytes (the Kafka values); batch.keys() = source
        batch.ts, batch.status, batch.latency_ms, batch.bytes   # numpy columns
    gen.labels               # every Label (kind, entity_type, entity, start_ms, end_ms, ...)
    gen.inject("error_burst", entity="api-01", duration_s=120)  # on command, from sim-now

- Same seed and parameters -> identical events (``event_id`` included), however the batches
  are consumed. ``ts`` is simulated event time in epoch ms; ``rate`` is events per wall
  second at the daily mean; simulated time runs ``speedup`` x faster than the wall clock, so
  a simulated second holds ``rate / speedup`` events on average.
- Shape: sources ``web-01, api-01, auth-01, search-01, checkout-01, static-01, web-02, ...``
  with skewed traffic shares; Zipf endpoint popularity within each source's service;
  log-normal latency per endpoint; per-endpoint 3xx/4xx/5xx mix; ``level`` follows
  ``status`` (5xx ERROR, 4xx WARN, else INFO or, for a few, DEBUG); a daily curve (peak
  15:00 UTC, trough 03:00 at 0.45 x).
- Scenarios (``pipeline.sources.scenarios``): ``error_burst`` (one source; magnitude = share
  of its requests failing with 5xx), ``latency_spike`` (one endpoint; latency factor),
  ``traffic_surge`` / ``traffic_drop`` (all sources, or one with ``entity=<source>``;
  traffic factor), ``scan_404`` (one source; a scanner IP probing unknown paths, magnitude =
  its rate relative to the source's), ``new_pattern`` (a never-seen message on a share of all
  events). Each becomes a :class:`Label` with its event-time window when generation reaches
  it; ``read_labels(path)`` reads a labels file back.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.schemas import LEVELS
from pipeline.sources import catalog as cat
from pipeline.sources.batch import EventBatch
from pipeline.sources.sampling import (
    daily_curve,
    source_names,
    to_cdf,
    uuid4_strings,
    zipf_weights,
)
from pipeline.sources.scenarios import (
    ALL_SOURCES,
    DEFAULT_MAGNITUDE,
    ENTITY_TYPES,
    Label,
    Scenario,
    ScenarioError,
)

_ERROR, _WARN, _INFO, _DEBUG = (LEVELS.index(x) for x in ("ERROR", "WARN", "INFO", "DEBUG"))


@dataclass
class _Active:
    """A scenario resolved to indices, with its label."""

    label: Label
    kind: str
    start_ms: int
    end_ms: int
    magnitude: float
    source: int = -1  # -1: every source
    endpoint: int = -1
    message: str = ""
    client_ip: str = ""
    user_agent: str = ""


class EventGenerator:
    """Realistic web-server events in simulated time; see this module's docstring.

    ``rate`` is events per wall second at the daily mean; simulated time runs ``speedup``
    times faster, so one simulated second holds ``rate / speedup`` events on average.
    ``on_label`` is called with each scenario's :class:`Label` when generation reaches it.
    """

    def __init__(self, seed: int | None = None, start_ms: int | None = None,
                 rate: float = 1000.0, speedup: float = 1.0,
                 scenarios: Iterable[Scenario] = (), sources: int = 6,
                 on_label: Callable[[Label], None] | None = None) -> None:
        if not rate > 0 or not speedup > 0:
            raise ValueError("rate and speedup must be > 0")
        if sources < 1:
            raise ValueError("sources must be >= 1")
        self.seed = int(secrets.randbits(32) if seed is None else seed) & 0xFFFFFFFFFFFFFFFF
        self.start_ms = int(time.time() * 1000) if start_ms is None else int(start_ms)
        self.rate = float(rate)
        self.speedup = float(speedup)
        self.on_label = on_label
        self.labels: list[Label] = []
        self._per_ms = self.rate / self.speedup / 1000.0
        #: simulated ms per slice: ~4096 events (numpy pays off), at most 1 wall second (so an
        #: injected scenario starts within a second)
        self.slice_ms = max(1, min(round(4096 / self._per_ms), round(1000 * self.speedup)))
        self._slice = 0
        self._n_injected = 0
        self._build_site(sources)
        self._pending: list[_Active] = sorted(
            (self._resolve(sc, self.start_ms + round(sc.start_s * 1000), ("plan", i))
             for i, sc in enumerate(scenarios)),
            key=lambda a: a.start_ms,
        )
        self._active: list[_Active] = []
        self._unreported: list[Label] = []
        self._leftover: EventBatch | None = None

    # -- the simulated site ---------------------------------------------------------------
    def _build_site(self, n_sources: int) -> None:
        rng = np.random.default_rng([self.seed, 0x517E])
        self.sources = source_names(n_sources)
        svc_names = cat.SERVICES
        self._src_service = np.array([i % len(svc_names) for i in range(n_sources)])
        self._src_share = zipf_weights(n_sources, 0.5)
        self._src_share /= self._src_share.sum()
        eps = list(cat.ENDPOINTS)
        n_ep = len(eps)
        self.endpoints = [e.path for e in eps]
        self._svc_ep: dict[int, tuple[int, np.ndarray]] = {}
        for s, name in enumerate(svc_names):
            idx = [i for i, e in enumerate(eps) if e.service == name]
            self._svc_ep[s] = (idx[0], to_cdf(zipf_weights(len(idx))))
        served = {svc_names[s] for s in set(self._src_service.tolist())}
        self.served_endpoints = [e.path for e in eps if e.service in served]
        scan = cat.SCAN_PATHS
        self._n_ep = n_ep
        paths = [e.path for e in eps] + list(scan)
        methods = [e.method for e in eps] + ["GET"] * len(scan)
        self._ep_path = paths
        self._ep_method = np.array(methods, dtype=object)
        self._ep_is_post = np.array([m == "POST" for m in methods])
        self._ep_mu = np.log([e.latency_median_ms for e in eps] + [3.0] * len(scan))
        self._ep_sigma = np.array([e.latency_sigma for e in eps] + [0.4] * len(scan))
        self._ep_bmu = np.log([e.bytes_median for e in eps] + [180] * len(scan))
        self._ep_p5 = np.array([e.p5xx for e in eps] + [0.0] * len(scan))
        self._ep_p45 = self._ep_p5 + np.array([e.p4xx for e in eps] + [1.0] * len(scan))
        self._ep_p345 = self._ep_p45 + np.array([e.p3xx for e in eps] + [0.0] * len(scan))
        self._source_arr = np.array(self.sources, dtype=object)
        self._level_arr = np.array(LEVELS, dtype=object)
        self._path_arr = np.array(paths, dtype=object)
        n_ip = 20_000
        octets = rng.integers(1, 255, size=(n_ip, 4))
        octets[:, 0] = rng.choice([23, 31, 45, 62, 78, 81, 93, 104, 142, 151, 176, 185, 203, 212],
                                  size=n_ip)
        self._ips = np.array([f"{a}.{b}.{c}.{d}" for a, b, c, d in octets.tolist()], dtype=object)
        self._ip_cdf = to_cdf(zipf_weights(n_ip, 1.05, offset=20.0))
        self._ua = np.array([u for u, _ in cat.USER_AGENTS], dtype=object)
        self._ua_cdf = to_cdf(w for _, w in cat.USER_AGENTS)
        self._status_tables = [
            (np.array([c for c, _ in table]), to_cdf(w for _, w in table))
            for table in (cat.STATUS_2XX, cat.STATUS_3XX, cat.STATUS_4XX, cat.STATUS_5XX)
        ]
        self._messages: dict[int, str] = {}

    # -- scenarios ------------------------------------------------------------------------
    def _resolve(self, sc: Scenario, start_ms: int, tag: tuple[str, int]) -> _Active:
        """Pick the concrete entity (seeded by the scenario's position) and build its label."""
        rng = np.random.default_rng([self.seed, 0x5CE, 0 if tag[0] == "plan" else 1, tag[1]])
        kind = sc.kind
        magnitude = float(sc.magnitude if sc.magnitude is not None else DEFAULT_MAGNITUDE[kind])
        end_ms = start_ms + max(1, round(sc.duration_s * 1000))
        entity_type = ENTITY_TYPES[kind]
        act = _Active(label=None, kind=kind, start_ms=start_ms, end_ms=end_ms,  # type: ignore[arg-type]
                      magnitude=magnitude)
        extra: dict[str, Any] = {}
        if kind in ("error_burst", "scan_404") or (
            kind in ("traffic_surge", "traffic_drop") and sc.entity not in (None, ALL_SOURCES)
        ):
            act.source = self._source_index(sc.entity, rng)
            entity = self.sources[act.source]
            entity_type = "source"
        elif kind in ("traffic_surge", "traffic_drop"):
            entity = ALL_SOURCES
        elif kind == "latency_spike":
            if sc.entity is None:
                # a popular endpoint (top 3 of a served service), so the spike is visible
                svc = int(rng.choice(sorted(set(self._src_service.tolist()))))
                first, cdf = self._svc_ep[svc]
                act.endpoint = first + int(rng.integers(0, min(3, len(cdf))))
            elif sc.entity in self.served_endpoints:
                act.endpoint = self.endpoints.index(sc.entity)
            else:
                raise ScenarioError(f"latency_spike: endpoint {sc.entity!r} is not served; "
                                    f"known: {', '.join(self.served_endpoints)}")
            entity = self.endpoints[act.endpoint]
        else:  # new_pattern
            act.message = sc.entity or cat.NEW_PATTERNS[int(rng.integers(len(cat.NEW_PATTERNS)))]
            entity = act.message
        if kind == "scan_404":
            act.client_ip = (f"{int(rng.integers(160, 200))}.{int(rng.integers(0, 256))}."
                             f"{int(rng.integers(0, 256))}.{int(rng.integers(1, 255))}")
            act.user_agent = cat.SCANNER_USER_AGENTS[
                int(rng.integers(len(cat.SCANNER_USER_AGENTS)))]
            extra = {"client_ip": act.client_ip, "user_agent": act.user_agent}
        act.label = Label(kind, entity_type, entity, start_ms, end_ms, magnitude, extra)
        return act

    def _source_index(self, entity: str | None, rng: np.random.Generator) -> int:
        if entity is None:
            return int(rng.integers(len(self.sources)))
        if entity not in self.sources:
            raise ScenarioError(f"unknown source {entity!r}; known: {', '.join(self.sources)}")
        return self.sources.index(entity)

    def inject(self, kind: str, entity: str | None = None, duration_s: float = 60.0,
               magnitude: float | None = None) -> Label:
        """Start a scenario at the current simulated time (on command); returns its label."""
        sc = Scenario(kind, 0.0, duration_s, entity, magnitude)
        act = self._resolve(sc, self.sim_now_ms, ("inject", self._n_injected))
        self._n_injected += 1
        self._pending.append(act)
        self._pending.sort(key=lambda a: a.start_ms)
        return act.label

    @property
    def sim_now_ms(self) -> int:
        """Event time where the next batch starts."""
        return self.start_ms + self._slice * self.slice_ms

    def wall_offset_s(self, ts_ms: int) -> float:
        """Wall seconds after the start at which event time ``ts_ms`` is due."""
        return (ts_ms - self.start_ms) / self.speedup / 1000.0

    # -- generation -----------------------------------------------------------------------
    def batches(self, count: int | None = None,
                sim_duration_s: float | None = None) -> Iterator[EventBatch]:
        """Consecutive batches until ``count`` events or ``sim_duration_s`` of event time
        (from ``start_ms``) are produced; endless when both are None."""
        end_ms = None if sim_duration_s is None else self.start_ms + round(sim_duration_s * 1000)
        emitted = 0
        while True:
            if self._leftover is not None:
                if end_ms is not None and int(self._leftover.ts[0]) >= end_ms:
                    return
                batch, self._leftover = self._leftover, None
            else:
                if end_ms is not None and self.sim_now_ms >= end_ms:
                    return
                batch = self._next(report=False)
            cut = len(batch)
            if end_ms is not None and cut and int(batch.ts[-1]) >= end_ms:
                cut = int(np.searchsorted(batch.ts, end_ms))
            last = count is not None and emitted + cut >= count
            if last:
                cut = count - emitted  # type: ignore[operator]
            if cut < len(batch):
                # the rest starts the next call, so the stream resumes where it stopped
                batch, self._leftover = batch[:cut], batch[cut:]
            # a scenario starting after the events handed out is not injected (yet): no label
            horizon = self.sim_now_ms if self._leftover is None else int(self._leftover.ts[0])
            self._report(horizon if end_ms is None else min(horizon, end_ms))
            emitted += len(batch)
            yield batch
            if last:
                return

    def next_batch(self) -> EventBatch:
        """The events of the next slice (possibly none) and advance."""
        return self._next(report=True)

    def _next(self, report: bool) -> EventBatch:
        idx = self._slice
        t0 = self.start_ms + idx * self.slice_ms
        t1 = t0 + self.slice_ms
        self._activate(t1)
        self._slice += 1
        act = [a for a in self._active if a.start_ms < t1 and a.end_ms > t0]
        self._active = [a for a in self._active if a.end_ms > t1]
        batch = self._generate(np.random.Generator(np.random.PCG64([self.seed, idx])), t0, t1, act)
        if report:
            self._report(t1)
        return batch

    def _activate(self, t1: int) -> None:
        while self._pending and self._pending[0].start_ms < t1:
            a = self._pending.pop(0)
            self._active.append(a)
            self._unreported.append(a.label)

    def _report(self, before_ms: int) -> None:
        """Record (and hand to ``on_label``) the labels of scenarios started before_ms."""
        keep = []
        for label in self._unreported:
            if label.start_ms < before_ms:
                self.labels.append(label)
                if self.on_label is not None:
                    self.on_label(label)
            else:
                keep.append(label)
        self._unreported = keep

    def _generate(self, rng: np.random.Generator, t0: int, t1: int,
                  act: list[_Active]) -> EventBatch:
        n_src = len(self.sources)
        scans = [a for a in act if a.kind == "scan_404"]
        edges = sorted({t0, t1, *(a.start_ms for a in act if t0 < a.start_ms < t1),
                        *(a.end_ms for a in act if t0 < a.end_ms < t1)})
        seg_start = np.array(edges[:-1], dtype=np.int64)
        seg_len = np.diff(np.array(edges, dtype=np.int64))
        mid = seg_start + seg_len / 2
        lam = np.empty((len(seg_start), n_src + len(scans)))
        lam[:, :n_src] = self._per_ms * np.outer(daily_curve(mid), self._src_share)
        for a in act:
            if a.kind in ("traffic_surge", "traffic_drop"):
                on = (seg_start >= a.start_ms) & (seg_start < a.end_ms)
                cols = slice(None, n_src) if a.source < 0 else slice(a.source, a.source + 1)
                lam[on, cols] *= a.magnitude
        for k, a in enumerate(scans):
            on = (seg_start >= a.start_ms) & (seg_start < a.end_ms)
            lam[:, n_src + k] = on * self._per_ms * self._src_share[a.source] * a.magnitude
        counts = rng.poisson(lam * seg_len[:, None])
        n = int(counts.sum())
        stream = np.repeat(np.tile(np.arange(lam.shape[1]), len(seg_start)), counts.ravel())
        seg = np.repeat(np.arange(len(seg_start)), counts.sum(axis=1))
        ts = seg_start[seg] + (rng.random(n) * seg_len[seg]).astype(np.int64)
        order = np.argsort(ts, kind="stable")
        ts, stream = ts[order], stream[order]
        is_scan = stream >= n_src
        scan_of = np.where(is_scan, stream - n_src, 0)
        src = stream.copy()
        if scans:
            src[is_scan] = np.array([a.source for a in scans])[scan_of[is_scan]]
        return self._attributes(rng, n, ts, src, is_scan, scan_of, scans, act)

    def _attributes(self, rng: np.random.Generator, n: int, ts: np.ndarray, src: np.ndarray,
                    is_scan: np.ndarray, scan_of: np.ndarray, scans: list[_Active],
                    act: list[_Active]) -> EventBatch:
        u = rng.random((8, n))
        z = rng.standard_normal((2, n))
        raw_ids = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
        reason = rng.integers(0, cat.N_REASONS, size=n)
        # endpoint: Zipf within the source's service; scanners probe unknown paths
        ep = np.empty(n, dtype=np.int64)
        svc = self._src_service[src]
        for s in np.unique(svc).tolist():
            first, cdf = self._svc_ep[s]
            m = svc == s
            ep[m] = first + np.searchsorted(cdf, u[0, m], side="right").clip(0, len(cdf) - 1)
        ep[is_scan] = self._n_ep + (u[0, is_scan] * len(cat.SCAN_PATHS)).astype(np.int64)
        # status class 5/4/3/2 from the endpoint's mix, then a code within the class
        p = u[1]
        cls = np.where(p < self._ep_p5[ep], 3,
                       np.where(p < self._ep_p45[ep], 2, np.where(p < self._ep_p345[ep], 1, 0)))
        windows = {id(a): (ts >= a.start_ms) & (ts < a.end_ms) for a in act}
        for a in act:
            if a.kind == "error_burst":
                hit = windows[id(a)] & (src == a.source) & ~is_scan & (u[2] < a.magnitude)
                cls[hit] = 3
        codes = np.stack([table[np.searchsorted(cdf, u[3], side="right").clip(0, len(cdf) - 1)]
                          for table, cdf in self._status_tables])
        status = np.take_along_axis(codes, cls[None, :], axis=0)[0]
        post = self._ep_is_post[ep]
        status[(cls == 1) & post] = 302
        status[(status == 201) & ~post] = 200
        status[is_scan] = 404
        level = np.where(status >= 500, _ERROR, np.where(
            status >= 400, _WARN, np.where(u[4] < cat.DEBUG_SHARE, _DEBUG, _INFO)))
        # latency: log-normal per endpoint; gateway timeouts wait for the upstream deadline
        latency = np.exp(self._ep_mu[ep] + self._ep_sigma[ep] * z[0])
        latency[status == 504] += 30_000.0
        for a in act:
            if a.kind == "latency_spike":
                latency[windows[id(a)] & (ep == a.endpoint)] *= a.magnitude
        latency = np.round(latency, 3)
        size = np.exp(self._ep_bmu[ep] + 0.35 * z[1])
        size = np.where(status >= 400, np.exp(np.log(320.0) + 0.3 * z[1]), size)
        size[(status == 304) | (status == 204)] = 0
        size = size.astype(np.int64)
        ip_idx = np.searchsorted(self._ip_cdf, u[5], side="right").clip(0, len(self._ips) - 1)
        client_ip = self._ips[ip_idx]
        ua_idx = np.searchsorted(self._ua_cdf, u[6], side="right").clip(0, len(self._ua) - 1)
        user_agent = self._ua[ua_idx]
        if scans:
            client_ip[is_scan] = np.array([a.client_ip for a in scans], dtype=object)[
                scan_of[is_scan]]
            user_agent[is_scan] = np.array([a.user_agent for a in scans], dtype=object)[
                scan_of[is_scan]]
        # message: cached per (endpoint, status, level, reason)
        reason = np.where(level == _ERROR, reason, 0)
        keys = (((ep * 1000 + status) * 4 + level) * 4 + reason).tolist()
        get, miss = self._messages.get, self._message
        message = [get(k) or miss(k) for k in keys]
        for a in act:
            if a.kind == "new_pattern":
                for i in np.flatnonzero(windows[id(a)] & (u[7] < a.magnitude)).tolist():
                    message[i] = a.message
        return EventBatch(
            event_id=uuid4_strings(raw_ids),
            ts=ts,
            level=self._level_arr[level].tolist(),
            source=self._source_arr[src].tolist(),
            method=self._ep_method[ep].tolist(),
            endpoint=self._path_arr[ep].tolist(),
            status=status,
            latency_ms=latency,
            bytes=size,
            client_ip=client_ip.tolist(),
            user_agent=user_agent.tolist(),
            message=message,
            source_index=src,
        )

    def _message(self, key: int) -> str:
        rest, reason = divmod(key, 4)
        rest, level = divmod(rest, 4)
        ep, status = divmod(rest, 1000)
        fmt = {"method": self._ep_method[ep], "path": self._ep_path[ep], "status": status}
        if level == _ERROR:
            reasons = cat.ERROR_REASONS.get(status) or cat.ERROR_REASONS[500]
            text = cat.ERROR_MESSAGE.format(reason=reasons[reason % len(reasons)], **fmt)
        elif level == _WARN:
            text = cat.WARN_MESSAGES.get(status, cat.WARN_MESSAGES[400]).format(**fmt)
        elif level == _DEBUG:
            text = cat.DEBUG_MESSAGE.format(**fmt)
        else:
            text = cat.INFO_MESSAGE.format(**fmt)
        self._messages[key] = text
        return text
