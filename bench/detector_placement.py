"""Where should the anomaly detector run: inside the processor (one JVM) or as its own
process (two JVMs)? Measures memory (RSS) and CPU of the processor + detector process trees.

Baseline: ``in_processor`` (``lakewatch process --mode stream --with-detector``).
Candidate: ``separate`` (``process --mode stream`` + ``detect --mode stream``).
Both run the real components under the real Supervisor, against one shared embedded broker
(each run on its own topic and data dir), with the generator producing at ``--rate``
events/s. After ``--warmup`` seconds the trees are sampled every second for ``--window`` s.
Prints, per placement, the medians over ``--runs`` runs of: median RSS, peak RSS and CPU
(% of one core), then the separate / in_processor ratios.

    python bench/detector_placement.py --rate 200 --warmup 60 --window 30 --runs 1
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ports import free_port  # noqa: E402
from pipeline.kafka_config import ensure_topic  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402
from pipeline.signals import on_signals  # noqa: E402
from pipeline.status import read_status  # noqa: E402
from pipeline.supervisor.children import Supervisor  # noqa: E402
from pipeline.supervisor.daemon import build_specs  # noqa: E402

MEASURED = ("processor", "detector")
PLACEMENTS = ("in_processor", "separate")



def tree(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
    return out


def base_settings(data_dir: Path, args: argparse.Namespace):
    return load_settings(None, {
        "storage.data_dir": str(data_dir / "broker"),
        "broker.port": free_port(),
        "broker.controller_port": free_port(),
        "broker.heap_mb": 512,
        "generator.rate": args.rate,
        "spark.driver_memory": args.driver_memory,
    })


def wait_running(sup: Supervisor, what: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while sup.overall_state() != "running":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not running: {sup.snapshot()}")
        time.sleep(1)


def one_run(placement: str, base, data_dir: Path, args: argparse.Namespace) -> dict[str, float]:
    """Processor (+ detector) + generator on their own topic, against the shared broker."""
    settings = base.model_copy(deep=True)
    settings.storage.data_dir = data_dir
    settings.kafka.topic = f"bench-{data_dir.name}"
    settings.detector.in_processor = placement == "in_processor"
    ensure_topic(settings)
    specs = [s for s in build_specs(settings) if s.name != "broker"]
    sup = Supervisor(settings, specs)
    sup.want([s.name for s in specs])
    stop = threading.Event()
    thread = threading.Thread(target=sup.run, args=(stop, 0.5), daemon=True)
    thread.start()
    try:
        wait_running(sup, placement)
        # the components' own heartbeats say their Spark queries run (JVMs are up)
        measured = [n for n in MEASURED if n in sup.names]
        deadline = time.monotonic() + 600
        while not all(getattr(read_status(settings, n), "state", None) == "running"
                      and getattr(read_status(settings, n), "pid", None)
                      == sup.snapshot()[n]["pid"]
                      for n in measured):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{placement}: no running heartbeat from {measured}")
            time.sleep(1)
        time.sleep(args.warmup)
        pids = [r["pid"] for n, r in sup.snapshot().items() if n in MEASURED and r["pid"]]
        procs = [p for pid in pids for p in tree(pid)]
        cpu0, t0 = cpu_seconds(procs), time.monotonic()
        rss = []
        while time.monotonic() - t0 < args.window:
            total = 0
            for p in (p for pid in pids for p in tree(pid)):
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += p.memory_info().rss
            rss.append(total / 2**20)
            time.sleep(1.0)
        cpu1, wall = cpu_seconds(procs), time.monotonic() - t0
        crashes = sum(r["crashes"] for r in sup.snapshot().values())
        used = sum(cpu1[pid] - cpu0.get(pid, 0.0) for pid in cpu1)
        return {
            "rss_mb": statistics.median(rss),
            "peak_rss_mb": max(rss),
            "cpu_pct": 100.0 * used / wall,
            "processes": float(len(procs)),
            "crashes": float(crashes),
        }
    finally:
        stop.set()
        thread.join(300)


def _interrupt(signum: int) -> None:
    """SIGTERM (a timeout) unwinds like Ctrl+C, so the supervisors stop every component."""
    raise KeyboardInterrupt


def main() -> int:
    on_signals(_interrupt, (signal.SIGTERM,))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--warmup", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--driver-memory", default="1g")
    parser.add_argument("--only", choices=PLACEMENTS, help="measure one placement (no ratio)")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {
        p: [] for p in PLACEMENTS if args.only in (None, p)
    }
    with tempfile.TemporaryDirectory(prefix="lakewatch-bench-") as tmp:
        base = base_settings(Path(tmp), args)
        broker = Supervisor(base, [s for s in build_specs(base) if s.name == "broker"])
        broker.want(["broker"])
        stop = threading.Event()
        thread = threading.Thread(target=broker.run, args=(stop, 0.5), daemon=True)
        thread.start()
        try:
            wait_running(broker, "broker")
            for i in range(args.runs):
                for placement in results:  # interleaved: drift in machine load hits both
                    res = one_run(placement, base, Path(tmp) / f"{placement}-{i}", args)
                    results[placement].append(res)
                    print(f"run {i + 1} {placement:>12}: " + ", ".join(
                        f"{k} {v:,.1f}" for k, v in res.items()), flush=True)
        finally:
            stop.set()
            thread.join(120)
    med = {p: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for p, rs in results.items()}
    if args.only:
        return 0
    print(f"\nmedians over {args.runs} run(s), rate {args.rate:g}/s, window {args.window:g} s")
    print(f"{'metric':<14}{'in_processor':>14}{'separate':>12}{'ratio':>9}")
    for k in ("rss_mb", "peak_rss_mb", "cpu_pct", "processes"):
        a, b = med["in_processor"][k], med["separate"][k]
        print(f"{k:<14}{a:>14,.1f}{b:>12,.1f}{(b / a if a else float('nan')):>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
