"""Cold start to the window: the PyInstaller bundle vs the baseline ``python -m desktop_app``.

Both measured in the same run, ``--runs`` times each, every run a fresh process with a fresh
data dir, on Xvfb (packaging/window_probe.py). Prints medians, the ratio bundle/source and the
bundle's size on disk and as an archive.
Usage: python bench/bundle_startup.py [--runs 3]   (needs dist/lakewatch from packaging/build.sh)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ports import free_port  # noqa: E402

EXE = ROOT / "dist" / "lakewatch" / "lakewatch"


def measure(command: list[str], runs: int) -> dict:
    ports = ["--set", f"broker.port={free_port()}",
             "--set", f"broker.controller_port={free_port()}"]
    proc = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable,
         str(ROOT / "packaging" / "window_probe.py"), "--runs", str(runs), "--settle", "0",
         "--", *command, *ports],
        capture_output=True, text=True, check=True, timeout=300 * runs,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not EXE.is_file():
        raise SystemExit(f"{EXE} missing: run packaging/build.sh first")
    bundle = measure([str(EXE)], args.runs)
    source = measure([sys.executable, "-m", "desktop_app"], args.runs)
    b, s = bundle["median_seconds_to_window"], source["median_seconds_to_window"]
    size = sum(f.stat().st_size for f in EXE.parent.rglob("*")
               if f.is_file() and not f.is_symlink())
    archives = sorted((ROOT / "dist").glob("lakewatch-*.tar.gz"))
    print(json.dumps({
        "bundle_seconds_to_window_median": b,
        "source_seconds_to_window_median": s,
        "ratio_bundle_vs_source": round(b / s, 2) if b and s else None,
        "bundle_runs": [r["seconds_to_window"] for r in bundle["runs"]],
        "source_runs": [r["seconds_to_window"] for r in source["runs"]],
        "bundle_mb": round(size / 1e6),
        "archive_mb": round(archives[-1].stat().st_size / 1e6) if archives else None,
    }))


if __name__ == "__main__":
    main()
