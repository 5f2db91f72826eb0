"""The PyInstaller bundle, built by ``packaging/build.sh`` and run the way a user runs it.

The fast tests cover ``desktop_app.frozen`` (what the bundle does before anything else) and
the menu entry. The slow ones build ``dist/lakewatch/`` from scratch (set
``BUNDLE_TEST_REUSE=1`` to test an existing build while developing), then run it with a HOME
of its own (no per-user jar cache or config), no Python on PATH and PYSPARK_PYTHON pointing
nowhere: ``--version``, ``self-test`` (broker, Spark, one event into Delta and back, the Qt
window), the pipeline's components started as the bundle itself, Spark's Python worker served
by the bundle, a missing Java explained, and the window on Xvfb for a screenshot.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from desktop_app import frozen
from pipeline import __version__
from pipeline.jvm.artifacts import ARTIFACT_GROUPS, group_dir
from tests.helpers.installed_app import app_args, leftover_processes, self_test_steps
from tests.helpers.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
BUNDLE = DIST / "lakewatch"
EXE = BUNDLE / "lakewatch"
INTERNAL = BUNDLE / "_internal"
ARTIFACTS = ROOT / "artifacts"
BUILD_LIMIT_S = 15 * 60


# -- desktop_app.frozen: fast ------------------------------------------------------------------
def fake_bundle(root: Path) -> Path:
    """A folder laid out like ``_internal``: pyspark/bin (modes lost) and the jar cache."""
    bin_dir = root / "pyspark" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("spark-submit", "spark-class", "load-spark-env.sh"):
        (bin_dir / name).write_text("#!/usr/bin/env bash\n")
        (bin_dir / name).chmod(0o644)
    (root / frozen.BUNDLED_CACHE / "jars" / "kafka").mkdir(parents=True)
    return root


def test_from_source_nothing_is_bundled():
    assert frozen.is_frozen() is False
    assert frozen.bundle_root() is None
    assert frozen.bundled_cache_dir() is None
    assert frozen.bundled_spark_home() is None
    env: dict[str, str] = {}
    assert frozen.prepare_environment(env) == {}
    assert env == {}


def test_prepare_environment_points_spark_at_the_bundle(tmp_path):
    root = fake_bundle(tmp_path / "_internal")
    env = {"SPARK_HOME": "/opt/other-spark"}
    done = frozen.prepare_environment(env, root=root)
    assert done == {"SPARK_HOME": str(root / "pyspark")}
    assert env == done
    for script in (root / "pyspark" / "bin").iterdir():
        assert stat.S_IMODE(script.stat().st_mode) == 0o755, script


def test_jar_cache_defaults_to_the_bundle_but_config_wins(tmp_path, monkeypatch):
    from pipeline.settings import default_cache_dir, load_settings

    root = fake_bundle(tmp_path / "_internal")
    assert default_cache_dir(root) == root / frozen.BUNDLED_CACHE
    assert default_cache_dir(tmp_path / "elsewhere").name == "lakewatch"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(root), raising=False)
    assert load_settings().cache_dir == root / frozen.BUNDLED_CACHE
    toml = tmp_path / "lakewatch.toml"
    toml.write_text(f'[storage]\ncache_dir = "{tmp_path / "mine"}"\n')
    assert load_settings(toml).cache_dir == tmp_path / "mine"


def test_bundled_cache_dir_is_none_without_jars(tmp_path):
    (tmp_path / frozen.BUNDLED_CACHE).mkdir()
    assert frozen.bundled_cache_dir(tmp_path) is None
    assert frozen.bundled_spark_home(tmp_path) is None


@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (["lakewatch", "-m", "pyspark.daemon"], "pyspark.daemon"),
        (["lakewatch", "-u", "-m", "pyspark.worker"], "pyspark.worker"),
        (["lakewatch", "-m", "os"], None),  # not a general interpreter
        (["lakewatch", "-m"], None),
        (["lakewatch", "self-test"], None),
        (["lakewatch", "--set", "x.y=-m", "pyspark.daemon"], None),
        (["lakewatch"], None),
    ],
)
def test_python_module_request_accepts_only_sparks_workers(argv, module):
    assert frozen.python_module_request(argv) == module


def test_java_missing_dialog_says_how_to_install_java(qtbot, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QMessageBox

    from pipeline.jvm.java import JavaError, require_java

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java anywhere
    with pytest.raises(JavaError) as caught:
        require_java()
    box = frozen.build_java_missing_dialog(caught.value)
    qtbot.addWidget(box)
    assert box.windowTitle() == "Lakewatch needs Java 17 or 21"
    assert box.icon() == QMessageBox.Icon.Critical
    assert box.informativeText() == str(caught.value)
    assert "sudo apt-get install openjdk-17-jre-headless" in box.informativeText()
    assert "no usable Java was found" in box.text()


def test_desktop_entry_names_the_command_and_an_existing_icon():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive
    entry.read(ROOT / "packaging" / "lakewatch.desktop", encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application"
    assert section["Name"] == "Lakewatch"
    assert section["Exec"] == "lakewatch"
    assert section["Icon"] == "lakewatch"
    assert section["Terminal"] == "false"
    assert section["Categories"].endswith(";")
    assert (ROOT / "resources" / "lakewatch.png").is_file()
    assert (ROOT / "resources" / "lakewatch.svg").is_file()


def test_build_scripts_are_executable():
    for name in ("build.sh", "install.sh"):
        mode = (ROOT / "packaging" / name).stat().st_mode
        assert mode & stat.S_IXUSR, name


def test_qt_window_step_builds_the_real_window(qtbot, settings):
    """The self-test's window step (desktop_app.self_check), from source."""
    from desktop_app.self_check import QT_WINDOW_STEP, extra_steps, qt_window_step

    assert [title for title, _ in extra_steps()] == [QT_WINDOW_STEP]
    detail = qt_window_step(settings)
    assert detail.startswith("offscreen platform, ")
    assert detail.endswith(" 5 tabs")
    assert not (settings.data_dir / "ui_state.json").exists()  # the user's layout untouched


