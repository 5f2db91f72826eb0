"""Test / benchmark aid: seeded generator events as one pandas frame, no Kafka involved.

Wraps ``pipeline.sources.events.EventGenerator``; pair it with
``features.events_to_metrics`` to get what the processor would have written to ``metrics``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipeline.sources.events import EventGenerator
from pipeline.sources.scenarios import Label, Scenario

#: A fixed simulated start (2023-11-14 22:13:20 UTC) so seeded runs are reproducible.
SIM_START_MS = 1_700_000_000_000
EVENT_COLUMNS = ("ts", "level", "source", "endpoint", "status", "latency_ms", "bytes",
                 "message")


def simulate_events(seed: int, sim_seconds: float, rate: float = 100.0,
                    scenarios: Iterable[Scenario] = (), start_ms: int = SIM_START_MS,
                    sources: int = 6) -> tuple[pd.DataFrame, list[Label]]:
    """``rate`` events per simulated second for ``sim_seconds``; returns (events, labels).

    ``ts`` stays epoch milliseconds, as on the Kafka topic.
    """
    # rate / speedup = events per simulated second; a large speedup makes large slices.
    gen = EventGenerator(seed=seed, start_ms=start_ms, rate=rate * 200, speedup=200.0,
                         scenarios=scenarios, sources=sources)
    cols: dict[str, list] = {k: [] for k in EVENT_COLUMNS}
    for batch in gen.batches(sim_duration_s=sim_seconds):
        for k in EVENT_COLUMNS:
            v = getattr(batch, k)
            cols[k].append(np.array(v, dtype=object) if isinstance(v, list) else v)
    events = pd.DataFrame({k: (np.concatenate(v) if v else np.array([])) for k, v in cols.items()})
    return events, list(gen.labels)
