"""``lakewatch ship``: tail an nginx/Apache access log (or JSON lines) and ship every line.

Each line goes to Kafka as-is, keyed by ``--source``, under an ``event_id`` that depends on
the file and the line's offset only, at least once: see :mod:`pipeline.sources.shipper`.
The line's format is ``--log-format`` (a preset or a format string), else ``--format``, else
the ``sources.log_format`` config key, else ``combined``; ``--list-formats`` lists presets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.access_log import FORMATS
from pipeline.settings import ConfigError, Settings


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--follow", type=Path, metavar="PATH",
                        help="access log to tail (required unless --list-formats)")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="combined | common (nginx/Apache) | json (JSON lines)")
    parser.add_argument("--log-format", metavar="PRESET|STRING",
                        help="a preset (see --list-formats) or an nginx log_format / Apache "
                             "LogFormat / W3C '#Fields:' string")
    parser.add_argument("--list-formats", action="store_true",
                        help="list the log-format presets and exit")
    parser.add_argument("--source", help="service/host name for the lines (default: hostname)")
    parser.add_argument("--once", action="store_true",
                        help="ship what is there (rotated remainders included), then exit")
    parser.add_argument("--start-at", choices=("beginning", "end"), default="beginning",
                        help="where to start a file never shipped before (default: beginning)")
    parser.add_argument("--state-file", type=Path, metavar="PATH",
                        help="position file (default: <data_dir>/shipper/<name>.<hash>.json)")
    parser.add_argument("--rotate-grace", type=float, default=1.0, metavar="SECONDS",
                        help="keep reading a rotated file this long after it goes quiet")


def chosen_format(args: argparse.Namespace, settings: Settings) -> str:
    """--log-format, else --format, else ``sources.log_format``, else ``combined``."""
    if args.log_format and args.format:
        raise ConfigError("give --format or --log-format, not both")
    return args.log_format or args.format or settings.sources.log_format or "combined"


def list_formats() -> str:
    from pipeline.log_format_presets import PRESETS

    width = max(map(len, PRESETS))
    rows = [f"{name:<{width}}  {p['syntax']:<6}  {p['notes']}\n{'':<{width}}  "
            f"{'':<6}  {p['format']!r}" for name, p in PRESETS.items()]
    return "\n".join(rows)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.list_formats:
        print(list_formats())
        return 0
    if args.follow is None:
        raise ConfigError("--follow PATH is required")
    from pipeline.signals import stop_on_signals
    from pipeline.sources.shipper import Shipper

    shipper = Shipper(settings, args.follow, chosen_format(args, settings), args.source,
                      args.state_file, args.start_at, 0.0 if args.once else args.rotate_grace)
    with stop_on_signals() as stop:
        return shipper.run(stop, once=args.once)
