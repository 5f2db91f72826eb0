"""Start-up times: ``lakewatch broker start`` → ready, and first SparkSession request → ready.

Each measured in a fresh process (cold JVM), ``--runs`` times; prints medians.
Usage: python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

SPARK_SNIPPET = """
import time, sys
from pipeline.settings import load_settings
from pipeline.spark_session_manager import get_spark
s = load_settings(None, {"storage.data_dir": sys.argv[1]})
t = time.monotonic(); spark = get_spark(s); spark.range(1).count()
print(time.monotonic() - t)
"""


def broker_once(port: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env_args = ["--set", f"storage.data_dir={tmp}", "--set", f"broker.port={port}",
                    "--set", f"broker.controller_port={port + 1}"]
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "pipeline", *env_args, "broker", "start"],
                       check=True, capture_output=True)
        took = time.monotonic() - started
        subprocess.run([sys.executable, "-m", "pipeline", *env_args, "broker", "stop"],
                       check=True, capture_output=True)
        return took


def spark_once() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", SPARK_SNIPPET, tmp], check=True,
                             capture_output=True, text=True)
        return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=29092)
    args = parser.parse_args()
    broker = [broker_once(args.port) for _ in range(args.runs)]
    spark = [spark_once() for _ in range(args.runs)]
    result = {
        "broker_start_to_ready_s_median": round(statistics.median(broker), 2),
        "spark_session_ready_s_median": round(statistics.median(spark), 2),
        "broker_runs": [round(x, 2) for x in broker],
        "spark_runs": [round(x, 2) for x in spark],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
