"""``lakewatch sql``: run a script of Spark SQL statements on the Delta tables, with the
same engine and safety rules as the desktop workbench. Exit code 2 on refusal or error."""

from __future__ import annotations

import argparse
import os
import sys
import time

from pipeline.settings import Settings
from pipeline.sql.output import FORMATS, write_rows


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help="SQL text (statements separated by ;), or - for stdin")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format")
    parser.add_argument("--limit", type=int, default=None, help="row cap (default sql.row_cap)")
    parser.add_argument("--explain", action="store_true", help="print the plan, do not run")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.sql.engine import SqlEngine
    from pipeline.sql.history import QueryHistory
    from pipeline.sql.splitter import split_statements

    script = sys.stdin.read() if args.query == "-" else args.query
    statements = split_statements(script)
    if not statements:
        print("lakewatch sql: no statement given", file=sys.stderr)
        return 2
    engine = SqlEngine(settings)
    history = QueryHistory.for_settings(settings)
    # The JVM inherits fd 1 and logs there; results alone must reach stdout, so the JVM
    # (and anything else) gets stderr as its stdout while results use a private copy.
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    out = os.fdopen(os.dup(saved), "w", encoding="utf-8")
    try:
        return _run_statements(args, engine, history, script, statements, out)
    finally:
        out.flush()
        out.close()
        os.dup2(saved, 1)
        os.close(saved)


def _run_statements(args, engine, history, script, statements, out) -> int:
    from pipeline.sql.errors import RefusedError, SqlError
    from pipeline.sql.errors_spark import shift

    try:
        engine.start()
    except Exception as exc:  # noqa: BLE001 - Spark could not start: say why, exit 2
        print(f"lakewatch sql: cannot start Spark: {exc}", file=sys.stderr)
        return 2
    for stmt in statements:
        started = time.monotonic()
        try:
            if args.explain:
                print(engine.explain(stmt.text), file=out)
                continue
            result = engine.execute(stmt.text, row_cap=args.limit)
            rows = result.fetch_all()
        except SqlError as err:
            err = shift(err, script, stmt.start)
            status = "refused" if isinstance(err, RefusedError) else "error"
            history.add(stmt.text, status, error=err.message)
            where = f"line {err.line}, column {err.column}: " if err.line else ""
            print(f"lakewatch sql: {where}{err.message}", file=sys.stderr)
            return 2
        elapsed_ms = int((time.monotonic() - started) * 1000)
        history.add(stmt.text, "ok", rows=len(rows), elapsed_ms=elapsed_ms)
        write_rows(out, result.columns, rows, args.format)
        if result.truncated:
            print(f"lakewatch sql: result cut at {len(rows)} rows (row cap)", file=sys.stderr)
    return 0
