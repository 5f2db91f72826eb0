"""Lakewatch as an installed package: a wheel built from this tree, installed into a fresh venv.

The fast tests check what decides the wheel's contents (``[tool.setuptools]`` names every
package, because the top-level ``resources/`` folder is installed as ``lakewatch_resources``)
and the one resource lookup (``desktop_app.resources``) in a checkout and a bundle.

The slow ones build the wheel (``pip wheel --no-deps``) from a copy of the tree's files (git's
tracked and untracked-not-ignored ones: a build in the tree itself would package whatever stale
modules ``build/lib`` holds), install it with its dependencies from the package index into a
new venv, and run it from a folder outside the repository with a HOME of its own: the version,
the resources found in site-packages, ``lakewatch self-test`` (broker, Spark, one event into
Delta and back, the offscreen Qt window) and the desktop window started as a user starts it.
The JVM jars come from the per-user cache that ``lakewatch setup`` filled, named with
``--set storage.cache_dir`` (the fresh HOME has none and must get none).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

from desktop_app import resources
from desktop_app.self_check import QT_WINDOW_STEP
from pipeline import __version__
from pipeline.jvm.artifacts import ARTIFACT_GROUPS, cached_group, group_dir
from tests.helpers.installed_app import app_args, leftover_processes, self_test_steps

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
#: Warnings the app logs when it cannot find a resource (desktop_app.main_window, theme).
RESOURCE_WARNINGS = ("application icon missing", "bundled resource", "lakewatch_resources")
#: The whole slow part (build, install, run) stays under this.
BUDGET_S = 6 * 60


# -- fast: what decides the wheel's contents, and the resource lookup ----------------------------
def source_packages() -> set[str]:
    """Every Python package under pipeline/ and desktop_app/ in the source tree."""
    found = set()
    for top in ("pipeline", "desktop_app"):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            if "__pycache__" not in rel.parts:
                found.add(".".join(rel.parts))
    return found


def test_pyproject_names_every_package_of_the_source_tree():
    setuptools = PYPROJECT["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    assert listed - {resources.RESOURCE_PACKAGE} == source_packages(), (
        "[tool.setuptools] packages in pyproject.toml must list every package "
        f"(missing: {sorted(source_packages() - listed)}, "
        f"gone: {sorted(listed - source_packages() - {resources.RESOURCE_PACKAGE})})"
    )
    assert setuptools["package-dir"] == {resources.RESOURCE_PACKAGE: "resources"}
    assert (ROOT / "resources" / "__init__.py").is_file()


def test_package_data_covers_every_resource_file():
    on_disk = {
        p.relative_to(ROOT / "resources").as_posix()
        for p in (ROOT / "resources").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc")
    }
    assert on_disk == set(resources.RESOURCE_FILES)
    globs = PYPROJECT["tool"]["setuptools"]["package-data"][resources.RESOURCE_PACKAGE]
    for name in resources.RESOURCE_FILES:
        assert any(Path(name).match(g) and name.count("/") == g.count("/") for g in globs), name


def test_editable_install_finds_the_resources_folder_of_the_repo():
    """Under ``pip install -e .`` the package is the repo's ``resources/`` folder itself."""
    import importlib.util

    spec = importlib.util.find_spec(resources.RESOURCE_PACKAGE)
    assert spec is not None, "lakewatch_resources is not importable: run `pip install -e .`"
    assert Path(spec.origin).resolve() == ROOT / "resources" / "__init__.py"
    assert resources.resource_root().resolve() == ROOT / "resources"
    for name in resources.RESOURCE_FILES:
        assert resources.resource_path(*name.split("/")).is_file(), name
    assert resources.read_text("styles", "dark.qss") == (
        ROOT / "resources" / "styles" / "dark.qss").read_text(encoding="utf-8")


