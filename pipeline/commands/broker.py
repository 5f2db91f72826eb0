"""``lakewatch broker start|stop|status|run``: the embedded Kafka broker from the command line.

``start`` leaves the broker running in the background; ``run`` keeps it in the foreground
until SIGTERM/Ctrl+C (the orchestrator supervises it that way).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from pipeline import status
from pipeline.broker import BrokerError, EmbeddedBroker
from pipeline.jvm import JavaError, MissingArtifactsError
from pipeline.settings import Settings
from pipeline.signals import stop_on_signals
from pipeline.status import BrokerStatus


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["start", "stop", "status", "run"])
    parser.add_argument("--json", action="store_true", help="status as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.attached:
        print(f"attach mode: using the external cluster {settings.kafka.bootstrap_servers}; "
              "no embedded broker is managed", file=sys.stderr)
        return 0 if args.action in ("status", "stop") else 2
    broker = EmbeddedBroker(settings)
    try:
        if args.action == "start":
            started = time.monotonic()
            pid = broker.start(detach=True)
            print(f"broker ready on {settings.bootstrap_servers} (pid {pid}) in "
                  f"{time.monotonic() - started:.1f} s; log: {broker.log_file}")
            return 0
        if args.action == "stop":
            stopped = broker.stop()
            print("broker stopped" if stopped else "broker was not running")
            return 0
        if args.action == "status":
            pid = broker.running_pid()
            ready = pid is not None and broker.is_ready()
            info = {"running": pid is not None, "ready": ready, "pid": pid,
                    "bootstrap_servers": settings.bootstrap_servers,
                    "data_dir": str(broker.data_dir), "log": str(broker.log_file)}
            if args.json:
                print(json.dumps(info))
            else:
                state = "ready" if ready else ("starting/unhealthy" if pid else "stopped")
                print(f"broker {state}" + (f" (pid {pid})" if pid else "")
                      + f" on {settings.bootstrap_servers}")
            return 0 if ready else 1
        return _run_foreground(broker, settings)
    except (BrokerError, JavaError, MissingArtifactsError) as exc:
        print(f"lakewatch broker: {exc}", file=sys.stderr)
        return 1


def _run_foreground(broker: EmbeddedBroker, settings: Settings) -> int:
    with stop_on_signals() as stop:
        return _supervise_jvm(broker, settings, stop)


def _supervise_jvm(broker: EmbeddedBroker, settings: Settings, stop: threading.Event) -> int:
    pid = broker.start()
    try:
        while not stop.is_set():
            if broker._proc is not None and broker._proc.poll() is not None:
                status.write(settings, BrokerStatus(
                    state="exited",
                    last_error=f"JVM exited with {broker._proc.returncode}"))
                print(f"broker JVM exited with {broker._proc.returncode}:\n{broker.log_tail()}",
                      file=sys.stderr)
                return 1
            status.write(settings, BrokerStatus(state="running",
                                                broker_pid=pid,
                                                ready=broker.is_ready(timeout=1.0)))
            for _ in range(20):
                if stop.is_set():
                    break
                time.sleep(0.1)
    finally:
        broker.stop()
        status.write(settings, BrokerStatus(state="stopped"))
    return 0
