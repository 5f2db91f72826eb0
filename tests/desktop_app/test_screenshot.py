"""The window under a real X server (Xvfb) with the embedded pipeline it started itself:
live events in the table, rows in Delta, a screenshot kept in ``artifacts/`` (CI) and used
in the README."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOT = ROOT / "artifacts" / "app-window-live-pipeline.png"


@pytest.mark.slow
@pytest.mark.xvfb
@pytest.mark.timeout(900)
@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")
def test_window_with_embedded_pipeline_on_xvfb(tmp_path):
    from PySide6.QtGui import QImage

    SHOT.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "DISPLAY") and not k.startswith("LAKEWATCH_")}
    config = tmp_path / "lakewatch.toml"
    config.write_text("")  # no developer config
    env["LAKEWATCH_CONFIG"] = str(config)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "screenshot_app.py"), str(SHOT),
         "--pipeline", "--tab", "Live logs", "--size", "1500x950", "--wait", "6"],
        env=env, capture_output=True, text=True, timeout=840, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["ok"] and seen["live_rows"] > 0 and seen["delta_rows"] > 0, seen
    assert all(seen["components"].values()), seen  # everything still up for the picture
    image = QImage(str(SHOT))
    assert image.width() >= 1400 and image.height() >= 900
    colors = {image.pixel(x, y) for x in range(0, image.width(), 20)
              for y in range(0, image.height(), 20)}
    assert len(colors) > 10  # a drawn window, not an empty screen