# -- the bundle: slow --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundle() -> dict:
    """Build the bundle (a clean clone always builds); returns build figures."""
    figures: dict = {}
    if not (os.environ.get("BUNDLE_TEST_REUSE") == "1" and EXE.is_file()):
        started = time.monotonic()
        proc = subprocess.run(
            ["bash", str(ROOT / "packaging" / "build.sh")], cwd=ROOT,
            env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True,
            timeout=BUILD_LIMIT_S + 60, check=False,
        )
        figures["build_seconds"] = round(time.monotonic() - started, 1)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        assert figures["build_seconds"] < BUILD_LIMIT_S
    figures["bundle_bytes"] = sum(f.stat().st_size for f in BUNDLE.rglob("*")
                                  if f.is_file() and not f.is_symlink())
    archives = sorted(DIST.glob(f"lakewatch-{__version__}-linux-*.tar.gz"))
    assert len(archives) == 1, archives
    figures["archive"] = str(archives[0])
    figures["archive_bytes"] = archives[0].stat().st_size
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bundle-figures.json").write_text(json.dumps(figures, indent=1))
    return figures


def bundle_env(tmp_path: Path) -> dict[str, str]:
    """A user's environment: own HOME (no jar cache, no config), no Python, no Spark."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    venv_bin = str(Path(sys.executable).parent)
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("LAKEWATCH_", "PYTHON", "VIRTUAL_ENV", "SPARK_", "PYSPARK_", "XDG_"))
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and p != venv_bin)
    env["HOME"] = str(home)
    # Spark must not need a Python worker on these paths; if one started, it would fail.
    env["PYSPARK_PYTHON"] = "/nonexistent/python3"
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env


@pytest.mark.slow
def test_bundle_layout_and_archive(bundle):
    assert os.access(EXE, os.X_OK)
    scripts = sorted((INTERNAL / "pyspark" / "bin").iterdir())
    assert {"spark-submit", "spark-class", "load-spark-env.sh", "find-spark-home"} <= {
        s.name for s in scripts}
    assert all(os.access(s, os.X_OK) for s in scripts), [s for s in scripts
                                                         if not os.access(s, os.X_OK)]
    assert len(list((INTERNAL / "pyspark" / "jars").glob("spark-core_*.jar"))) == 1
    # the jar cache as `lakewatch setup` left it: same manifest, every file with its size
    from pipeline.settings import load_settings

    settings = load_settings()
    for group in ARTIFACT_GROUPS:
        source = group_dir(settings, group.name)
        bundled = INTERNAL / frozen.BUNDLED_CACHE / "jars" / group.name
        manifest = json.loads((bundled / "manifest.json").read_text())
        assert manifest == json.loads((source / "manifest.json").read_text())
        names = {f["name"]: f["size"] for f in manifest["files"]}
        assert {p.name: p.stat().st_size for p in bundled.glob("*.jar")} == names
    for res in ("lakewatch.svg", "lakewatch.png", "styles/dark.qss", "styles/light.qss"):
        assert (INTERNAL / "resources" / res).is_file(), res
    for extra in ("lakewatch.desktop", "lakewatch.png", "lakewatch.svg", "install.sh"):
        assert (BUNDLE / extra).is_file(), extra
    # lean: the Qt modules the app does not use stayed out
    qt_libs = {p.name for p in INTERNAL.rglob("libQt6*.so*") if p.exists()}
    assert [p for p in INTERNAL.rglob("*") if p.is_symlink() and not p.exists()] == []
    for unused in ("WebEngineCore", "Quick", "Qml", "Multimedia", "3DCore", "Pdf"):
        assert not [n for n in qt_libs if n.startswith(f"libQt6{unused}.")], unused
    # the archive keeps the exec bits
    with tarfile.open(bundle["archive"]) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["lakewatch/lakewatch"].mode & 0o111
    assert members["lakewatch/_internal/pyspark/bin/spark-submit"].mode & 0o111
    assert members["lakewatch/install.sh"].mode & 0o111
    print(f"bundle {bundle['bundle_bytes'] / 1e6:.0f} MB, archive "
          f"{bundle['archive_bytes'] / 1e6:.0f} MB, build {bundle.get('build_seconds')} s")


@pytest.mark.slow
def test_bundle_prints_its_version(bundle, tmp_path):
    proc = subprocess.run([str(EXE), "--version"], env=bundle_env(tmp_path),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"lakewatch {__version__}"


@pytest.mark.slow
def test_install_script_links_command_menu_entry_and_icon(bundle, tmp_path):
    env = bundle_env(tmp_path)
    home = Path(env["HOME"])
    subprocess.run(["sh", str(BUNDLE / "install.sh")], env=env, check=True,
                   capture_output=True, timeout=60)
    command = home / ".local" / "bin" / "lakewatch"
    assert command.resolve() == EXE.resolve()
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(home / ".local" / "share" / "applications" / "lakewatch.desktop")
    assert entry["Desktop Entry"]["Exec"] == f'"{EXE.resolve()}"'
    assert entry["Desktop Entry"]["Icon"] == "lakewatch"
    icons = home / ".local" / "share" / "icons" / "hicolor"
    assert (icons / "256x256" / "apps" / "lakewatch.png").read_bytes() == (
        ROOT / "resources" / "lakewatch.png").read_bytes()
    assert (icons / "scalable" / "apps" / "lakewatch.svg").is_file()
    # the bundle runs through the symlink (it finds _internal next to the real executable)
    out = subprocess.run([str(command), "--version"], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == f"lakewatch {__version__}"
    subprocess.run(["sh", str(BUNDLE / "install.sh"), "--uninstall"], env=env, check=True,
                   capture_output=True, timeout=60)
    assert not command.exists() and not command.is_symlink()
    assert not (home / ".local" / "share" / "applications" / "lakewatch.desktop").exists()
    assert EXE.is_file()  # uninstall leaves the bundle


@pytest.mark.slow
def test_bundle_self_test_needs_no_python_and_no_user_jar_cache(bundle, tmp_path):
    env = bundle_env(tmp_path)
    data = tmp_path / "data"
    proc = subprocess.run([str(EXE), *app_args(data), "self-test"], env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-4000:]
    # the pipeline's steps, its cleanup, then the desktop app's window step (self_check)
    self_test_steps(out)
    # the jars came from the bundle: the fresh HOME has no jar cache and got none
    assert not (Path(env["HOME"]) / ".cache" / "lakewatch" / "jars").exists()
    assert leftover_processes(str(data)) == []


@pytest.mark.slow
def test_bundle_explains_a_missing_java(bundle, tmp_path):
    env = bundle_env(tmp_path)
    env.pop("JAVA_HOME", None)
    env["PATH"] = str(tmp_path / "empty-bin")  # the bundle needs nothing from PATH before Java
    proc = subprocess.run([str(EXE), *app_args(tmp_path / "data"), "self-test"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1
    assert "Java was not found" in proc.stdout
    assert "sudo apt-get install openjdk-17-jre-headless" in proc.stdout


@pytest.mark.slow
def test_bundle_starts_pipeline_components_as_itself(bundle, tmp_path):
    """`pipeline start generator` from the bundle: supervisor, broker and generator are all
    the bundle executable with a subcommand (pipeline.components.component_argv, frozen)."""
    import psutil

    env = bundle_env(tmp_path)
    args = [str(EXE), *app_args(tmp_path / "data"), "--set", "generator.rate=5"]
    seen: list[psutil.Process] = []
    try:
        started = subprocess.run([*args, "pipeline", "start", "generator"], env=env,
                                 capture_output=True, text=True, timeout=300, check=False)
        assert started.returncode == 0, started.stdout + started.stderr[-3000:]
        status = subprocess.run([*args, "pipeline", "status", "--json"], env=env,
                                capture_output=True, text=True, timeout=120, check=True)
        st = json.loads(status.stdout)
        assert st["supervisor"]["running"] is True
        sup = psutil.Process(st["supervisor"]["pid"])
        seen += [sup, *sup.children(recursive=True)]
        assert Path(sup.exe()).resolve() == EXE.resolve()
        assert sup.cmdline()[1:3] == ["pipeline", "supervise"]
        for name, subcommand in (("broker", ["broker", "run"]),
                                 ("generator", ["generate", "--rate", "5"])):
            row = st["components"][name]
            assert row["running"] is True, (name, row)
            proc = psutil.Process(row["pid"])
            assert Path(proc.exe()).resolve() == EXE.resolve(), proc.cmdline()
            assert proc.cmdline()[1:] == subcommand
    finally:
        stopped = subprocess.run([*args, "pipeline", "stop"], env=env, capture_output=True,
                                 text=True, timeout=180, check=False)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr[-3000:]
    _gone, alive = psutil.wait_procs(seen, timeout=30)
    assert alive == []


@pytest.mark.slow
def test_bundle_serves_as_sparks_python_worker(bundle, spark):
    """A Python UDF whose worker is the bundle (``lakewatch -m pyspark.daemon``)."""
    from pyspark.sql.functions import col, udf

    def where(x):  # no type hints: they would make pyspark look for a pandas UDF
        import sys as worker_sys

        frozen_flag = getattr(worker_sys, "frozen", False)
        return f"{x * x}|{worker_sys.executable}|{frozen_flag}"

    sc = spark.sparkContext
    saved = sc.pythonExec
    sc.pythonExec = str(EXE)
    try:
        rows = spark.range(4).select(udf(where, "string")(col("id")).alias("r")).collect()
    finally:
        sc.pythonExec = saved
    assert [r.r for r in rows] == [f"{i * i}|{EXE}|True" for i in range(4)]


@pytest.mark.slow
@pytest.mark.xvfb
@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")
def test_bundle_window_on_xvfb_screenshot(bundle, tmp_path):
    from PySide6.QtGui import QImage

    shot = ARTIFACTS / "bundle-window.png"
    shot.unlink(missing_ok=True)
    env = bundle_env(tmp_path)
    env.pop("QT_QPA_PLATFORM")
    proc = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable,
         str(ROOT / "packaging" / "window_probe.py"), "--screenshot", str(shot), "--",
         str(EXE), "--set", f"broker.port={free_port()}",
         "--set", f"broker.controller_port={free_port()}"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    (run,) = result["runs"]
    assert run["seconds_to_window"] is not None and run["seconds_to_window"] < 60, run
    assert run["alive_until_sigterm"] is True, run
    assert run["exit_code"] == 0, run
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (1600, 1000)
    colors = {image.pixel(x, y) for x in range(0, 1600, 20) for y in range(0, 1000, 20)}
    assert len(colors) > 10  # a drawn window, not an empty screen

