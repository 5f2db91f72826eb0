"""Maven artifacts that Lakewatch runs on, resolved with Apache Ivy (the jar pyspark ships).

Three groups, each cached in its own folder of ``settings.jars_dir`` with a ``manifest.json``
(coordinates, files, sizes, SHA-256): the Kafka broker's runtime classpath, Spark's Kafka
connector at exactly the installed pyspark version, and Delta for that Spark minor. Jars that
pyspark already ships are left out of the Spark groups, as ``spark.jars.packages`` would.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from xml.sax.saxutils import quoteattr

from pipeline.jvm.java import require_java
from pipeline.settings import Settings

KAFKA_VERSION = "4.3.1"
LOG4J_VERSION = "2.25.4"
SETUP_HINT = "run `lakewatch setup` (needs access to Maven Central once)"


class MissingArtifactsError(RuntimeError):
    """Jars are not in the cache; the message names them and the command that fixes it."""


class ResolveError(RuntimeError):
    """Ivy could not resolve or download a group."""


def spark_version() -> str:
    import pyspark

    return pyspark.__version__


def delta_version() -> str:
    return metadata.version("delta-spark")


def _spark_minor() -> str:
    return ".".join(spark_version().split(".")[:2])


@dataclass(frozen=True)
class ArtifactGroup:
    name: str
    title: str
    #: (organisation, module, revision) triples
    coordinates: Callable[[], tuple[tuple[str, str, str], ...]]
    #: leave out jars that pyspark/jars already has (same module name)
    skip_pyspark_jars: bool


ARTIFACT_GROUPS: tuple[ArtifactGroup, ...] = (
    ArtifactGroup(
        "kafka",
        "Kafka broker",
        lambda: (
            ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
            ("org.apache.kafka", "kafka-tools", KAFKA_VERSION),
            # Kafka 4.x POMs no longer bring an SLF4J binding: without it the broker logs nothing.
            ("org.apache.logging.log4j", "log4j-slf4j2-impl", LOG4J_VERSION),
            ("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
        ),
        skip_pyspark_jars=False,
    ),
    ArtifactGroup(
        "spark-kafka",
        "Spark Kafka connector",
        lambda: (("org.apache.spark", "spark-sql-kafka-0-10_2.13", spark_version()),),
        skip_pyspark_jars=True,
    ),
    ArtifactGroup(
        "delta",
        "Delta Lake",
        lambda: (("io.delta", f"delta-spark_{_spark_minor()}_2.13", delta_version()),),
        skip_pyspark_jars=True,
    ),
)


def _group(name: str) -> ArtifactGroup:
    for group in ARTIFACT_GROUPS:
        if group.name == name:
            return group
    raise KeyError(name)


def pyspark_jars_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def ivy_jar() -> Path:
    jars = sorted(pyspark_jars_dir().glob("ivy-*.jar"))
    if not jars:
        raise ResolveError(f"no Apache Ivy jar in {pyspark_jars_dir()}; reinstall pyspark")
    return jars[-1]


def _module_of(jar_name: str) -> str:
    """'kafka-clients-3.9.1.jar' -> 'kafka-clients'."""
    match = re.match(r"^(.*?)-\d[^-]*(?:-.*)?\.jar$", jar_name)
    return match.group(1) if match else jar_name.removesuffix(".jar")


# -- the cache -----------------------------------------------------------------------------
def group_dir(settings: Settings, name: str) -> Path:
    return settings.jars_dir / name


def _manifest_path(settings: Settings, name: str) -> Path:
    return group_dir(settings, name) / "manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _coords_key(group: ArtifactGroup) -> list[str]:
    return [":".join(c) for c in group.coordinates()]


def cached_group(settings: Settings, name: str, verify: bool = False) -> list[Path] | None:
    """The group's jars if the cache holds exactly what the manifest says, else None.

    ``verify`` re-hashes every file (setup does); the fast check compares names and sizes.
    """
    group = _group(name)
    path = _manifest_path(settings, name)
    try:
        manifest = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if manifest.get("coordinates") != _coords_key(group):
        return None
    jars = []
    for entry in manifest["files"]:
        jar = path.parent / entry["name"]
        try:
            if jar.stat().st_size != entry["size"]:
                return None
        except FileNotFoundError:
            return None
        if verify and _sha256(jar) != entry["sha256"]:
            return None
        jars.append(jar)
    return jars


def group_jars(settings: Settings, name: str) -> list[Path]:
    jars = cached_group(settings, name)
    if jars is None:
        group = _group(name)
        raise MissingArtifactsError(
            f"{group.title} jars ({', '.join(_coords_key(group))}) are not in "
            f"{group_dir(settings, name)}; {SETUP_HINT}"
        )
    return jars


def kafka_classpath(settings: Settings) -> str:
    """Classpath for the broker and Kafka's own tools (ProducerPerformance)."""
    return str(group_dir(settings, "kafka") / "*") if group_jars(settings, "kafka") else ""


