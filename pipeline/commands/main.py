"""The headless ``lakewatch`` command line: one subcommand per pipeline module.

Each subcommand module exposes ``configure_parser(parser)`` and ``run(args, settings) -> int``
and is imported only when its subcommand runs, so ``lakewatch broker status`` never pays for
pyspark's import.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from pipeline import __version__
from pipeline.settings import ConfigError, Settings, load_settings

#: subcommand -> (module in pipeline.commands, help)
COMMANDS: dict[str, tuple[str, str]] = {
    "setup": ("setup", "download JVM artifacts (Kafka, Spark connector, Delta)"),
    "broker": ("broker", "start, stop or inspect the embedded Kafka broker"),
    "generate": ("generate", "produce realistic web-log events to Kafka"),
    "ship": ("ship", "tail an access log and ship every line to Kafka"),
    "process": ("process", "run the Spark streaming / batch jobs"),
    "detect": ("detect", "train, run or evaluate the anomaly detector"),
    "pipeline": ("pipeline", "start, stop, inspect the pipeline's components"),
    "sql": ("sql", "run a read-only Spark SQL query on the Delta tables"),
    "self-test": ("self_test", "end-to-end check: broker, Spark, one event into Delta"),
}


def build_parser(
    argv: Sequence[str] | None = None, prog: str = "lakewatch"
) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` gets its module imported."""
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if a in COMMANDS), None)
    parser = argparse.ArgumentParser(prog=prog, description="Lakewatch: real-time web-log pipeline")
    add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (leaf, help_text) in COMMANDS.items():
        module = f"{__package__}.{leaf}"
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module)
        if name != chosen:
            continue
        try:
            importlib.import_module(module).configure_parser(sp)
        except ModuleNotFoundError as exc:  # a subcommand whose module is not built yet
            if exc.name is None or not module.startswith(exc.name):
                raise
            sp.set_defaults(_missing=True)
    return parser


def add_global_options(parser: argparse.ArgumentParser, headless_flag: bool = True) -> None:
    parser.add_argument("--version", action="version", version=f"lakewatch {__version__}")
    parser.add_argument("--config", metavar="PATH", help="TOML config file")
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a config key, e.g. --set kafka.topic=web-logs (repeatable)",
    )
    if headless_flag:
        parser.add_argument(
            "--start-pipeline", action="store_true", help="run the whole pipeline headless"
        )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"--set {pair!r}: expected SECTION.KEY=VALUE")
        out[key.strip()] = value
    return out


def settings_from_args(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = parse_overrides(getattr(args, "set", []) or [])
    overrides.update({k: v for k, v in extra.items() if v is not None})
    return load_settings(getattr(args, "config", None), overrides)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the chosen subcommand (or the headless pipeline); return an exit code."""
    setup_logging(args.verbose)
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"lakewatch: {exc}", file=sys.stderr)
        return 2
    if args.start_pipeline:
        from pipeline.supervisor.daemon import run_foreground

        return run_foreground(settings)
    if getattr(args, "_missing", False):
        print(f"lakewatch: '{args.command}' is not available in this build", file=sys.stderr)
        return 2
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args, settings) or 0)
    except ConfigError as exc:
        print(f"lakewatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run_module(
    module: ModuleType, argv: Sequence[str] | None = None, prog: str | None = None
) -> int:
    """``python -m pipeline.<module>``: one subcommand module as a program of its own,
    with the same global options (``--config``, ``--set``, ``-v``) and error handling."""
    name = module.__spec__.name if module.__spec__ else module.__name__
    parser = argparse.ArgumentParser(
        prog=prog or f"python -m {name}",
        description=(module.__doc__ or "").strip().splitlines()[0],
    )
    add_global_options(parser, headless_flag=False)
    module.configure_parser(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        return int(module.run(args, settings_from_args(args)) or 0)
    except ConfigError as exc:
        print(f"lakewatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None and not args.start_pipeline:
        parser.print_help()
        return 0
    return dispatch(args, parser)


if __name__ == "__main__":
    raise SystemExit(main())
