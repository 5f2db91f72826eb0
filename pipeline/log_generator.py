"""``lakewatch generate``: realistic web-server events as JSON to Kafka, with injected anomalies.

In-process API (no Kafka needed; the anomaly detector's tests and evaluation use it)::

    from pipeline.log_generator import EventGenerator, Scenario, random_scenarios, LabelWriter

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

Schedules (``--scenarios``): a JSON file or inline JSON list of
``{"kind", "start": "10m", "duration": "2m", "entity"?, "magnitude"?}`` (start relative to the
simulated start), or ``random`` for ``--scenario-count`` scenarios drawn from the seed.
A running generator also takes scenarios on command: ``lakewatch generate --inject KIND``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.settings import ConfigError, Settings
from pipeline.sources.control import Inbox, request_injection
from pipeline.sources.events import EventBatch, EventGenerator, daily_curve, source_names
from pipeline.sources.scenarios import (
    INJECTABLE_KINDS,
    Label,
    LabelWriter,
    Scenario,
    ScenarioError,
    load_scenarios,
    parse_duration_s,
    random_scenarios,
    read_labels,
)

if TYPE_CHECKING:
    from pipeline.sources.producer import LogProducer

__all__ = [
    "EventBatch", "EventGenerator", "Label", "LabelWriter", "Scenario", "ScenarioError",
    "daily_curve", "load_scenarios", "random_scenarios", "read_labels", "source_names",
    "configure_parser", "run", "default_labels_path",
]

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


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, help="events per second (default: generator.rate)")
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--count", type=int, help="stop after this many events")
    stop.add_argument("--duration", type=parse_duration_s,
                      help="stop after this much wall time, e.g. 60, 5m (default: run forever)")
    parser.add_argument("--seed", type=int, help="random seed (default: generator.seed or random)")
    parser.add_argument("--speedup", type=float, help="simulated time runs this many times faster")
    parser.add_argument("--start-time", type=parse_start_time,
                        help="simulated start, ISO 8601 or epoch ms (default: now)")
    parser.add_argument("--sources", type=int,
                        help="number of sources (default: generator.sources)")
    parser.add_argument("--scenarios", metavar="FILE|JSON|random",
                        help="anomaly schedule (default: generator.scenarios)")
    parser.add_argument("--scenario-count", type=int, default=6,
                        help="how many scenarios 'random' draws (default 6)")
    parser.add_argument("--labels", type=Path, metavar="PATH",
                        help="ground-truth labels file, JSON lines (appended)")
    parser.add_argument("--no-throttle", action="store_true",
                        help="produce as fast as possible instead of at --rate")
    parser.add_argument("--stdout", action="store_true",
                        help="write JSON lines to stdout (unthrottled), not to Kafka")
    parser.add_argument("--inject", choices=INJECTABLE_KINDS, metavar="KIND",
                        help="tell the running generator to start scenario KIND now, then exit")
    parser.add_argument("--entity", help="with --inject: source, endpoint or message")
    parser.add_argument("--inject-duration", type=parse_duration_s, default=60.0,
                        help="with --inject: simulated duration (default 60s)")
    parser.add_argument("--magnitude", type=float, help="with --inject: effect size")


def build_generator(args: argparse.Namespace, settings: Settings,
                    on_label: LabelWriter | None = None) -> tuple[EventGenerator, float | None]:
    """The generator described by ``args`` + settings, and its simulated duration (or None)."""
    g = settings.generator
    rate = args.rate if args.rate is not None else g.rate
    speedup = args.speedup if args.speedup is not None else g.speedup
    seed = args.seed if args.seed is not None else g.seed
    if rate <= 0 or speedup <= 0:
        raise ConfigError("--rate and --speedup must be > 0")
    if args.count is not None and args.count < 0:
        raise ConfigError("--count must be >= 0")
    sim_duration = args.duration * speedup if args.duration is not None else None
    gen = EventGenerator(seed=seed, start_ms=args.start_time, rate=rate, speedup=speedup,
                         sources=args.sources or g.sources,
                         on_label=on_label.write if on_label else None)
    spec = args.scenarios if args.scenarios is not None else g.scenarios
    if spec:
        try:
            if spec == "random":
                horizon = sim_duration or (args.count / rate * speedup if args.count else None)
                plan = random_scenarios(gen.seed, horizon or RANDOM_HORIZON_S, args.scenario_count)
            else:
                plan = load_scenarios(spec)
            gen = EventGenerator(seed=gen.seed, start_ms=gen.start_ms, rate=rate, speedup=speedup,
                                 scenarios=plan, sources=len(gen.sources),
                                 on_label=gen.on_label)
        except ScenarioError as exc:
            raise ConfigError(str(exc)) from None
    return gen, sim_duration


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.inject:
        try:
            request_injection(settings, args.inject, args.entity, args.inject_duration,
                              args.magnitude)
        except ScenarioError as exc:
            raise ConfigError(str(exc)) from None
        print(f"requested {args.inject} for the running generator", file=sys.stderr)
        return 0
    labels_path = args.labels or default_labels_path(settings)
    with LabelWriter(labels_path) as labels:
        gen, sim_duration = build_generator(args, settings, labels)
        log.info("generator: seed=%d start=%s rate=%g/s speedup=%g sources=%d labels=%s",
                 gen.seed, datetime.fromtimestamp(gen.start_ms / 1000, tz=UTC).isoformat(),
                 gen.rate, gen.speedup, len(gen.sources), labels_path)
        if args.stdout:
            return _to_stdout(gen, args.count, sim_duration)
        return _to_kafka(gen, settings, args.count, sim_duration, throttle=not args.no_throttle)


def _to_stdout(gen: EventGenerator, count: int | None, sim_duration: float | None) -> int:
    out = sys.stdout.buffer
    for batch in gen.batches(count, sim_duration):
        out.write(b"".join(v + b"\n" for v in batch.serialized()))
    out.flush()
    return 0


def _to_kafka(gen: EventGenerator, settings: Settings, count: int | None,
              sim_duration: float | None, throttle: bool = True) -> int:
    from pipeline.sources.producer import LogProducer, ProducerError, stop_on_signals

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


if __name__ == "__main__":
    from pipeline.commands.main import run_module

    raise SystemExit(run_module(sys.modules[__name__]))