def spark_extra_jars(settings: Settings) -> list[Path]:
    """Jars to hand Spark through ``spark.jars``: connector + Delta, never downloaded here."""
    missing = []
    jars: list[Path] = []
    for name in ("spark-kafka", "delta"):
        try:
            jars.extend(group_jars(settings, name))
        except MissingArtifactsError as exc:
            missing.append(str(exc))
    if missing:
        raise MissingArtifactsError("\n".join(missing))
    return jars


# -- resolving -----------------------------------------------------------------------------
def _ivy_xml(coords: tuple[tuple[str, str, str], ...]) -> str:
    deps = "\n".join(
        f"    <dependency org={quoteattr(o)} name={quoteattr(m)} rev={quoteattr(r)} "
        'conf="default->default(*),runtime(*),master(*)"/>'
        for o, m, r in coords
    )
    return (
        '<ivy-module version="2.0">\n'
        '  <info organisation="lakewatch" module="lakewatch-deps"/>\n'
        '  <configurations><conf name="default"/></configurations>\n'
        f"  <dependencies>\n{deps}\n  </dependencies>\n</ivy-module>\n"
    )


def resolve_group(settings: Settings, name: str, log: Callable[[str], None] = print) -> list[Path]:
    """Resolve one group with Ivy into the cache; a no-op when the cache is complete."""
    group = _group(name)
    cached = cached_group(settings, name, verify=True)
    if cached is not None:
        return cached
    java = require_java()
    target = group_dir(settings, name)
    ivy_home = settings.cache_dir / "ivy"
    with tempfile.TemporaryDirectory(prefix="lakewatch-ivy-") as tmp:
        ivy_file = Path(tmp) / "ivy.xml"
        ivy_file.write_text(_ivy_xml(group.coordinates()))
        cachepath = Path(tmp) / "cachepath.txt"
        cmd = [
            str(java), f"-Divy.home={ivy_home}", "-jar", str(ivy_jar()),
            "-ivy", str(ivy_file), "-confs", "default",
            "-cache", str(ivy_home / "cache"), "-cachepath", str(cachepath),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800)
        if proc.returncode != 0 or not cachepath.is_file():
            problems = [
                line.strip() for line in proc.stdout.splitlines()
                if "UNRESOLVED" in line or "::" in line and "not found" in line
                or "FAILED" in line or "Server access error" in line
            ]
            detail = "\n  ".join(problems[-12:]) or proc.stderr.strip()[-2000:]
            raise ResolveError(
                f"could not resolve {group.title} ({', '.join(_coords_key(group))}) from Maven "
                f"Central:\n  {detail}"
            )
        resolved = [Path(p) for p in cachepath.read_text().strip().split(":") if p]
    skip = (
        {_module_of(j.name) for j in pyspark_jars_dir().glob("*.jar")}
        if group.skip_pyspark_jars else set()
    )
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    files = []
    for src in resolved:
        if src.suffix != ".jar" or _module_of(src.name) in skip:
            continue
        org = src.parent.parent.parent.name
        dest = target / f"{org}_{src.name}"
        shutil.copy2(src, dest)
        files.append({"name": dest.name, "size": dest.stat().st_size, "sha256": _sha256(dest)})
    manifest = {"coordinates": _coords_key(group), "files": files, "created": time.time()}
    _manifest_path(settings, name).write_text(json.dumps(manifest, indent=1))
    return [target / f["name"] for f in files]


def setup_all(settings: Settings, log: Callable[[str], None] = print) -> dict[str, dict]:
    """Resolve every group, one progress line each; returns per-group stats."""
    stats: dict[str, dict] = {}
    total = len(ARTIFACT_GROUPS)
    for i, group in enumerate(ARTIFACT_GROUPS, 1):
        started = time.monotonic()
        was_cached = cached_group(settings, group.name, verify=True) is not None
        jars = resolve_group(settings, group.name, log)
        size = sum(j.stat().st_size for j in jars)
        took = time.monotonic() - started
        state = "cached, verified" if was_cached else f"downloaded in {took:.1f} s"
        log(
            f"[{i}/{total}] {group.title:<22} {', '.join(_coords_key(group))}: "
            f"{len(jars)} jars, {size / 1e6:.1f} MB ({state})"
        )
        stats[group.name] = {"jars": len(jars), "bytes": size, "downloaded": not was_cached}
    return stats
