"""``lakewatch setup`` is idempotent: a second run downloads nothing and verifies checksums."""

from __future__ import annotations

import json
import subprocess
import sys

from pipeline.jvm.artifacts import cached_group, group_dir


def test_setup_second_run_downloads_nothing(base_settings):
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "setup", "--json"],
        capture_output=True, text=True, timeout=600, check=True,
    )
    lines = proc.stdout.strip().splitlines()
    stats = json.loads(lines[-1])
    assert set(stats) == {"kafka", "spark-kafka", "delta"}
    assert not any(s["downloaded"] for s in stats.values()), proc.stdout
    assert "downloaded: nothing" in proc.stdout
    assert sum(1 for line in lines if line.startswith("[")) == 3  # one progress line per group
    for name in stats:
        jars = cached_group(base_settings, name, verify=True)
        assert jars and len(jars) == stats[name]["jars"]


def test_corrupted_jar_fails_verification(base_settings, tmp_path):
    import shutil

    s = base_settings.model_copy(deep=True)
    s.storage.cache_dir = tmp_path / "cache"
    shutil.copytree(group_dir(base_settings, "spark-kafka"), group_dir(s, "spark-kafka"))
    assert cached_group(s, "spark-kafka", verify=True) is not None
    victim = next(group_dir(s, "spark-kafka").glob("*kafka-clients*.jar"))
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert cached_group(s, "spark-kafka") is not None  # size unchanged: fast check passes
    assert cached_group(s, "spark-kafka", verify=True) is None  # the checksum does not
