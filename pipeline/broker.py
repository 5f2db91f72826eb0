"""The embedded Kafka broker: one KRaft node (broker + controller) in a child JVM.

Its storage, config, logs and pid file live under ``settings.broker_dir`` (never /tmp), so
topics survive restarts. The JVM runs from the jar cache (``lakewatch setup``).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import psutil

from pipeline.jvm import kafka_classpath, require_java
from pipeline.settings import Settings

log = logging.getLogger(__name__)

_LOG4J2 = """\
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 5
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.state.name = state.change.logger
logger.state.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = WARN
"""


class BrokerError(RuntimeError):
    """The embedded broker could not start or stop; the message says why."""


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _cluster_id() -> str:
    while True:  # Kafka rejects ids starting with '-'
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class EmbeddedBroker:
    """Start, check and stop the local broker. Safe to use from several processes: the pid
    file, not this object, says whether a broker runs."""

    def __init__(self, settings: Settings) -> None:
        if settings.attached:
            raise BrokerError(
                f"kafka.bootstrap_servers is set ({settings.kafka.bootstrap_servers}): attach "
                "mode uses that cluster and starts no embedded broker"
            )
        self.settings = settings
        self.dir = settings.broker_dir
        self.data_dir = self.dir / "data"
        self.logs_dir = self.dir / "logs"
        self.properties = self.dir / "server.properties"
        self.log4j = self.dir / "log4j2.properties"
        self.pid_file = self.dir / "broker.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    # -- config -------------------------------------------------------------------------
    def render_properties(self) -> str:
        b = self.settings.broker
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{b.host}:{b.controller_port}",
            f"listeners=PLAINTEXT://{b.host}:{b.port},CONTROLLER://{b.host}:{b.controller_port}",
            f"advertised.listeners=PLAINTEXT://{b.host}:{b.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={self.data_dir}",
            f"num.partitions={self.settings.kafka.partitions}",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=5",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            f"log.retention.ms={self.settings.kafka.retention_ms}",
            "message.max.bytes=10485760",
            "replica.fetch.max.bytes=10485760",
            "auto.create.topics.enable=false",
            "",
        ])

    def _java_cmd(self, main_class: str, *args: str, heap_mb: int | None = None) -> list[str]:
        java = require_java()
        heap = heap_mb or self.settings.broker.heap_mb
        return [
            str(java), f"-Xmx{heap}m", f"-Xms{min(heap, 256)}m",
            "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.logs_dir}", f"-Dlog4j2.configurationFile={self.log4j}",
            "-cp", kafka_classpath(self.settings), main_class, *args,
        ]

    def _write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.properties.write_text(self.render_properties())
        self.log4j.write_text(_LOG4J2)

    def _format_if_needed(self) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return
        cmd = self._java_cmd(
            "kafka.tools.StorageTool", "format", "-t", _cluster_id(),
            "-c", str(self.properties), "-g", heap_mb=256,
        )
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise BrokerError(f"formatting Kafka storage in {self.data_dir} failed:\n"
                              f"{(proc.stdout + proc.stderr).strip()[-2000:]}")

    # -- lifecycle ------------------------------------------------------------------------
    def running_pid(self) -> int | None:
        """Pid of a live broker JVM of this data dir, from the pid file."""
        try:
            pid = int(self.pid_file.read_text().strip())
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE and "kafka.Kafka" in proc.cmdline():
                return pid
        except (FileNotFoundError, ValueError, psutil.Error):
            pass
        return None

    def is_ready(self, timeout: float = 2.0) -> bool:
        """True when the broker answers a metadata request."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({
            "bootstrap.servers": self.settings.bootstrap_servers,
            "socket.timeout.ms": int(timeout * 1000),
            "log_level": 0,
        })
        try:
            md = admin.list_topics(timeout=timeout)
        except Exception:
            return False
        return bool(md.brokers)

    def start(self, detach: bool = False) -> int:
        """Start the broker (or adopt the running one) and wait until it is ready.

        ``detach`` keeps it running after this Python process exits (``lakewatch broker
        start``); otherwise it is a child that ``stop`` or process exit ends.
        Returns the JVM's pid.
        """
        pid = self.running_pid()
        if pid is not None:
            self.wait_ready()
            return pid
        b = self.settings.broker
        for port, key in ((b.port, "broker.port"), (b.controller_port, "broker.controller_port")):
            if not _port_free(b.host, port):
                raise BrokerError(
                    f"port {port} on {b.host} is already in use (config key {key}); stop what "
                    "uses it or choose another port"
                )
        self._write_config()
        self._format_if_needed()
        out = (self.logs_dir / "stdout.log").open("ab")
        started = time.monotonic()
        self._proc = subprocess.Popen(
            self._java_cmd("kafka.Kafka", str(self.properties)),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=detach,
        )
        out.close()
        self.pid_file.write_text(str(self._proc.pid))
        try:
            self.wait_ready()
        except BrokerError:
            self.stop()
            raise
        log.info("Kafka broker ready on %s in %.1f s (pid %d)",
                 self.settings.bootstrap_servers, time.monotonic() - started, self._proc.pid)
        return self._proc.pid

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.settings.broker.ready_timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrokerError(
                    f"the Kafka broker exited with code {self._proc.returncode} while starting; "
                    f"last log lines:\n{self.log_tail()}"
                )
            if self.is_ready(timeout=1.0):
                return
            time.sleep(0.2)
        raise BrokerError(
            f"the Kafka broker did not become ready within {self.settings.broker.ready_timeout_s}"
            f" s (config key broker.ready_timeout_s); last log lines:\n{self.log_tail()}"
        )

    def stop(self) -> bool:
        """SIGTERM, then SIGKILL after ``broker.stop_timeout_s``; True if a broker was stopped."""
        pid = self._proc.pid if self._proc and self._proc.poll() is None else self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        try:
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.settings.broker.stop_timeout_s)
            except psutil.TimeoutExpired:
                log.warning("broker pid %d ignored SIGTERM; killing it", pid)
                proc.kill()
                proc.wait(10)
        except psutil.NoSuchProcess:
            pass
        if self._proc is not None:
            with contextlib.suppress(Exception):
                self._proc.wait(1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def wait(self) -> int:
        """Block until the broker JVM (a child of this process) exits; its exit code."""
        if self._proc is None:
            raise BrokerError("this process did not start the broker")
        return self._proc.wait()

    def log_tail(self, lines: int = 20) -> str:
        chunks = []
        for name in ("stdout.log", "server.log"):
            path = self.logs_dir / name
            with contextlib.suppress(FileNotFoundError):
                chunks.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(chunks[-lines:])

    @property
    def log_file(self) -> Path:
        return self.logs_dir / "server.log"

