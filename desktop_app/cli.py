"""The ``lakewatch`` entry point: a subcommand or ``--start-pipeline`` runs headless through
``pipeline.commands``; no subcommand opens the desktop window.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pipeline.commands import main as pipeline_cli
from pipeline.settings import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    parser = pipeline_cli.build_parser(argv)
    parser.description = (
        "Lakewatch: real-time web-log pipeline. Without a command, opens the desktop app."
    )
    args = parser.parse_args(argv)
    if args.command == "self-test":
        from desktop_app.self_check import extra_steps

        args.extra_steps = extra_steps()  # the offscreen Qt window step
    if args.command is not None or args.start_pipeline:
        return pipeline_cli.dispatch(args, parser)
    pipeline_cli.setup_logging(args.verbose)
    try:
        settings = pipeline_cli.settings_from_args(args)
    except ConfigError as exc:
        print(f"lakewatch: {exc}", file=sys.stderr)
        return 2
    from desktop_app.app import run_gui

    return run_gui(settings)


if __name__ == "__main__":
    raise SystemExit(main())
