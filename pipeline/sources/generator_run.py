"""The event generator run as a live source: built from settings, produced to Kafka in time.

:class:`~pipeline.sources.events.EventGenerator` is pure (no clock, no Kafka, no settings).
This module is what running it adds, hence its name: :func:`build_generator` makes one from
``settings.generator`` and explicit overrides (with a scenario plan), and
:func:`run_to_kafka` produces its events through a
:class:`~pipeline.sources.producer.LogProducer`, paced so that simulated time runs ``speedup``
times faster than the wall clock, applying scenarios injected on command
(:func:`pipeline.sources.control.request_injection`) as it goes.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.settings import ConfigError, Settings
from pipeline.sources.batch import EventBatch
from pipeline.sources.control import Inbox
from pipeline.sources.events import EventGenerator
from pipeline.sources.scenarios import (
    LabelWriter,
    ScenarioError,
    load_scenarios,
    random_scenarios,
)

if TYPE_CHECKING:
    from pipeline.sources.producer import LogProducer

log = logging.getLogger(__name__)

#: Simulated span over which ``--scenarios random`` spreads its scenarios in an endless run.
RANDOM_HORIZON_S = 6 * 3600.0


def default_labels_path(settings: Settings) -> Path:
    """Where injected anomalies are recorded when no ``--labels`` is given."""
    return settings.generator.labels or settings.data_dir / "labels" / "generator_labels.jsonl"


def parse_start_time(value: str) -> int:
    """ISO 8601 (naive = UTC) or epoch milliseconds -> epoch ms."""
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--start-time {value!r}: expected ISO 8601 or epoch ms") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def build_generator(
    settings: Settings,
    *,
    rate: float | None = None,
    speedup: float | None = None,
    seed: int | None = None,
    start_ms: int | None = None,
    sources: int | None = None,
    scenarios: str | None = None,
    scenario_count: int = 6,
    count: int | None = None,
    duration_s: float | None = None,
    on_label: LabelWriter | None = None,
) -> tuple[EventGenerator, float | None]:
    """The generator these values describe, and its simulated duration (or None).

    ``None`` (and ``sources=0``) means ``settings.generator``'s value; ``start_ms`` None means
    now. ``scenarios`` is a schedule (file, inline JSON, or ``random`` for ``scenario_count``
    drawn from the seed). ``count`` (events) and ``duration_s`` (wall seconds) are the run's
    stop conditions: the simulated duration comes from ``duration_s``, and ``random`` spreads
    its scenarios over the run they describe.
    """
    g = settings.generator
    rate = rate if rate is not None else g.rate
    speedup = speedup if speedup is not None else g.speedup
    seed = seed if seed is not None else g.seed
    if rate <= 0 or speedup <= 0:
        raise ConfigError("--rate and --speedup must be > 0")
    if count is not None and count < 0:
        raise ConfigError("--count must be >= 0")
    sim_duration = duration_s * speedup if duration_s is not None else None
    gen = EventGenerator(seed=seed, start_ms=start_ms, rate=rate, speedup=speedup,
                         sources=sources or g.sources,
                         on_label=on_label.write if on_label else None)
    spec = scenarios if scenarios is not None else g.scenarios
    if spec:
        try:
            if spec == "random":
                horizon = sim_duration or (count / rate * speedup if count else None)
                plan = random_scenarios(gen.seed, horizon or RANDOM_HORIZON_S, scenario_count)
            else:
                plan = load_scenarios(spec)
            gen = EventGenerator(seed=gen.seed, start_ms=gen.start_ms, rate=rate, speedup=speedup,
                                 scenarios=plan, sources=len(gen.sources),
                                 on_label=gen.on_label)
        except ScenarioError as exc:
            raise ConfigError(str(exc)) from None
    return gen, sim_duration


def run_to_kafka(gen: EventGenerator, settings: Settings, count: int | None,
                 sim_duration: float | None, throttle: bool = True) -> int:
    """Produce ``gen``'s events (``count`` of them, ``sim_duration`` simulated seconds' worth,
    or until SIGTERM/SIGINT) to Kafka, paced unless ``throttle`` is False; an exit code."""
    from pipeline.signals import stop_on_signals
    from pipeline.sources.producer import LogProducer, ProducerError

    inbox = Inbox(settings)

    def status() -> dict[str, object]:
        return {"seed": gen.seed, "rate": gen.rate, "speedup": gen.speedup,
                "sim_time_ms": gen.sim_now_ms, "labels": len(gen.labels)}

    producer = LogProducer(settings, "generator", status_fields=status, report_successes=False)
    with stop_on_signals() as stop:
        try:
            producer.ensure_topic()
            producer.heartbeat(state="running")
            wall0 = time.monotonic()
            for batch in gen.batches(count, sim_duration):
                if throttle:
                    _produce_paced(producer, batch, gen, wall0, stop)
                else:
                    producer.produce_many(batch.serialized(), batch.keys())
                for req in inbox.poll():
                    _inject(gen, req)
                if stop.is_set():
                    break
        except ProducerError as exc:
            print(f"lakewatch generate: {exc}", file=sys.stderr)
            producer.close()
            return 1
        remaining = producer.close()
    if remaining or producer.failed:
        print(f"lakewatch generate: {remaining} undelivered, {producer.failed} failed",
              file=sys.stderr)
        return 1
    return 0


def _inject(gen: EventGenerator, req: dict) -> None:
    try:
        label = gen.inject(req["kind"], req.get("entity"), float(req.get("duration_s") or 60.0),
                           req.get("magnitude"))
        log.info("injected %s on %s %s", label.kind, label.entity_type, label.entity)
    except (ScenarioError, TypeError, ValueError) as exc:
        log.warning("cannot inject %r: %s", req, exc)


def _produce_paced(producer: LogProducer, batch: EventBatch, gen: EventGenerator,
                   wall0: float, stop: threading.Event) -> None:
    """Produce each event when the wall clock reaches its simulated time (speedup applied)."""
    i, n, ts = 0, len(batch), batch.ts
    while i < n and not stop.is_set():
        sim_now = gen.start_ms + (time.monotonic() - wall0) * gen.speedup * 1000.0
        j = int(np.searchsorted(ts, sim_now, side="right"))
        if j > i:
            part = batch[i:j]
            producer.produce_many(part.serialized(), part.keys())
            i = j
        else:
            producer.poll(min(max(gen.wall_offset_s(int(ts[i])) - (time.monotonic() - wall0),
                                  0.001), 0.1))

