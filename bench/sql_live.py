"""Interactive SQL on the live lakehouse (issue 20's "Done when"), with the pipeline running.

The embedded pipeline as the app runs it: the broker (:class:`~pipeline.broker.EmbeddedBroker`),
the processor as its own process with the app's argv (``component_argv``: ``process --mode
stream`` + the in-process detector, which serves the SQL endpoint), and the real generator.
Prefill: ``--rows`` events produced as fast as the generator goes (``bench.floor.fill_topic``:
event times ending about now), then the generator paced at ``--rate`` from the processor's
start; the figures are taken once ``logs`` holds ``--rows`` rows and the processor has caught
up (lag under 30 s of events).

Each client is a fresh Python process (this script, ``--worker``) with offscreen Qt that opens
the app's SQL tab (:class:`~desktop_app.sql.workbench.SqlWorkbench`, which runs Spark work
through ``SqlService``/``SqlEngine``) and presses Run on its default query; measured:

* first answer: constructing the tab (and so its ``SqlEngine``) -> the first page of
  ``SELECT * FROM logs ORDER BY ts DESC LIMIT 100`` shown (target <= 3 s), plus the same from
  the process's start (interpreter and imports included);
* that query and the last-hour ``GROUP BY endpoint`` warm, Run -> result shown (<= 1 s, <= 2 s);
* Spark JVMs in this run's process tree while the client is up (target 1), and the client's
  resident memory: its process plus any JVM it owns;
* ``lakewatch sql`` from a fresh shell, wall time (<= 5 s);
* at the end: ``logs`` files (DESCRIBE DETAIL numFiles) and rows.

Baseline, same run: the same client with its own local SparkSession (``sql.connect = false``).
Every figure: median, min, max of its runs.

Usage: ``python bench/sql_live.py [--rows 1000000] [--rate 1500] [--runs 5]
[--baseline-runs N] [--data-dir DIR] [--keep] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LATEST = "SELECT * FROM logs ORDER BY ts DESC LIMIT 100"
LAST_HOUR = ("SELECT endpoint, count(*), avg(latency_ms) FROM logs "
             "WHERE ts > current_timestamp() - INTERVAL 1 HOUR GROUP BY endpoint")
SPARK_MAIN = "org.apache.spark.deploy.SparkSubmit"
WAIT_S = 900.0  # longest a client waits for one answer
FILL_LIMIT_S = 3600.0  # longest wait for the prefill to land in logs
_CLIENTS: list[subprocess.Popen] = []  # stopped on exit, whatever happened


# -- client (a fresh process) ----------------------------------------------------------------
def worker(warm: int) -> int:
    """Open the SQL tab offscreen, run its default query, then ``warm`` timed runs of each
    query; print ``RESULT {json}`` and stay up until stdin closes (the parent counts JVMs and
    memory meanwhile)."""
    import psutil
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop_app.sql.workbench import SqlWorkbench
    from pipeline.settings import load_settings

    app = QApplication.instance() or QApplication(["sql-live"])
    settings = load_settings(None)
    out: dict[str, object] = {}

    def run(wb: SqlWorkbench, sql: str | None) -> tuple[float, int]:
        """Run (the editor's text, or ``sql`` put there first) -> result shown, seconds."""
        box: dict[str, object] = {}
        loop = QEventLoop()

        def done(value: object) -> None:
            box["value"] = value
            loop.quit()

        wb.resultShown.connect(done)
        wb.errorShown.connect(done)
        QTimer.singleShot(int(WAIT_S * 1000), loop.quit)
        started = time.perf_counter()
        if sql is not None:
            wb.editor().set_text(sql)
        wb.run_statement()
        if "value" not in box:
            loop.exec()
        seconds = time.perf_counter() - started
        wb.resultShown.disconnect(done)
        wb.errorShown.disconnect(done)
        value = box.get("value")
        if value is None:
            raise RuntimeError(f"no answer within {WAIT_S:g} s")
        if not hasattr(value, "row_count"):
            raise RuntimeError(f"query failed: {value}")
        return seconds, value.row_count

    try:
        t0 = time.perf_counter()
        wb = SqlWorkbench(settings)  # builds SqlService -> SqlEngine
        wb.resize(1200, 800)
        wb.show()  # the tab opens: Spark (or the endpoint) starts on a worker thread
        _, rows = run(wb, None)  # Run on the default query, queued until ready
        out.update(first_s=time.perf_counter() - t0, first_rows=rows,
                   first_from_process_s=time.time() - psutil.Process().create_time(),
                   remote=wb.service.engine.is_remote)
        for name, sql in (("latest", LATEST), ("last_hour", LAST_HOUR)):
            if not warm:
                break
            run(wb, sql)  # warm-up, not measured
            times, n = [], 0
            for _ in range(warm):
                seconds, n = run(wb, sql)
                times.append(seconds)
            out[name] = times
            out[f"{name}_rows"] = n
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which prints it
        out["error"] = f"{type(exc).__name__}: {exc}"
    print("RESULT " + json.dumps(out), flush=True)
    sys.stdin.readline()  # the parent measures this process while it is up
    app.processEvents()
    with contextlib.suppress(Exception):
        from pipeline.spark_session_manager import stop_spark

        stop_spark()
    return 0


# -- processes -------------------------------------------------------------------------------
def spark_jvms(root: int) -> list[int]:
    """Spark JVMs (``SparkSubmit``) among ``root``'s descendants (the broker is not one)."""
    import psutil

    found = []
    for p in psutil.Process(root).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if p.name().startswith("java") and SPARK_MAIN in " ".join(p.cmdline()):
                found.append(p.pid)
    return found


def machine_spark_jvms() -> int:
    """Spark JVMs on the whole machine (other users of this machine included)."""
    import psutil

    n = 0
    for p in psutil.process_iter(["name", "cmdline"]):
        if (p.info["name"] or "").startswith("java") and SPARK_MAIN in " ".join(
                p.info["cmdline"] or []):
            n += 1
    return n


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants (a local session's JVM), MB."""
    import psutil

    proc = psutil.Process(pid)
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 1e6


def stop_tree(proc: subprocess.Popen, grace_s: float = 60.0) -> None:
    """SIGTERM ``proc`` (it stops its own JVM), then kill whatever of its tree is left."""
    import psutil

    if proc.poll() is None:
        try:
            kids = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            kids = []
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        for k in kids:
            with contextlib.suppress(psutil.Error):
                k.kill()


def drain(stream, keep: deque) -> threading.Thread:
    """Read a child's pipe to its end (a full pipe would block the child)."""
    def run() -> None:
        for line in stream:
            keep.append(line.rstrip())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


class Client:
    """One run of :func:`worker` in a fresh process; ``result`` once it has answered."""

    def __init__(self, settings, cwd: Path, log: Path, warm: int) -> None:
        from pipeline.components import child_env

        env = child_env(settings)
        env["QT_QPA_PLATFORM"] = "offscreen"
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", "--runs", str(warm)],
            env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=log.open("ab"), text=True)
        _CLIENTS.append(self.proc)
        self.watchdog = threading.Timer(2 * WAIT_S + 120, self.proc.kill)
        self.watchdog.daemon = True  # never holds up this process's exit
        self.watchdog.start()
        self.result: dict = {"error": "the client exited without a result"}
        for line in self.proc.stdout:
            if line.startswith("RESULT "):
                self.result = json.loads(line[7:])
                break

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            stop_tree(self.proc, 10)
        self.watchdog.cancel()


# -- the pipeline ----------------------------------------------------------------------------
def processor_status(settings) -> dict:
    from pipeline.status import PROCESSOR, read_status

    st = read_status(settings, PROCESSOR)
    return {} if st is None else st.model_dump()


def wait_filled(settings, proc: subprocess.Popen, rows: int, rate: float, max_wait_s: float,
                log: Path) -> dict:
    """Until ``logs`` holds ``rows`` rows with the SQL endpoint published (required; at most
    ``FILL_LIMIT_S``) and the lag is under 30 s of events (waited for ``max_wait_s`` at most:
    a loaded machine may not keep up with ``rate``)."""
    from pipeline.sql.endpoint import find

    t0 = time.monotonic()
    last_print, st = 0.0, {}
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-30:]
            raise RuntimeError(f"the processor exited ({proc.returncode}):\n" + "\n".join(tail))
        st = processor_status(settings)
        logged, lag = st.get("rows_logged_total") or 0, st.get("lag")
        filled = logged >= rows and find(settings) is not None
        ready = filled and lag is not None and lag <= 30 * rate
        elapsed = time.monotonic() - t0
        if elapsed > FILL_LIMIT_S:
            raise RuntimeError(f"logs holds {logged:,} rows after {elapsed:.0f} s, not {rows:,}")
        late = filled and elapsed > max_wait_s
        if ready or late or elapsed - last_print >= 30:
            last_print = elapsed
            print(f"  {elapsed:5.0f} s: logs {logged:,} rows, lag {lag}, endpoint "
                  f"{'up' if find(settings) else 'not yet'}", flush=True)
        if ready or late:
            return {"caught_up": ready, "seconds": elapsed, "rows_logged": logged, "lag": lag}
        time.sleep(3)


