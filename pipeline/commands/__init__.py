"""Command-line entry points: argument parsing, printing and exit codes, nothing else.

``main.py`` dispatches ``lakewatch <subcommand>``; each other module here is one subcommand
(``configure_parser(parser)`` and ``run(args, settings) -> int``) over the library below it.
"""
