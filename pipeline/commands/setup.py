"""``lakewatch setup``: fill the jar cache from Maven Central (a second run downloads nothing)."""

from __future__ import annotations

import argparse
import sys

from pipeline.jvm.artifacts import ResolveError, setup_all
from pipeline.jvm.java import JavaError
from pipeline.settings import Settings


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print per-group stats as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    print(f"Resolving JVM artifacts into {settings.jars_dir}")
    try:
        stats = setup_all(settings)
    except (ResolveError, JavaError) as exc:
        print(f"lakewatch setup: {exc}", file=sys.stderr)
        return 1
    total = sum(s["bytes"] for s in stats.values())
    downloaded = [name for name, s in stats.items() if s["downloaded"]]
    print(f"jar cache: {total / 1e6:.1f} MB; downloaded: {', '.join(downloaded) or 'nothing'}")
    if args.json:
        import json

        print(json.dumps(stats))
    return 0
