"""The processor's SQL endpoint (Spark Connect) against the real thing: a stand-in processor in
its own process (``tests/helpers/connect_processor.py``, built the way ``lakewatch process``
builds its session), the app's engine and a plain pyspark Connect client as clients."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.sql import remote
from pipeline.sql.endpoint import Endpoint, endpoint_path, find
from pipeline.sql.engine import SqlEngine
from pipeline.sql.errors import QueryCancelledError, RefusedError, SqlError
from tests.pipeline.sql.test_engine import LONG_QUERY, REFUSED

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def processor(base_settings, tmp_path_factory):
    """The stand-in processor; yields its Settings once its endpoint is published."""
    from pipeline.jvm.connect_guard import build_guard_jar

    jar, remark = build_guard_jar(base_settings)
    if jar is None:
        pytest.skip(f"no guard jar: {remark}")
    settings = base_settings.model_copy(deep=True)
    settings.storage.data_dir = tmp_path_factory.mktemp("connect") / "data"
    proc = subprocess.Popen(  # noqa: S603 - our own helper, fixed argv
        [sys.executable, "-m", "tests.helpers.connect_processor", str(settings.storage.data_dir)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True)
    try:
        for line in proc.stdout:
            if line.startswith(("ENDPOINT ", "NO-GUARD-JAR")):
                break
        if line.strip() != f"ENDPOINT {endpoint_path(settings)}":
            pytest.fail(f"the stand-in processor did not publish its endpoint: {line!r}")
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep its pipe drained
        yield settings
    finally:
        proc.stdin.close()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def endpoint(processor) -> Endpoint:
    found = find(processor)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def engine(processor):
    """The app's engine: it finds the endpoint itself, as SqlService and ``lakewatch sql`` do."""
    eng = SqlEngine(processor)
    eng.start()
    assert eng.is_remote
    return eng


@pytest.fixture(scope="module")
def foreign(endpoint):
    """A plain pyspark Connect client holding the token: anyone who could read the file."""
    from pyspark.sql.connect.session import SparkSession as RemoteSession

    session = RemoteSession.builder.remote(endpoint.url).create()
    yield session
    session.stop()