def table_facts(settings, timeout_s: float = 180.0) -> dict:
    """Rows and files of ``logs`` through the processor's endpoint (no JVM here; a longer
    wait for it than the app's ``sql.connect_timeout_s``: these are facts, not timings)."""
    from pipeline.sql.endpoint import find
    from pipeline.sql.remote import open_session

    endpoint = find(settings)
    spark = None if endpoint is None else open_session(endpoint, timeout_s)
    if spark is None:
        return {"error": "the SQL endpoint did not answer"}
    try:
        detail = spark.sql("DESCRIBE DETAIL logs").collect()[0].asDict()
        rows = spark.sql("SELECT count(*) FROM logs").collect()[0][0]
        return {"files": int(detail["numFiles"]), "bytes": int(detail["sizeInBytes"]),
                "rows": int(rows)}
    finally:
        with contextlib.suppress(Exception):
            spark.stop()


def cli_wall(settings, cwd: Path) -> tuple[float, int, str, bool]:
    """``lakewatch sql "<LATEST>"`` from a fresh shell: wall seconds, rows printed, error,
    and whether it ran on the endpoint (it says so when it falls back to its own Spark)."""
    from pipeline.components import child_env

    exe = Path(sys.executable).with_name("lakewatch")
    argv = [str(exe), "sql", LATEST, "--format", "csv"]
    started = time.perf_counter()
    done = subprocess.run(argv, env=child_env(settings), cwd=cwd, capture_output=True,
                          text=True, timeout=WAIT_S)
    seconds = time.perf_counter() - started
    rows = max(0, len(done.stdout.strip().splitlines()) - 1)  # header line
    err = "" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["?"])[-1]
    return seconds, rows, err, "using a local Spark session" not in done.stderr


