"""The Spark Connect endpoint's read-only guard, on the JVM side (``connect_src/``).

The processor serves SQL to the app over Spark Connect on its own SparkSession. A gRPC
interceptor (``io.lakewatch.connect.GuardInterceptor``) hands every request's facts (message
types, SQL texts, expression strings, function and table names) to the Python policy
(:mod:`pipeline.sql.connect_policy`) before Spark plans it, and refuses the call with the
policy's reason. ``lakewatch setup`` compiles the classes against the Spark Connect jar in
``pyspark/jars`` (its shaded gRPC and protobuf); without a JDK the endpoint is not served.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.jvm import javac
from pipeline.settings import Settings

SOURCES = Path(__file__).parent / "connect_src"
GROUP = "connect-guard"
INTERCEPTOR_CLASS = "io.lakewatch.connect.GuardInterceptor"
PLUGIN_CLASS = "org.apache.spark.sql.connect.SparkConnectPlugin"


def _jar_path(settings: Settings) -> Path:
    return javac.jar_path(SOURCES, settings.jars_dir / GROUP, "lakewatch-connect-guard")


def guard_jar(settings: Settings) -> Path | None:
    """The built jar, None when not built (a bundle without sources finds it by name)."""
    if javac.sources(SOURCES):
        jar = _jar_path(settings)
        return jar if jar.is_file() else None
    return next(iter(sorted((settings.jars_dir / GROUP).glob("lakewatch-connect-guard-*.jar"))),
                None)


def build_guard_jar(settings: Settings) -> tuple[Path | None, str]:
    """Compile the guard against pyspark's Spark Connect jar (a no-op when built)."""
    jar = guard_jar(settings)
    if jar is not None:
        return jar, "cached"
    if not javac.sources(SOURCES):
        return None, f"no Java sources in {SOURCES}"
    compiler = javac.find_javac()
    if compiler is None:
        return None, "no javac (a JRE only): SQL runs in the app's own Spark session"
    from pipeline.jvm.artifacts import pyspark_jars_dir

    classpath = [str(p) for p in pyspark_jars_dir().glob("spark-connect_*.jar")]
    if not classpath:
        return None, "pyspark ships no spark-connect jar"
    jar = _jar_path(settings)
    javac.compile_jar(compiler, SOURCES, classpath, jar)
    return jar, "compiled"


def connect_server_conf(settings: Settings, token: str) -> dict[str, str]:
    """Conf that starts the Spark Connect server inside the session: loopback only, any free
    port, ``token`` required, every request through the guard. {} when the jar is not built
    (no endpoint: an unguarded one is never started)."""
    jar = guard_jar(settings)
    if jar is None:
        return {}
    return {
        "spark.plugins": PLUGIN_CLASS,
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": "0",
        "spark.connect.authenticate.token": token,
        "spark.connect.grpc.interceptor.classes": INTERCEPTOR_CLASS,
        # stage/task progress for the app's progress bar, 4 times a second (default 2 s)
        "spark.connect.progress.reportInterval": "250ms",
        "spark.driver.extraClassPath": str(jar),
    }
