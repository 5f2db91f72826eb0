"""``lakewatch generate``: realistic web-server events as JSON to Kafka, with injected anomalies.

The events come from :class:`~pipeline.sources.events.EventGenerator` (whose module docstring
describes them and the in-process API); :mod:`pipeline.sources.generator_run` builds it from
the settings and these options and produces it to Kafka.

Schedules (``--scenarios``): a JSON file or inline JSON list of
``{"kind", "start": "10m", "duration": "2m", "entity"?, "magnitude"?}`` (start relative to the
simulated start), or ``random`` for ``--scenario-count`` scenarios drawn from the seed.
A running generator also takes scenarios on command: ``lakewatch generate --inject KIND``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from pipeline.settings import ConfigError, Settings
from pipeline.sources.control import request_injection
from pipeline.sources.events import EventGenerator
from pipeline.sources.generator_run import (
    build_generator,
    default_labels_path,
    parse_start_time,
    run_to_kafka,
)
from pipeline.sources.scenarios import (
    INJECTABLE_KINDS,
    LabelWriter,
    ScenarioError,
    parse_duration_s,
)

log = logging.getLogger(__name__)


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
        gen, sim_duration = build_generator(
            settings, rate=args.rate, speedup=args.speedup, seed=args.seed,
            start_ms=args.start_time, sources=args.sources, scenarios=args.scenarios,
            scenario_count=args.scenario_count, count=args.count, duration_s=args.duration,
            on_label=labels)
        log.info("generator: seed=%d start=%s rate=%g/s speedup=%g sources=%d labels=%s",
                 gen.seed, datetime.fromtimestamp(gen.start_ms / 1000, tz=UTC).isoformat(),
                 gen.rate, gen.speedup, len(gen.sources), labels_path)
        if args.stdout:
            return _to_stdout(gen, args.count, sim_duration)
        return run_to_kafka(gen, settings, args.count, sim_duration,
                            throttle=not args.no_throttle)


def _to_stdout(gen: EventGenerator, count: int | None, sim_duration: float | None) -> int:
    out = sys.stdout.buffer
    for batch in gen.batches(count, sim_duration):
        out.write(b"".join(v + b"\n" for v in batch.serialized()))
    out.flush()
    return 0
