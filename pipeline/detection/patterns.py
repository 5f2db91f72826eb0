"""Log message templates (drain3): new templates and sudden template share changes.

Messages are masked (numbers, ids, IPs, hex) and mined into templates with
``drain3.TemplateMiner`` using its in-memory persistence; the snapshot rides along with the
detector's saved model so a restart knows the same templates. Templates mined while
``learning`` (the warm-up / training history) are the baseline: a template first seen later
that reaches ``min_count`` messages within ``new_span`` windows is a ``new_pattern``.

A known template's share of all messages is tracked like any baseline feature (median/MAD
with a binomial floor); a jump is reported with the kind its messages signal (mostly
ERROR / 5xx -> error_burst, mostly 404 -> scan_404, else other). The engine attaches such
jumps to a metrics anomaly of the same window instead of reporting them twice.

Shares add up to one, so when one template surges every other one's share falls. A window
with a finding, or in which a template first seen after learning (within
``baseline_windows``) holds ``MIN_SHARE_EFFECT`` of the messages, is therefore learned by
no template: otherwise the commonest template learned its share while a scan or a new
pattern pushed it down, and its plain return afterwards read as a jump, window after window
(the jump itself was kept out of its baseline). Both exclusions end after
``baseline_windows`` consecutive windows: a lasting change of the mix becomes the new normal.
A jump must also be a rise by ``MIN_SHARE_RATIO``: a template that already writes most of the
messages can't surge much, and its share moves with every other template's.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.memory_buffer_persistence import MemoryBufferPersistence
from drain3.template_miner_config import TemplateMinerConfig

MASKS = (
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "UUID"),
    (r"\b\d{1,3}(?:\.\d{1,3}){3}\b", "IP"),
    (r"\b0x[0-9a-fA-F]+\b", "HEX"),
    (r"\b[0-9a-fA-F]{16,}\b", "HEX"),
    (r"(?<![A-Za-z])[-+]?\d+(?:\.\d+)?(?:ms|s|B|KB|MB)?\b", "NUM"),
)
MIN_SHARE_EFFECT = 0.05
MIN_SHARE_RATIO = 1.5
_CACHE_MAX = 200_000


def _config() -> TemplateMinerConfig:
    cfg = TemplateMinerConfig()  # never read a drain3.ini from the working directory
    cfg.masking_instructions = [MaskingInstruction(p, name) for p, name in MASKS]
    cfg.snapshot_interval_minutes = 10_000  # snapshots only when asked or clusters change
    cfg.snapshot_compress_state = True
    cfg.drain_sim_th = 0.5
    cfg.parametrize_numeric_tokens = True
    return cfg


@dataclass
class PatternFinding:
    """One template anomaly in one window."""

    kind: str  # new_pattern | error_burst | scan_404 | other
    cluster_id: int
    template: str
    count: int
    share: float
    expected_share: float
    z: float
    new: bool
    examples: list[str] = field(default_factory=list)
    #: what the template's messages signal: error_burst (mostly errors), scan_404 (mostly
    #: 404s) or other; a new template that merely signals a detected burst is attached to it
    signal: str = "other"


@dataclass
class _Template:
    shares: deque
    errors: int = 0
    not_found: int = 0
    total: int = 0
    recent: deque = field(default_factory=lambda: deque(maxlen=8))  # (window, count)
    first_seen: int = 0  # windows_processed when first mined after learning
    flagged_run: int = 0  # consecutive windows its share jump was kept out of its baseline


class PatternDetector:
    """Mines templates window by window; ``process`` returns that window's findings."""

    def __init__(self, threshold: float = 6.0, min_count: int = 3, baseline_windows: int = 90,
                 min_history: int = 12, new_span: int = 3, window: str = "10s",
                 state: bytes | None = None, known: set[int] | None = None) -> None:
        self.threshold = threshold
        self.min_count = min_count
        self.baseline_windows = baseline_windows
        self.min_history = min_history
        self.new_span = new_span
        self.window = pd.Timedelta(window)
        self.persistence = MemoryBufferPersistence()
        if state is not None:
            self.persistence.state = state
        self.miner = TemplateMiner(self.persistence, _config())  # loads ``state`` if given
        # Snapshot only on request: drain3 would re-serialize every cluster on each change.
        self.miner.persistence_handler = None
        self.known: set[int] = set(known or ())
        self.flagged: set[int] = set()
        self.learning = True
        self.windows_processed = 0
        self._templates: dict[int, _Template] = {}
        self._cache: dict[str, int] = {}
        #: consecutive windows no template learned from (see the module doc)
        self._disturbed_run = 0

    # -- persistence -----------------------------------------------------------------
    def snapshot(self) -> dict:
        """What a saved model keeps: drain3's state and the known template ids."""
        self.miner.persistence_handler = self.persistence
        try:
            self.miner.save_state("snapshot")
        finally:
            self.miner.persistence_handler = None
        return {"drain_state": self.persistence.state, "known": sorted(self.known)}

    @classmethod
    def from_snapshot(cls, snap: dict, **kwargs) -> PatternDetector:
        det = cls(state=snap.get("drain_state"), known=set(snap.get("known", ())), **kwargs)
        det.learning = False
        return det

    def template(self, cluster_id: int) -> str:
        cluster = self.miner.drain.id_to_cluster.get(cluster_id)
        return cluster.get_template() if cluster is not None else f"<template {cluster_id}>"

    # -- mining ----------------------------------------------------------------------
    def _cluster_ids(self, messages: np.ndarray) -> np.ndarray:
        """Cluster id per message; each distinct message text is masked and mined once."""
        codes, uniq = pd.factorize(messages)
        ids = np.empty(len(uniq), dtype=np.int64)
        for i, text in enumerate(uniq.tolist()):
            cid = self._cache.get(text)
            if cid is None:
                cid = self.miner.add_log_message(text)["cluster_id"]
                if len(self._cache) < _CACHE_MAX:
                    self._cache[text] = cid
            ids[i] = cid
        return ids[codes]

    def process(self, window_start: pd.Timestamp,
                logs: pd.DataFrame | dict[str, np.ndarray]) -> list[PatternFinding]:
        """Mine one window's messages (columns message, and optionally level, status)."""
        if len(logs["message"]) == 0:
            return []
        self.windows_processed += 1
        messages = np.asarray(logs["message"], dtype=object)
        messages = np.where(pd.isna(messages), "", messages).astype(str).astype(object)
        cids = self._cluster_ids(messages)
        err = np.zeros(len(cids), dtype=bool)
        nf = np.zeros(len(cids), dtype=bool)
        if "level" in logs:
            err |= np.asarray(logs["level"], dtype=object) == "ERROR"
        if "status" in logs:
            status = np.nan_to_num(np.asarray(logs["status"], dtype=float)).astype(np.int64)
            err |= status >= 500
            nf = status == 404
        ucid, inv = np.unique(cids, return_inverse=True)
        n_per = np.bincount(inv, minlength=len(ucid))
        err_per = np.bincount(inv, weights=err, minlength=len(ucid))
        nf_per = np.bincount(inv, weights=nf, minlength=len(ucid))
        counts = {int(c): (int(n), int(e), int(f))
                  for c, n, e, f in zip(ucid, n_per, err_per, nf_per, strict=True)}
        total = len(cids)
        findings: list[PatternFinding] = []
        for cid, (n, n_err, n_nf) in counts.items():
            t = self._templates.get(cid)
            if t is None:
                born = self.windows_processed if not self.learning and cid not in self.known \
                    else -self.baseline_windows - 1  # part of the learned mix: never young
                t = self._templates[cid] = _Template(shares=deque(maxlen=self.baseline_windows),
                                                     first_seen=born)
            t.errors += n_err
            t.not_found += n_nf
            t.total += n
            t.recent.append((window_start, n))
            if self.learning:
                self.known.add(cid)
                continue
            if cid not in self.known:
                span_start = window_start - self.new_span * self.window
                recent = sum(c for w, c in t.recent if w > span_start)
                if recent >= self.min_count and cid not in self.flagged:
                    self.flagged.add(cid)
                    self.known.add(cid)
                    ex = messages[cids == cid][:3].tolist()
                    findings.append(PatternFinding(
                        kind="new_pattern", cluster_id=cid, template=self.template(cid),
                        count=recent, share=n / total, expected_share=0.0, z=math.inf,
                        new=True, examples=ex, signal=self._kind(t)))
        # Share changes of known templates (those absent this window have share 0).
        learn: list[tuple[_Template, float, bool]] = []  # (template, share, young)
        for cid, t in self._templates.items():
            n = counts[cid][0] if cid in counts else 0
            share = n / total
            young = self.windows_processed - t.first_seen <= self.baseline_windows
            if not self.learning and cid in self.known and cid not in self.flagged \
                    and len(t.shares) >= self.min_history and n >= self.min_count:
                arr = np.asarray(t.shares)
                med = float(np.median(arr))
                mad = float(np.median(np.abs(arr - med))) * 1.4826
                p0 = min(max(med, 1.0 / total), 0.5)
                scale = max(mad, math.sqrt(p0 * (1 - p0) / total) + 0.003)
                z = (share - med) / scale
                if z >= self.threshold and share - med >= MIN_SHARE_EFFECT \
                        and share >= MIN_SHARE_RATIO * med:
                    findings.append(PatternFinding(
                        kind=self._kind(t), cluster_id=cid, template=self.template(cid),
                        count=n, share=share, expected_share=med, z=z, new=False,
                        signal=self._kind(t)))
                    t.flagged_run += 1
                    if t.flagged_run <= self.baseline_windows:
                        continue  # keep the burst out of the template's baseline
            t.flagged_run = 0
            if cid in counts or t.shares:
                learn.append((t, share, young))
        disturbed = bool(findings) or any(young and share >= MIN_SHARE_EFFECT
                                          for _t, share, young in learn)
        self._disturbed_run = self._disturbed_run + 1 if disturbed else 0
        frozen = disturbed and self._disturbed_run <= self.baseline_windows
        for t, share, young in learn:
            if young or not frozen:  # a young template learns its own level
                t.shares.append(share)
        self.flagged.clear()
        return findings

    @staticmethod
    def _kind(t: _Template) -> str:
        if t.total and t.errors / t.total >= 0.5:
            return "error_burst"
        if t.total and t.not_found / t.total >= 0.5:
            return "scan_404"
        return "other"

