"""Anomaly-detection benchmark: seeded generator with random scenarios -> metrics -> detector.

Metrics are computed by the pandas mirror of the processor's metrics
(``pipeline.detection.features.events_to_metrics``), not by Spark/Kafka, so the figures
measure the detector alone. Each run draws its scenarios from ``seed + run``; the
detector learns on the scenario-free warm-up (first 20 % of the span), trains its
IsolationForest there, then scores the rest. Three detector configurations per run:

- ``combined``: robust baseline + IsolationForest + log patterns (what ships),
- ``baseline``: robust baseline + log patterns, no forest (the named baseline),
- ``iforest``: IsolationForest verdicts only (+ log patterns).

Prints one line per run and configuration, then medians over runs (and the worst run's
FP/h and F1) and ratios vs ``baseline``; the last line is one JSON object with the combined
figures (precision, recall, f1, median_delay_windows, false_positives_per_hour) plus
per-kind F1, the worst run and the other configurations' figures. ``--seeds 101-110`` (or
``101,105``) runs exactly those seeds, e.g. fresh ones nobody tuned the detector on.

``--pipeline`` runs the real path instead of the pandas mirror: an embedded broker, the
generator as its own process (``--scenarios random``, ground-truth labels file, unthrottled,
simulated time starting ``sim-hours`` + 1 h ago), the streaming processor (``available_now``:
parse -> ``logs``, windowed ``metrics`` with watermarks -> Delta), then the detector on the
``metrics`` and ``logs`` Delta tables, scored against the labels the generator wrote.

    python bench/detection.py --seed 7 --sim-hours 1 --runs 3
    python bench/detection.py --seeds 101-110 --sim-hours 6 --configs combined
    python bench/detection.py --pipeline --seed 7 --sim-hours 24 --scenarios 24 --rate 20 --runs 1

A ``--pipeline`` run keeps its Delta tables and labels (it prints where); ``--replay DIR``
scores them again with the current detector, without the hour of generating and processing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ports import free_port  # noqa: E402
from pipeline.detection.engine import Detector, DetectorConfig  # noqa: E402
from pipeline.detection.evaluation import evaluate, labels_from  # noqa: E402
from pipeline.detection.features import events_to_metrics  # noqa: E402
from pipeline.detection.simulate import SIM_START_MS, simulate_events  # noqa: E402
from pipeline.sources.scenarios import INJECTABLE_KINDS, random_scenarios  # noqa: E402

START_MS = SIM_START_MS
WARMUP_SHARE = 0.2
CONFIGS = {
    "combined": {"use_baseline": True, "use_iforest": True},
    "baseline": {"use_baseline": True, "use_iforest": False},
    "iforest": {"use_baseline": False, "use_iforest": True},
}
HEADLINE = ("precision", "recall", "f1", "median_delay_windows", "false_positives_per_hour")


def generate(seed: int, sim_hours: float, rate: float, n_scenarios: int):
    """Events (DataFrame) and labels of one seeded simulated span."""
    scenarios = random_scenarios(seed, sim_hours * 3600, n=n_scenarios,
                                 warmup_share=WARMUP_SHARE)
    return simulate_events(seed, sim_hours * 3600, rate, scenarios, start_ms=START_MS)


def run_detector(metrics: pd.DataFrame, logs: pd.DataFrame, warmup_end: pd.Timestamp,
                 **flags) -> pd.DataFrame:
    det = Detector(DetectorConfig(**flags))
    early = metrics[metrics["window_start"] < warmup_end]
    late = metrics[metrics["window_start"] >= warmup_end]
    ts = logs["ts"]
    logs_ts = ts if pd.api.types.is_datetime64_any_dtype(ts) else pd.to_datetime(
        ts.astype("int64"), unit="ms")
    first = det.process(early, logs[logs_ts < warmup_end])
    det.end_learning()
    if flags.get("use_iforest", True):
        det.train(seed=0)
    rest = det.process(late, logs[logs_ts >= warmup_end])
    return pd.concat([first, rest], ignore_index=True) if len(first) else rest


class PipelineSource:
    """Events through the real pipeline: generator process -> Kafka -> processor -> Delta."""

    def __init__(self) -> None:
        import tempfile

        from pipeline.broker import EmbeddedBroker
        from pipeline.settings import load_settings
        from pipeline.spark_session_manager import get_spark

        self.tmp = Path(tempfile.mkdtemp(prefix="lakewatch-bench-detect-"))
        self.base = load_settings(None, {
            "storage.data_dir": str(self.tmp / "data"), "broker.port": free_port(),
            "broker.controller_port": free_port(), "processor.trigger_interval": "1 second",
            "processor.watermark": "30 seconds", "processor.max_offsets_per_trigger": 500_000,
        })
        self.broker = EmbeddedBroker(self.base)
        self.spark = get_spark(self.base)

    def generate(self, seed: int, sim_hours: float, rate: float, n_scenarios: int):
        """(metrics, logs, labels, warmup_end) of one seeded span, read back from Delta."""
        import subprocess

        from pipeline.components import child_env
        from pipeline.kafka_config import ensure_topic
        from pipeline.runners.stream_job import StreamRunner

        s = self.base.model_copy(deep=True)
        s.storage.data_dir = self.tmp / f"seed-{seed}"
        s.kafka.topic = f"bench-detect-{seed}"
        if self.broker.running_pid() is None:
            self.broker.start()
        ensure_topic(s)
        labels_path = self.tmp / f"labels-{seed}.jsonl"
        start_ms = int(time.time() * 1000) - int((sim_hours + 1) * 3600_000)
        # bounded by simulated time, not by a count: surges and scans add events, and a
        # count ran out hours before the day (and its last scenarios) ended
        argv = [sys.executable, "-m", "pipeline.log_generator",
                "--duration", str(round(sim_hours * 3600)),
                "--rate", str(rate), "--speedup", "1", "--start-time", str(start_ms),
                "--seed", str(seed), "--scenarios", "random", "--scenario-count",
                str(n_scenarios), "--labels", str(labels_path), "--no-throttle"]
        t0 = time.perf_counter()
        done = subprocess.run(argv, env=child_env(s), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"generator failed: {done.stderr[-2000:]}")
        t1 = time.perf_counter()
        runner = StreamRunner(self.spark, s, available_now=True)
        if runner.run() != 0:
            raise RuntimeError(f"processor failed: {runner.error}")
        t2 = time.perf_counter()
        print(f"seed {seed}: {sim_hours} simulated hours generated -> Kafka in {t1 - t0:.0f} s, "
              f"processed into Delta in {t2 - t1:.0f} s; kept in {s.storage.data_dir} "
              "(--replay)",
              flush=True)
        return self.replay(s.storage.data_dir, labels_path, sim_hours)

    def replay(self, data_dir: Path, labels_path: Path, sim_hours: float):
        """(metrics, logs, labels, warmup_end) read back from a pipeline run's Delta tables.

        ``--replay`` scores a kept run again (a detector change needs no new run); the span
        starts at its first metrics window.
        """
        from pipeline.detection import delta_io
        from pipeline.detection.evaluation import read_labels

        s = self.base.model_copy(deep=True)
        s.storage.data_dir = Path(data_dir)
        metrics = delta_io.read_metrics(self.spark, s, "10s")
        if metrics.empty:
            raise RuntimeError(f"no 10s metrics under {data_dir}")
        lo = pd.Timestamp(metrics["window_start"].min())
        hi = pd.Timestamp(metrics["window_end"].max())
        logs = delta_io.read_logs(self.spark, s, lo, hi)
        print(f"logs rows {len(logs)}, metrics 10s rows {len(metrics)}", flush=True)
        warmup_end = lo + pd.Timedelta(hours=sim_hours * WARMUP_SHARE)
        return metrics, logs, read_labels(labels_path), warmup_end

    def close(self) -> None:
        from pipeline.spark_session_manager import stop_spark

        stop_spark()
        self.broker.stop()


def parse_seeds(text: str) -> list[int]:
    """'101-110' / '101,103,105' / '101-103,200' -> the seeds, in order."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        seeds.extend(range(int(lo), int(hi or lo) + 1))
    if not seeds:
        raise argparse.ArgumentTypeError(f"no seeds in {text!r}")
    return seeds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sim-hours", type=float, default=0.5)
    ap.add_argument("--runs", type=int, default=3, help="runs (seeds seed..seed+runs-1)")
    ap.add_argument("--seeds", type=parse_seeds, default=None,
                    help="exact seeds instead of --seed/--runs: 101-110 or 101,103")
    ap.add_argument("--rate", type=float, default=100.0, help="events per simulated second")
    ap.add_argument("--scenarios", type=int, default=len(INJECTABLE_KINDS),
                    help="scenarios per run (kinds cycle)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="which configurations")
    ap.add_argument("--pipeline", action="store_true",
                    help="real broker + generator process + Spark processor + Delta")
    ap.add_argument("--replay", type=Path, metavar="DIR",
                    help="score the Delta tables a --pipeline run kept in DIR again "
                         "(its seed-N/ and labels-N.jsonl; same --seed/--runs/--sim-hours)")
    args = ap.parse_args(argv)
    source = PipelineSource() if args.pipeline or args.replay else None
    try:
        return _run(args, source)
    finally:
        if source is not None:
            source.close()


def _run(args: argparse.Namespace, source: PipelineSource | None) -> int:
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    results: dict[str, list[dict]] = {c: [] for c in configs}
    seeds = args.seeds or [args.seed + run for run in range(args.runs)]
    args.runs = len(seeds)
    for run, seed in enumerate(seeds):
        t0 = time.perf_counter()
        if args.replay:
            metrics, logs, labels, warmup_end = source.replay(
                args.replay / f"seed-{seed}", args.replay / f"labels-{seed}.jsonl",
                args.sim_hours)
        elif source is not None:
            metrics, logs, labels, warmup_end = source.generate(
                seed, args.sim_hours, args.rate, args.scenarios)
        else:
            events, labels = generate(seed, args.sim_hours, args.rate, args.scenarios)
            labels = labels_from(labels)
            metrics = events_to_metrics(events, "10s")
            logs = events[["ts", "message", "level", "status"]]
            warmup_end = pd.Timestamp(START_MS, unit="ms") + pd.Timedelta(
                hours=args.sim_hours * WARMUP_SHARE)
        t_gen = time.perf_counter() - t0
        for name in configs:
            t1 = time.perf_counter()
            anomalies = run_detector(metrics, logs, warmup_end, **CONFIGS[name])
            elapsed = time.perf_counter() - t1
            r = evaluate(anomalies, labels, "10s", sim_hours=args.sim_hours)
            r["seconds"] = round(elapsed, 2)
            results[name].append(r)
            missed = [f"{d['kind']}@{d['entity']}" for d in r["labels_detail"]
                      if not d["detected"]]
            print(f"run {run} seed {seed} {name:8s} events={len(logs)} "
                  f"gen+metrics={t_gen:.1f}s detect={elapsed:.1f}s "
                  + " ".join(f"{k}={r[k]}" for k in HEADLINE)
                  + (f" missed={missed}" if missed else "")
                  + (f" fp={r['false_positive_incidents']}" if r["false_positives"] else ""),
                  flush=True)

    def med(name: str, key: str):
        vals = [r[key] for r in results[name] if r.get(key) is not None]
        return round(statistics.median(vals), 4) if vals else None

    summary: dict[str, dict] = {}
    for name in configs:
        summary[name] = {k: med(name, k) for k in HEADLINE}
        kinds = sorted({k for r in results[name] for k in r["per_kind"]})
        summary[name]["per_kind_f1"] = {
            k: round(statistics.median(r["per_kind"][k]["f1"] for r in results[name]
                                       if k in r["per_kind"]), 4) for k in kinds}
        summary[name]["detect_seconds"] = med(name, "seconds")
        summary[name]["worst"] = {
            "false_positives_per_hour": max(r["false_positives_per_hour"]
                                            for r in results[name]),
            "f1": min(r["f1"] for r in results[name])}
        print(f"median over {args.runs} runs, {name}: {json.dumps(summary[name])}")
    if "baseline" in summary:
        base = summary["baseline"]
        for name in configs:
            if name == "baseline":
                continue
            ratios = {k: (round(summary[name][k] / base[k], 3) if base[k] else None)
                      for k in ("f1", "precision", "recall")}
            print(f"ratio {name}/baseline: {json.dumps(ratios)}")
    head = summary.get("combined") or summary[configs[0]]
    final = {k: head[k] for k in HEADLINE}
    final.update({
        "per_kind_f1": head["per_kind_f1"], "worst": head["worst"],
        "metrics_source": ("Delta metrics from the real pipeline" if source is not None
                           else "pandas mirror (events_to_metrics)"),
        "seeds": seeds, "runs": args.runs, "sim_hours": args.sim_hours,
        "rate_per_s": None if args.replay else args.rate,
        "replayed_from": str(args.replay) if args.replay else None,
        **{f"{name}_only" if name != "combined" else name: {k: summary[name][k]
                                                             for k in HEADLINE}
           for name in configs if name != "combined"},
    })
    print(json.dumps(final))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
