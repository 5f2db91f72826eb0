"""``lakewatch detect``: train, run or evaluate the anomaly detector (``pipeline.detection``).

- ``--mode train [--from T] [--to T]``: fit the IsolationForest (and learn log templates) on
  the ``metrics`` / ``logs`` history and save the model with its versions.
- ``--mode stream``: follow ``metrics``; new windows' anomalies go to the ``anomalies`` Delta
  table (MERGE on the deterministic ``anomaly_id``); heartbeat in ``run/detector.status.json``;
  retrains every ``detector.retrain_every_s``; SIGTERM / SIGINT stop it cleanly.
- ``--mode analyze [--from T] [--to T] [--labels FILE] [--output FILE]``: one batch over a
  time range; with the generator's labels file prints precision / recall / F1 / delay per kind
  and writes them as JSON.

Times are ISO 8601 (naive = UTC). The streaming processor hosts the stream mode in its own
process with :func:`pipeline.detection.runner.start_in_session`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from pipeline.settings import Settings
from pipeline.signals import stop_on_signals

log = logging.getLogger(__name__)

EXIT_USAGE = 2


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=("train", "stream", "analyze"), required=True)
    parser.add_argument("--from", dest="start", metavar="TIME",
                        help="first window (ISO 8601, UTC); default: oldest metrics")
    parser.add_argument("--to", dest="end", metavar="TIME",
                        help="end of the range, exclusive; default: newest metrics")
    parser.add_argument("--labels", type=Path, metavar="FILE",
                        help="analyze: generator ground-truth labels (JSON lines)")
    parser.add_argument("--output", type=Path, metavar="FILE",
                        help="analyze: write the result JSON here "
                             "(default with --labels: run dir / detector-evaluation.json)")
    parser.add_argument("--no-model", action="store_true",
                        help="analyze: robust baseline only, ignore the saved model")
    parser.add_argument("--no-write", action="store_true",
                        help="analyze: do not write the anomalies table")
    parser.add_argument("--seed", type=int, default=0, help="train: IsolationForest seed")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.delta_tables import WriterLockBusy
    from pipeline.detection.iforest import ModelVersionError
    from pipeline.detection.runner import parse_time

    try:
        start, end = parse_time(args.start), parse_time(args.end)
    except ValueError as exc:
        print(f"lakewatch detect: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.labels is not None and not args.labels.is_file():
        print(f"lakewatch detect: labels file {args.labels} does not exist", file=sys.stderr)
        return EXIT_USAGE
    from pipeline.spark_session_manager import get_spark

    spark = get_spark(settings)
    try:
        if args.mode == "train":
            return _train(spark, settings, start, end, args.seed)
        if args.mode == "analyze":
            return _analyze(spark, settings, start, end, args)
        return _stream(spark, settings)
    except (ModelVersionError, WriterLockBusy) as exc:
        print(f"lakewatch detect: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _train(spark, settings, start, end, seed) -> int:
    from pipeline.detection.runner import train

    try:
        model, path = train(spark, settings, start, end, seed=seed)
    except ValueError as exc:
        print(f"lakewatch detect: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps({"model": str(path), **model.describe()}, default=str))
    return 0


def _analyze(spark, settings, start, end, args) -> int:
    from pipeline.detection.runner import analyze

    output = args.output
    if output is None and args.labels is not None:
        output = settings.run_dir / "detector-evaluation.json"
    result = analyze(spark, settings, start, end, labels_path=args.labels, output=output,
                     use_model=not args.no_model, write=not args.no_write)
    print(f"windows={result['windows']} anomalies={result['anomalies']} "
          f"inserted={result['inserted']} by_kind={result['by_kind']}")
    ev = result.get("evaluation")
    if ev is not None:
        print(_table(ev))
    if output is not None:
        print(f"result written to {output}")
    return 0


def _table(ev: dict[str, Any]) -> str:
    head = f"{'kind':15s} {'labels':>6s} {'found':>6s} {'prec':>6s} {'recall':>6s} " \
           f"{'f1':>6s} {'delay':>6s} {'fp':>4s}"
    lines = [head]
    for kind, f in [*ev["per_kind"].items(), ("ALL", ev)]:
        delay = f["median_delay_windows"]
        lines.append(f"{kind:15s} {f['labels']:6d} {f['detected']:6d} {f['precision']:6.3f} "
                     f"{f['recall']:6.3f} {f['f1']:6.3f} "
                     f"{'-' if delay is None else format(delay, '6.1f'):>6s} "
                     f"{f['false_positives']:4d}")
    return "\n".join(lines)


def _stream(spark, settings) -> int:
    from pipeline.detection.runner import start_in_session

    def _log_stop_signal(signum: int) -> None:
        log.info("signal %s: stopping the detector", signum)

    with stop_on_signals(on_signal=_log_stop_signal) as stop:
        thread = start_in_session(spark, settings, stop)
        while thread.is_alive():
            thread.join(0.5)
    return 0