def test_checkout_without_install_reads_the_folder_next_to_the_code(monkeypatch):
    def not_installed(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(resources.resources, "files", not_installed)
    assert resources.resource_root() == ROOT / "resources"


def test_bundle_reads_its_unpacked_copy(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.resource_root() == tmp_path / "resources"
    with pytest.raises(FileNotFoundError, match="bundled resource lakewatch.svg not found"):
        resources.resource_path("lakewatch.svg")


# -- slow: the wheel in a fresh venv -------------------------------------------------------------
def tree_files() -> list[Path]:
    """The files a clean clone plus local changes has: tracked and untracked, never ignored."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True, timeout=60,
    ).stdout.decode()
    return [Path(p) for p in sorted(set(out.split("\0"))) if p and (ROOT / p).is_file()]


def run(args: list, timeout: float, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, check=False, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Build the wheel, install it and its dependencies into a new venv; returns paths and
    timings (also written to artifacts/wheel-figures.json)."""
    base = tmp_path_factory.mktemp("wheel")
    figures: dict = {"started": time.monotonic()}

    t0 = time.monotonic()
    src = base / "src"
    for rel in tree_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    wheels = base / "wheels"
    proc = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", wheels, src], 600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = wheels.glob("lakewatch-*.whl")
    assert wheel.name == f"lakewatch-{__version__}-py3-none-any.whl"
    figures["build_s"] = round(time.monotonic() - t0, 1)

    t0 = time.monotonic()
    venv = base / "venv"
    # No pip of its own: this venv's pip (the newer one, sharing the machine's pip cache)
    # installs into it through --python.
    proc = run([sys.executable, "-m", "venv", "--without-pip", venv], 120)
    assert proc.returncode == 0, proc.stderr
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", python]
    figures["venv_s"] = round(time.monotonic() - t0, 1)

    t0 = time.monotonic()
    proc = run([*pip, "install", "--no-input", wheel], 900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    figures["install_s"] = round(time.monotonic() - t0, 1)
    figures["downloaded"] = proc.stdout.count("Downloading ")
    proc = run([*pip, "check"], 120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures["venv_mb"] = round(sum(f.stat().st_size for f in venv.rglob("*")
                                   if f.is_file() and not f.is_symlink()) / 1e6)
    info = {"wheel": wheel, "venv": venv, "python": python, "exe": venv / "bin" / "lakewatch",
            "figures": figures}
    yield info
    figures["total_s"] = round(time.monotonic() - figures.pop("started"), 1)
    shutil.rmtree(venv, ignore_errors=True)  # ~2 GB; pytest keeps its last three runs
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "wheel-figures.json").write_text(json.dumps(figures, indent=1))
    print(f"\nwheel figures: {figures}")
    assert figures["total_s"] < BUDGET_S, figures


def user_env(installed: dict, tmp_path: Path) -> dict[str, str]:
    """A user's shell with the venv activated: own HOME (no config, no jar cache), none of the
    developer's Python, Spark or Lakewatch variables, the main venv off PATH."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    main_bin = str(Path(sys.executable).parent)
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("LAKEWATCH_", "PYTHON", "VIRTUAL_ENV", "SPARK_", "PYSPARK_", "XDG_"))
    }
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != main_bin]
    env["PATH"] = os.pathsep.join([str(installed["venv"] / "bin"), *path])
    env["VIRTUAL_ENV"] = str(installed["venv"])
    env["HOME"] = str(home)
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def jar_cache() -> Path:
    """The per-user jar cache (`lakewatch setup` filled it for the main venv)."""
    from pipeline.settings import load_settings

    settings = load_settings(None)
    for group in ARTIFACT_GROUPS:
        assert cached_group(settings, group.name) is not None, (
            f"{group_dir(settings, group.name)} lacks {group.title}: run `lakewatch setup`")
    return settings.cache_dir


def timed(installed: dict, name: str, started: float) -> None:
    installed["figures"][name] = round(time.monotonic() - started, 1)


@pytest.mark.slow
def test_wheel_carries_code_resources_and_metadata(installed):
    with zipfile.ZipFile(installed["wheel"]) as whl:
        names = set(whl.namelist())
        metadata = whl.read(f"lakewatch-{__version__}.dist-info/METADATA").decode()
        entry_points = whl.read(f"lakewatch-{__version__}.dist-info/entry_points.txt").decode()
    assert {n.split("/")[0] for n in names} == {
        "pipeline", "desktop_app", resources.RESOURCE_PACKAGE, f"lakewatch-{__version__}.dist-info"}
    for name in resources.RESOURCE_FILES:
        assert f"{resources.RESOURCE_PACKAGE}/{name}" in names, name
        assert whl_bytes(installed["wheel"], f"{resources.RESOURCE_PACKAGE}/{name}") == (
            ROOT / "resources" / name).read_bytes(), name
    for package in source_packages():
        assert f"{package.replace('.', '/')}/__init__.py" in names, package
    assert not [n for n in names if n.startswith(("tests/", "bench/", "build/"))]
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "lakewatch = desktop_app.cli:main" in entry_points


def whl_bytes(wheel: Path, name: str) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        return whl.read(name)


@pytest.mark.slow
def test_installed_command_prints_its_version(installed, tmp_path):
    started = time.monotonic()
    proc = run([installed["exe"], "--version"], 120, cwd=tmp_path,
               env=user_env(installed, tmp_path))
    timed(installed, "version_s", started)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"lakewatch {__version__}\n"


PROBE = """
import importlib.metadata, importlib.resources, json, sysconfig
import desktop_app, pipeline
from desktop_app.resources import RESOURCE_FILES, resource_path, resource_root
from PySide6.QtGui import QGuiApplication, QIcon, QImage
app = QGuiApplication([])
svg = importlib.resources.files("lakewatch_resources") / "lakewatch.svg"
print(json.dumps({
    "site": sysconfig.get_paths()["purelib"],
    "modules": [pipeline.__file__, desktop_app.__file__],
    "root": str(resource_root()),
    "files": {n: str(resource_path(*n.split("/"))) for n in RESOURCE_FILES},
    "svg": str(svg), "svg_is_file": svg.is_file(),
    "recorded": sorted(str(f) for f in importlib.metadata.files("lakewatch")
                       if f.parts[0] == "lakewatch_resources" and f.suffix != ".pyc"),
    "icon_ok": not QIcon(str(svg)).pixmap(64, 64).isNull(),
    "png_size": QImage(str(resource_path("lakewatch.png"))).width(),
}))
"""


@pytest.mark.slow
def test_installed_package_finds_its_resources_in_site_packages(installed, tmp_path):
    proc = run([installed["python"], "-c", PROBE], 120, cwd=tmp_path,
               env=user_env(installed, tmp_path))
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    site = Path(got["site"])
    assert site.is_relative_to(installed["venv"])
    assert [Path(m) for m in got["modules"]] == [site / "pipeline" / "__init__.py",
                                                 site / "desktop_app" / "__init__.py"]
    assert Path(got["root"]) == site / resources.RESOURCE_PACKAGE
    assert got["files"] == {n: str(site / resources.RESOURCE_PACKAGE / n)
                            for n in resources.RESOURCE_FILES}
    for name, path in got["files"].items():
        assert Path(path).read_bytes() == (ROOT / "resources" / name).read_bytes(), name
    assert got["svg"] == str(site / resources.RESOURCE_PACKAGE / "lakewatch.svg")
    assert got["svg_is_file"] is True
    assert got["recorded"] == sorted(
        ["lakewatch_resources/__init__.py",
         *(f"lakewatch_resources/{n}" for n in resources.RESOURCE_FILES)])
    assert got["icon_ok"] is True
    assert got["png_size"] > 0


@pytest.mark.slow
def test_installed_self_test_passes(installed, tmp_path):
    env = user_env(installed, tmp_path)
    data = tmp_path / "data"
    started = time.monotonic()
    args = app_args(data, "--set", f"storage.cache_dir={jar_cache()}")
    proc = run([installed["exe"], *args, "self-test"], 600, cwd=tmp_path, env=env)
    timed(installed, "self_test_s", started)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-4000:]
    steps = self_test_steps(out)
    window = next(x for x in steps if QT_WINDOW_STEP in x)
    assert "offscreen platform, " in window and window.endswith(" 5 tabs"), window
    assert not [w for w in RESOURCE_WARNINGS if w in out + proc.stderr], proc.stderr[-4000:]
    # the jars came from the cache named on the command line; the fresh HOME got none
    assert not (Path(env["HOME"]) / ".cache" / "lakewatch").exists()
    assert leftover_processes(str(data)) == []


def handles_sigterm(pid: int) -> bool:
    """True once the process catches SIGTERM (Linux: SigCgt in /proc/PID/status).

    ``desktop_app.app.run_gui`` installs its SIGTERM handler right after showing the window,
    so from then on SIGTERM closes the window the way the user does.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_installed_desktop_window_opens_and_closes(installed, tmp_path):
    """`lakewatch` with no command: the window shows (offscreen), SIGTERM closes it, which
    saves the layout and exits 0. (With an X server, packaging/window_probe.py also times it.)"""
    env = user_env(installed, tmp_path)
    data = tmp_path / "data"
    started = time.monotonic()
    args = app_args(data, "--set", f"storage.cache_dir={jar_cache()}")
    proc = subprocess.Popen([str(installed["exe"]), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = started + 120
        while proc.poll() is None and not handles_sigterm(proc.pid):
            assert time.monotonic() < deadline, "no window after 120 s"
            time.sleep(0.05)
        installed["figures"]["seconds_to_window"] = round(time.monotonic() - started, 2)
        assert proc.poll() is None, proc.communicate()[1][-4000:]
        time.sleep(1)  # a turn of the event loop with the window up
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    err = err.decode(errors="replace")
    assert proc.returncode == 0, err[-4000:]
    layout = json.loads((data / "ui_state.json").read_text())  # written by closeEvent
    assert {"geometry", "window_state", "tab", "dashboard_range_s"} <= layout.keys()
    assert not [w for w in RESOURCE_WARNINGS if w in err], err[-4000:]
    assert not (Path(env["HOME"]) / ".cache" / "lakewatch").exists()
