"""``lakewatch self-test``: one event through the real pipeline, headless, in about a minute.

The steps are :func:`pipeline.self_test.run_self_test`'s; a line is printed per step and the
exit code is 0 only if every step passed, else 1.
"""

from __future__ import annotations

import argparse
import json

from pipeline.self_test import passed, run_self_test
from pipeline.settings import Settings


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    results = run_self_test(settings, extra_steps=getattr(args, "extra_steps", ()))
    if getattr(args, "json", False):
        print(json.dumps([r.__dict__ for r in results]))
    return 0 if passed(results) else 1
