"""``lakewatch ship``: tail an nginx/Apache access log (or JSON lines) and ship every line.

Each line goes to Kafka as-is, keyed by ``--source``, under an ``event_id`` that depends on
the file and the line's offset only, at least once: see :mod:`pipeline.sources.shipper`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.access_log import FORMATS
from pipeline.settings import Settings
from pipeline.sources.shipper import Shipper


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--follow", required=True, type=Path, metavar="PATH",
                        help="access log to tail")
    parser.add_argument("--format", choices=FORMATS, default="combined",
                        help="combined | common (nginx/Apache) | json (JSON lines)")
    parser.add_argument("--source", help="service/host name for the lines (default: hostname)")
    parser.add_argument("--once", action="store_true",
                        help="ship what is there (rotated remainders included), then exit")
    parser.add_argument("--start-at", choices=("beginning", "end"), default="beginning",
                        help="where to start a file never shipped before (default: beginning)")
    parser.add_argument("--state-file", type=Path, metavar="PATH",
                        help="position file (default: <data_dir>/shipper/<name>.<hash>.json)")
    parser.add_argument("--rotate-grace", type=float, default=1.0, metavar="SECONDS",
                        help="keep reading a rotated file this long after it goes quiet")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.signals import stop_on_signals

    shipper = Shipper(settings, args.follow, args.format, args.source, args.state_file,
                      args.start_at, 0.0 if args.once else args.rotate_grace)
    with stop_on_signals() as stop:
        return shipper.run(stop, once=args.once)