def test_endpoint_is_published_privately_and_listens_on_loopback_only(processor, endpoint):
    import psutil

    assert stat.S_IMODE(os.stat(endpoint_path(processor)).st_mode) == 0o600
    assert endpoint.token not in repr(endpoint)
    owner = psutil.Process(endpoint.pid)  # the processor; its JVM is a child process
    listening = [c for p in (owner, *owner.children(recursive=True))
                 for c in p.net_connections(kind="tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == endpoint.port]
    assert [c.laddr.ip for c in listening] == ["127.0.0.1"]
    outside = _outside_address()
    if outside is not None:
        with pytest.raises(OSError), socket.create_connection((outside, endpoint.port), 2):
            pass


def _outside_address() -> str | None:
    """This machine's address on its default route, None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_reads_run_on_the_processors_session(engine):
    assert engine.execute("SELECT count(*) FROM logs").rows == [(5,)]
    assert engine.execute("SELECT count(*) FROM logs VERSION AS OF 0").rows == [(3,)]
    r = engine.execute("SELECT event_id FROM logs ORDER BY ts DESC LIMIT 100")
    assert [row[0] for row in r.rows] == ["e5", "e4", "e3", "e2", "e1"]
    assert r.columns == ["event_id"] and r.types == ["string"]
    assert engine.execute("SELECT count(*) FROM logs WHERE level = :l AND status > :s",
                          {"l": "ERROR", "s": 500}).rows == [(1,)]
    assert engine.execute("SELECT count(*) FROM logs WHERE level = :l",
                          {"l": "x' OR '1'='1"}).rows == [(0,)]
    info = engine.table_info("logs")
    assert info.row_count == 5 and info.version == 1 and info.partition_columns == ["date"]
    assert [h.version for h in engine.table_history("logs")] == [1, 0]
    assert "Scan" in engine.explain("SELECT * FROM logs")


def test_row_cap_applies_on_the_server(engine):
    r = engine.execute("SELECT * FROM range(100)", row_cap=7)
    assert r.fetch_all() == [(i,) for i in range(7)] and r.truncated


def test_errors_keep_their_position(engine):
    with pytest.raises(SqlError) as exc:
        engine.execute("SELECT nope FROM logs")
    assert not isinstance(exc.value, RefusedError)
    assert (exc.value.line, exc.value.column) == (1, 8)
    with pytest.raises(SqlError) as exc:
        engine.execute("SELEC 1")
    assert not isinstance(exc.value, RefusedError) and exc.value.line == 1


@pytest.mark.parametrize("sql, label", REFUSED.values(), ids=list(REFUSED))
def test_the_apps_refusals_hold_on_the_endpoint(engine, sql, label):
    with pytest.raises(RefusedError) as exc:
        engine.execute(sql)
    assert exc.value.message.startswith("refused:") and label in exc.value.message
    assert engine.running() == []


def _refused(fn) -> str:
    from pyspark.errors.exceptions.connect import SparkConnectGrpcException

    with pytest.raises(SparkConnectGrpcException) as exc:
        fn()
    assert remote.status_name(exc.value) == "PERMISSION_DENIED", exc.value
    return remote.refusal(exc.value).message


def test_a_foreign_client_cannot_write_load_code_or_read_files(foreign, tmp_path):
    from pyspark.sql.connect.functions import udf

    logs = str(tmp_path / "x")
    cases = {
        "INSERT": lambda: foreign.sql("INSERT INTO scratch SELECT 9, 90").collect(),
        "df.write": lambda: foreign.range(3).write.saveAsTable("stolen"),
        "df.write ": lambda: foreign.range(3).write.insertInto("scratch"),
        "df.writeTo": lambda: foreign.range(3).writeTo("scratch").append(),
        "spark.read": lambda: foreign.read.parquet(logs).collect(),
        "spark.read ": lambda: foreign.read.format("delta").load(logs).collect(),
        "direct file query": lambda: foreign.table("parquet.`/etc`").collect(),
        "reflect()": lambda: foreign.range(1).selectExpr(
            "reflect('java.lang.System', 'getenv', 'HOME')").collect(),
        "java_method()": lambda: foreign.sql(
            "SELECT java_method('java.lang.Runtime', 'getRuntime')").collect(),
        "user-defined function": lambda: foreign.range(1).select(
            udf(lambda x: x)("id")).collect(),
        "setting a session configuration": lambda: foreign.conf.set(
            "spark.sql.shuffle.partitions", "1"),
        "SET": lambda: foreign.sql("SET spark.sql.shuffle.partitions = 1").collect(),
        "ADD JAR": lambda: foreign.sql("ADD JAR /tmp/evil.jar").collect(),
        "AddArtifacts": lambda: foreign.addArtifacts(__file__, pyfile=True),
        "registering a view": lambda: foreign.range(1).createOrReplaceTempView("v"),
        "DROP": lambda: foreign.sql("DROP TABLE logs").collect(),
    }
    for label, fn in cases.items():
        message = _refused(fn)
        assert message.startswith("refused:") and label.strip() in message, (label, message)
    assert foreign.sql("SELECT count(*), sum(v) FROM scratch").collect()[0] == (4, 60)
    assert foreign.sql("SELECT count(*) FROM logs").collect()[0][0] == 5
    assert not foreign.catalog.tableExists("stolen")


def test_a_wrong_or_missing_token_is_refused(endpoint):
    from pyspark.errors.exceptions.connect import SparkConnectGrpcException
    from pyspark.sql.connect.session import SparkSession as RemoteSession

    for url in (f"sc://localhost:{endpoint.port}/;token=wrong",
                f"sc://localhost:{endpoint.port}/"):
        session = RemoteSession.builder.remote(url).create()
        with pytest.raises(SparkConnectGrpcException) as exc:
            session.sql("SELECT 1").collect()
        assert remote.status_name(exc.value) == "UNAUTHENTICATED"


def test_cancel_interrupts_by_tag_and_the_session_stays_usable(engine):
    outcome: dict = {}

    def run():
        try:
            engine.execute(LONG_QUERY, query_id="long-remote")
            outcome["result"] = "finished"
        except SqlError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(3.0)  # planned and running on the processor
    assert engine.cancel("long-remote")
    worker.join(60)
    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), QueryCancelledError), outcome
    assert engine.running() == []
    assert engine.execute("SELECT count(*) FROM logs").rows == [(5,)]


def test_no_endpoint_means_a_local_session(settings, tmp_path):
    assert remote.connect(settings) is None  # no file
    path = endpoint_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # noqa: S603
    dead.wait()
    path.write_text(f'{{"host": "127.0.0.1", "port": 1, "token": "t", "pid": {dead.pid}}}')
    assert find(settings) is None  # its processor is gone
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path.write_text(f'{{"host": "127.0.0.1", "port": {port}, "token": "t", "pid": {os.getpid()}}}')
    started = time.monotonic()
    assert remote.connect(settings.model_copy(update={"sql": settings.sql.model_copy(
        update={"connect_timeout_s": 2.0})})) is None  # nothing answers there
    assert time.monotonic() - started < 5
    off = settings.model_copy(update={"sql": settings.sql.model_copy(update={"connect": False})})
    assert remote.connect(off) is None


def test_progress_over_connect_and_cancel_within_a_second(engine):
    from tests.pipeline.sql.test_progress_cancel import GROUPED, GROUPED_ROWS

    assert engine.execute(GROUPED, query_id="grouped-remote").rows == GROUPED_ROWS
    final = engine.progress("grouped-remote")
    assert final.finished and final.tasks_running == 0
    assert (final.stages_done, final.tasks_done) == (final.stages_total, final.tasks_total)

    outcome: dict = {}

    def run():
        try:
            engine.execute(LONG_QUERY, query_id="long-progress")
        except SqlError as exc:
            outcome["error"] = exc
        outcome["at"] = time.monotonic()

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 120
    while True:  # the server reports stages and tasks as they run
        p = engine.progress("long-progress")
        if p is not None and p.tasks_running > 0:
            break
        assert time.monotonic() < deadline, "no progress reported for the long query"
        time.sleep(0.05)
    assert 0 <= p.tasks_done < p.tasks_total and p.stages_done < p.stages_total
    assert p.bytes_read is not None and not p.finished
    asked = time.monotonic()
    assert engine.cancel("long-progress")
    returned = time.monotonic() - asked
    worker.join(30)
    assert not worker.is_alive()
    raised = outcome["at"] - asked
    print(f"over Connect: cancel returned in {returned:.3f} s, statement raised in {raised:.3f} s")
    assert isinstance(outcome.get("error"), QueryCancelledError), outcome
    assert returned < 1.0 and raised < 1.0
    end = engine.progress("long-progress")
    assert end.finished and end.tasks_done < end.tasks_total
