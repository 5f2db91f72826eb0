"""Entry point of the PyInstaller bundle: the one ``lakewatch`` executable.

It is the desktop app, the headless CLI (``--start-pipeline``, ``self-test``, every pipeline
subcommand the app starts as a child process) and, when Spark asks for one with
``-m pyspark.daemon`` / ``-m pyspark.worker``, Spark's Python worker.
"""

from __future__ import annotations

import multiprocessing
import sys

from desktop_app import frozen


def main() -> int:
    module = frozen.python_module_request(sys.argv)
    if module is not None:
        frozen.run_python_module(module, sys.argv)
        return 0
    frozen.prepare_environment()
    from desktop_app.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    multiprocessing.freeze_support()
    raise SystemExit(main())
