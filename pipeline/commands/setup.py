"""``lakewatch setup``: fill the jar cache from Maven Central (a second run downloads nothing),
and compile :mod:`pipeline.jvm.nio_fs` and :mod:`pipeline.jvm.connect_guard` when a JDK is
there."""

from __future__ import annotations

import argparse
import sys

from pipeline.jvm.artifacts import ResolveError, setup_all
from pipeline.jvm.connect_guard import build_guard_jar
from pipeline.jvm.java import JavaError
from pipeline.jvm.nio_fs import build_nio_fs_jar
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
    try:
        jar, remark = build_nio_fs_jar(settings)
    except RuntimeError as exc:  # a broken JDK must not stop the setup: stock Hadoop still works
        jar, remark = None, str(exc)
    print(f"local file system without a chmod per file: {jar or 'not built'} ({remark})")
    try:
        jar, remark = build_guard_jar(settings)
    except RuntimeError as exc:  # without it the app runs SQL in its own session, as before
        jar, remark = None, str(exc)
    print(f"read-only guard of the processor's SQL endpoint: {jar or 'not built'} ({remark})")
    if args.json:
        import json

        print(json.dumps(stats))
    return 0