# -- report ----------------------------------------------------------------------------------
def stats(values: list[float]) -> dict:
    return ({"median": statistics.median(values), "min": min(values), "max": max(values),
             "n": len(values), "runs": values} if values else {"n": 0})


def row(name: str, values: list[float], target: tuple[str, float] | None = None,
        baseline: list[float] | None = None, unit: str = "s") -> dict:
    out = {"figure": name, "unit": unit, **stats(values)}
    if target is not None:
        op, bound = target
        out["target"] = f"{op} {fmt(bound, unit)} {unit}"
        if values:
            med = out["median"]
            out["ok"] = {"<=": med <= bound, ">=": med >= bound, "==": med == bound}[op]
    if baseline is not None:
        out["baseline"] = stats(baseline)
    return out


def fmt(v: float, unit: str) -> str:
    return f"{v:,.0f}" if unit in ("MB", "rows", "files", "JVMs", "ev/s") else f"{v:.2f}"


def print_table(rows: list[dict], title: str) -> None:
    print(f"\n== {title} ==")
    head = f"{'figure':<44} {'median':>9} {'min':>9} {'max':>9} {'n':>3}  {'target':<18} " \
           f"{'baseline (local session) med [min-max]':<38} verdict"
    print(head)
    print("-" * len(head))
    for r in rows:
        u = r["unit"]
        cells = ([fmt(r[k], u) for k in ("median", "min", "max")] if r["n"] else ["-"] * 3)
        b = r.get("baseline")
        base = (f"{fmt(b['median'], u)} [{fmt(b['min'], u)}-{fmt(b['max'], u)}] (n={b['n']})"
                if b and b.get("n") else "-")
        verdict = "-" if "ok" not in r else ("ok" if r["ok"] else "MISSED")
        print(f"{r['figure'] + f' ({u})':<44} {cells[0]:>9} {cells[1]:>9} {cells[2]:>9} "
              f"{r['n']:>3}  {r.get('target', '-'):<18} {base:<38} {verdict}")


# -- main ------------------------------------------------------------------------------------
def measure_clients(settings, tmp: Path, runs: int, warm: int, label: str) -> dict:
    """``runs`` fresh clients; the first also does the warm runs and is measured (JVMs,
    memory) while up."""
    out: dict[str, list] = {"first": [], "first_process": [], "latest": [], "last_hour": [],
                            "jvms": [], "rss": [], "errors": [], "remote": []}
    for i in range(runs):
        t0 = time.monotonic()
        c = Client(settings, tmp, tmp / "logs" / f"client-{label}-{i}.log", warm if i == 0 else 0)
        try:
            r = c.result
            if "error" in r:
                out["errors"].append(r["error"])
            if "first_s" in r:
                out["first"].append(r["first_s"])
                out["first_process"].append(r["first_from_process_s"])
                out["remote"].append(r["remote"])
            if i == 0 and c.proc.poll() is None:
                out["jvms"].append(len(spark_jvms(os.getpid())))
                out["machine_jvms"] = machine_spark_jvms()
                out["rss"].append(tree_rss_mb(c.proc.pid))
                out["latest"], out["last_hour"] = r.get("latest", []), r.get("last_hour", [])
                out["rows"] = {k: r.get(f"{k}_rows") for k in ("first", "latest", "last_hour")}
        finally:
            c.close()
        print(f"  {label} client {i + 1}/{runs}: first answer {r.get('first_s', float('nan')):.2f}"
              f" s (process {r.get('first_from_process_s', float('nan')):.2f} s, remote "
              f"{r.get('remote')}, {r.get('first_rows')} rows)"
              + (f"; warm latest {[round(x, 2) for x in out['latest']]}, last hour "
                 f"{[round(x, 2) for x in out['last_hour']]}; Spark JVMs {out['jvms']}, "
                 f"client RSS {[round(x) for x in out['rss']]} MB" if i == 0 else "")
              + (f"; ERROR {r['error']}" if "error" in r else "")
              + f" [{time.monotonic() - t0:.0f} s]", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=1500.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--baseline-runs", type=int, default=None,
                    help="fresh local-session clients (default --runs; 0: no baseline)")
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="parent of this run's temporary directory (default: the system's)")
    ap.add_argument("--keep", action="store_true", help="keep the run's directory")
    ap.add_argument("--max-wait", type=float, default=900.0,
                    help="seconds to wait for the processor to catch up (once logs holds "
                         "--rows rows) before measuring anyway")
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.runs)
    baseline_runs = args.runs if args.baseline_runs is None else args.baseline_runs

    from bench.end_to_end import start_generator, topic_end
    from bench.floor import fill_topic
    from bench.ports import free_port
    from pipeline.broker import EmbeddedBroker
    from pipeline.components import PROCESSOR, child_env, component_argv
    from pipeline.settings import load_settings

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleanup below runs
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="lakewatch-sql-live-", dir=args.data_dir))
    (tmp / "logs").mkdir()
    settings = load_settings(None, {
        "storage.data_dir": str(tmp / "data"), "broker.port": free_port(),
        "broker.controller_port": free_port()})
    local = settings.model_copy(deep=True)
    local.sql.connect = False
    broker = EmbeddedBroker(settings)
    children: list[subprocess.Popen] = []
    started = time.monotonic()
    report: dict[str, object] = {"rows_target": args.rows, "rate": args.rate, "runs": args.runs}
    try:
        broker.start()
        fill_s = fill_topic(settings, args.rows, args.seed)
        print(f"prefill: {args.rows:,} events into the topic in {fill_s:.1f} s", flush=True)
        plog = tmp / "logs" / "processor.log"
        processor = subprocess.Popen(component_argv(PROCESSOR, settings),
                                     env=child_env(settings), cwd=tmp,
                                     stdout=plog.open("ab"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        children.append(processor)
        gen = start_generator(settings, args.rate, 24 * 3600, args.seed + 1)
        children.append(gen)
        gen_err: deque = deque(maxlen=20)
        drain(gen.stderr, gen_err)
        print(f"processor ({' '.join(component_argv(PROCESSOR, settings)[2:])}) and generator "
              f"at {args.rate:g} ev/s started; waiting for {args.rows:,} rows in logs",
              flush=True)
        fill = wait_filled(settings, processor, args.rows, args.rate, args.max_wait, plog)
        report["prefill"] = {"topic_s": fill_s, **fill}
        print(f"pipeline up with {fill['rows_logged']:,} rows after "
              f"{time.monotonic() - started:.0f} s", flush=True)

        m0 = time.monotonic()
        st0, topic0 = processor_status(settings), topic_end(settings)
        facts0 = table_facts(settings)
        print(f"logs at the start: {facts0}", flush=True)
        remote = measure_clients(settings, tmp, args.runs, args.runs, "connect")
        cli, cli_remote = [], []
        for i in range(args.runs):
            seconds, n, err, on_endpoint = cli_wall(settings, tmp)
            print(f"  lakewatch sql {i + 1}/{args.runs}: {seconds:.2f} s, {n} rows, on the "
                  f"endpoint {on_endpoint}" + (f"; ERROR {err}" if err else ""), flush=True)
            if not err:
                cli.append(seconds)
                cli_remote.append(on_endpoint)
        own = (measure_clients(local, tmp, baseline_runs, args.runs, "local")
               if baseline_runs else {"first": [], "latest": [], "last_hour": [], "jvms": [],
                                      "rss": [], "first_process": []})
        st1, topic1 = processor_status(settings), topic_end(settings)
        span = time.monotonic() - m0
        facts = table_facts(settings)
        if gen.poll() is not None:
            print(f"!! the generator stopped ({gen.returncode}): {list(gen_err)[-3:]}")

        logged = (st1.get("rows_logged_total") or 0) - (st0.get("rows_logged_total") or 0)
        rows = [
            row("first answer, SQL tab opened", remote["first"], ("<=", 3.0), own["first"]),
            row("  same, from the client process's start", remote["first_process"], None,
                own["first_process"]),
            row("ORDER BY ts DESC LIMIT 100, warm", remote["latest"], ("<=", 1.0),
                own["latest"]),
            row("GROUP BY endpoint last hour, warm", remote["last_hour"], ("<=", 2.0),
                own["last_hour"]),
            row("lakewatch sql LIMIT 100, fresh shell", cli, ("<=", 5.0)),
            row("Spark JVMs in the run, client up", remote["jvms"], ("==", 1), own["jvms"],
                "JVMs"),
            row("client resident memory (+ own JVM)", remote["rss"], None, own["rss"], "MB"),
            row("logs files at the end (numFiles)", [facts.get("files", float("nan"))], None,
                [facts0.get("files", float("nan"))], "files"),
            row("rows in logs at the end", [facts.get("rows", float("nan"))],
                (">=", args.rows), None, "rows"),
            row("pipeline rate while measuring", [logged / span], None, None, "ev/s"),
        ]
        report.update(
            table=rows, logs_start=facts0, logs_end=facts,
            generator_rate=(topic1 - topic0) / span, lag_end=st1.get("lag"),
            processor_optimize=st1.get("optimize"),
            remote_path=remote["remote"], local_path=own.get("remote"), cli_remote=cli_remote,
            machine_spark_jvms={"connect": remote.get("machine_jvms"),
                                "local": own.get("machine_jvms")},
            result_rows={"connect": remote.get("rows"), "local": own.get("rows")},
            errors={"connect": remote["errors"], "local": own.get("errors", [])},
            wall_s=time.monotonic() - started)
        n_rows = f"{facts['rows']:,}" if "rows" in facts else "?"
        print_table(rows, f"issue 20 figures: {n_rows} rows in logs, "
                          f"pipeline at {args.rate:g} ev/s (generator achieved "
                          f"{report['generator_rate']:,.0f} ev/s, processor logged "
                          f"{logged / span:,.0f} ev/s, lag at the end {st1.get('lag')}); "
                          f"medians of {args.runs} runs")
        print("  (logs files baseline column: at the start of the measurements; "
              f"Spark JVMs on the whole machine meanwhile: {report['machine_spark_jvms']}; "
              f"client on the endpoint: {remote['remote']}, local: {own.get('remote')}, "
              f"lakewatch sql: {cli_remote})")
        if not all(remote["remote"] + cli_remote):
            print(f"!! {(remote['remote'] + cli_remote).count(False)} of "
                  f"{len(remote['remote'] + cli_remote)} endpoint clients fell back to their "
                  "own Spark session (the endpoint did not answer within "
                  "sql.connect_timeout_s): their figures are not the Connect path's")
        if not fill["caught_up"]:
            print(f"!! measured before the processor caught up (lag {fill['lag']} events after "
                  f"{fill['seconds']:.0f} s): it does not keep up with {args.rate:g} ev/s here")
        print(f"total wall time {report['wall_s'] / 60:.1f} min")
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, default=str))
    finally:
        for child in [*_CLIENTS, *reversed(children)]:
            stop_tree(child, 30)
        broker.stop()
        for pid in spark_jvms(os.getpid()):  # anything left of this run's tree
            with contextlib.suppress(Exception):
                os.kill(pid, signal.SIGKILL)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
