"""The SQL engine against real Delta tables on the suite's one SparkSession."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime

import pytest

from pipeline.schemas import LOGS_DDL
from pipeline.sql.engine import SqlEngine, reads_in_fixed_order
from pipeline.sql.errors import QueryCancelledError, RefusedError, SqlError, TimeLimitError
from pipeline.sql.query_builder import Filter, QuerySpec, build_query

LOG_ROWS = [
    # event_id, ts, level, source, method, endpoint, status, latency_ms, bytes
    ("e1", datetime(2026, 1, 1, 10, 0, 0), "INFO", "web", "GET", "/", 200, 12.0, 100),
    ("e2", datetime(2026, 1, 1, 10, 0, 1), "ERROR", "web", "GET", "/api", 500, 250.0, 10),
    ("e3", datetime(2026, 1, 1, 10, 0, 2), "INFO", "api", "POST", "/api", 201, 30.0, 300),
    ("e4", datetime(2026, 1, 1, 10, 0, 3), "WARN", "api", "GET", "/x", 404, 5.0, 0),
    ("e5", datetime(2026, 1, 2, 11, 0, 0), "ERROR", "api", "GET", "/api", 503, 900.0, 20),
]


def _logs_df(spark, rows):
    from pyspark.sql import functions as F

    base = spark.createDataFrame(
        rows,
        "event_id STRING, ts TIMESTAMP, level STRING, source STRING, method STRING, "
        "endpoint STRING, status INT, latency_ms DOUBLE, bytes BIGINT",
    )
    cols = [c.strip().split(" ")[0] for c in LOGS_DDL.split(",")]
    typed = {c.strip().split(" ")[0]: c.strip().split(" ")[1] for c in LOGS_DDL.split(",")}
    out = base
    for c in cols:
        if c not in base.columns:
            out = out.withColumn(c, F.lit(None).cast(typed[c]))
    out = out.withColumn("date", F.to_date("ts"))
    return out.select(*cols)


@pytest.fixture(scope="module")
def sql_settings(base_settings, tmp_path_factory):
    s = base_settings.model_copy(deep=True)
    s.storage.data_dir = tmp_path_factory.mktemp("sql-engine") / "data"
    return s


@pytest.fixture(scope="module")
def engine(spark, sql_settings):
    # Delta rebuilds a table snapshot with 50 tasks by default: far too many for 2 cores.
    spark.conf.set("spark.databricks.delta.snapshotPartitions", "2")
    path = str(sql_settings.table_path("logs"))
    _logs_df(spark, LOG_ROWS[:3]).write.format("delta").partitionBy("date").save(path)  # v0
    _logs_df(spark, LOG_ROWS[3:]).write.format("delta").mode("append").save(path)  # v1
    spark.range(4).selectExpr("id", "id * 10 AS v").write.format("delta").save(
        str(sql_settings.table_path("scratch"))
    )
    eng = SqlEngine(sql_settings, spark)
    catalog = eng.start()
    assert {"logs", "scratch"} <= set(catalog)
    return eng


def test_known_queries_return_exact_results(engine):
    r = engine.execute(
        "SELECT level, count(*) AS n, max(latency_ms) AS worst FROM logs "
        "GROUP BY level ORDER BY level"
    )
    assert r.columns == ["level", "n", "worst"]
    assert r.types == ["string", "bigint", "double"]
    assert r.rows == [("ERROR", 2, 900.0), ("INFO", 2, 30.0), ("WARN", 1, 5.0)]
    assert r.done and not r.truncated
    r = engine.execute("SELECT event_id FROM logs WHERE status >= :s ORDER BY event_id",
                       {"s": 500})
    assert r.rows == [("e2",), ("e5",)]


def test_time_travel_returns_the_older_version(engine):
    assert engine.execute("SELECT count(*) FROM logs").rows == [(5,)]
    assert engine.execute("SELECT count(*) FROM logs VERSION AS OF 0").rows == [(3,)]
    hist = engine.table_history("logs")
    assert [h.version for h in hist] == [1, 0]
    ts = hist[1].timestamp
    r = engine.execute(f"SELECT count(*) FROM logs TIMESTAMP AS OF '{ts.isoformat(sep=' ')}'")
    assert r.rows == [(3,)]


def test_table_info(engine):
    info = engine.table_info("logs")
    assert info.row_count == 5
    assert info.partition_columns == ["date"]
    assert info.num_files >= 2 and info.size_bytes > 0
    assert info.version == 1
    assert [c.name for c in info.columns][:3] == ["event_id", "ts", "level"]


def test_paging_and_row_cap(engine):
    r = engine.execute("SELECT id FROM range(0, 2500, 1, 3)", first_page=100)
    assert len(r.rows) == 100 and not r.done
    assert len(r.fetch(1000)) == 1000
    assert r.fetch_all()[-1] == (2499,) and len(r.rows) == 2500 and not r.truncated
    capped = engine.execute("SELECT id FROM range(100)", row_cap=30)
    assert len(capped.fetch_all()) == 30 and capped.truncated


def test_first_page_from_a_limit_job_then_the_rest_without_repeats(engine):
    spark = engine.spark
    assert reads_in_fixed_order(spark.sql("SELECT event_id FROM logs WHERE status >= 400"))
    for sql in ("SELECT * FROM logs ORDER BY ts", "SELECT * FROM logs LIMIT 3",
                "SELECT level, count(*) FROM logs GROUP BY level", "SELECT rand() FROM logs",
                "SELECT DISTINCT level FROM logs"):
        assert not reads_in_fixed_order(spark.sql(sql)), sql
    r = engine.execute("SELECT id FROM range(0, 5000, 1, 2)", first_page=100)
    assert r.rows == [(i,) for i in range(100)] and len(r._repeat) == 100
    assert r.fetch_all(700) == [(i,) for i in range(5000)] and not r.truncated
    # a result smaller than the page is complete after the LIMIT job alone
    small = engine.execute("SELECT event_id FROM logs WHERE status >= 500 ORDER BY event_id")
    assert small.rows == [("e2",), ("e5",)] and small.done
    whole = engine.execute("SELECT event_id FROM logs WHERE status >= 400", first_page=10)
    assert sorted(whole.rows) == [("e2",), ("e4",), ("e5",)] and whole.done
    # rows that differ on the second read (table rewritten in between) are an error
    changed = engine.execute("SELECT id FROM range(0, 500, 1, 2)", first_page=100)
    changed._repeat[7] = (-1,)
    with pytest.raises(SqlError, match="changed while the result was being read"):
        changed.fetch(100)


def test_errors_carry_message_line_and_column(engine):
    with pytest.raises(SqlError) as exc:
        engine.execute("SELECT level,\n  nope\nFROM logs")
    assert exc.value.error_class.startswith("UNRESOLVED_COLUMN")
    assert "`nope`" in exc.value.message and "JVM" not in exc.value.message
    assert (exc.value.line, exc.value.column) == (2, 3)
    with pytest.raises(SqlError) as exc:
        list(engine.run_script("SELECT 1;\nSELECT * FRM logs"))
    assert exc.value.error_class == "PARSE_SYNTAX_ERROR"
    assert (exc.value.line, exc.value.column) == (2, 14)


def test_explain_is_readable_text(engine):
    plan = engine.explain("SELECT level FROM logs WHERE status = 500")
    assert "== Physical Plan ==" in plan and "logs" in plan


REFUSED = {
    "drop": ("DROP TABLE scratch", "DROP"),
    "delete": ("DELETE FROM scratch WHERE id = 1", "DELETE"),
    "insert": ("INSERT INTO scratch SELECT 9, 90", "INSERT"),
    "insert_from_first": ("FROM logs INSERT INTO scratch SELECT 1, 2", "INSERT"),
    "insert_with_cte": ("WITH c AS (SELECT 1 a, 2 b) INSERT INTO scratch SELECT * FROM c",
                        "INSERT"),
    "update": ("UPDATE scratch SET v = 0", "UPDATE"),
    "merge": ("MERGE INTO scratch t USING scratch s ON t.id = s.id WHEN MATCHED THEN DELETE",
              "MERGE"),
    "alter": ("ALTER TABLE scratch ADD COLUMNS (z INT)", "ALTER"),
    "truncate": ("TRUNCATE TABLE scratch", "TRUNCATE"),
    "create": ("CREATE TABLE other (a INT) USING delta", "CREATE"),
    "ctas": ("CREATE TABLE other AS SELECT * FROM logs", "CREATE"),
    "vacuum": ("VACUUM scratch", "VACUUM"),
    "optimize": ("OPTIMIZE scratch ZORDER BY (v)", "OPTIMIZE"),
    "restore": ("RESTORE TABLE scratch TO VERSION AS OF 0", "RESTORE"),
    "set": ("SET spark.sql.shuffle.partitions = 1", "SET"),
    "add_jar": ("ADD JAR /tmp/evil.jar", "ADD JAR"),
    "create_function_jar": ("CREATE FUNCTION f AS 'a.B' USING JAR '/tmp/evil.jar'",
                            "CREATE FUNCTION"),
    "transform": ("SELECT TRANSFORM(id) USING 'cat' AS (x) FROM scratch", "TRANSFORM"),
    "reflect": ("SELECT reflect('java.lang.System', 'getenv', 'HOME')", "reflect()"),
    "java_method": ("SELECT java_method('java.lang.Runtime', 'getRuntime')", "java_method()"),
    "reflect_in_subquery": (
        "SELECT * FROM logs WHERE level IN (SELECT reflect('java.lang.String', 'valueOf', 1))",
        "reflect()"),
    "reflect_after_many_columns": (
        "SELECT " + ", ".join(f"{i} AS c{i}" for i in range(40))
        + ", reflect('java.lang.String', 'valueOf', 1) AS r", "reflect()"),
    "file_json": ("SELECT * FROM json.`/etc`", "direct file query"),
    "file_parquet": ("SELECT * FROM parquet.`/tmp/x`", "direct file query"),
    "file_delta": ("SELECT count(*) FROM delta.`/tmp/x` VERSION AS OF 0", "direct file query"),
    "use": ("USE other_db", "USE"),
    "cache": ("CACHE TABLE logs", "CACHE TABLE"),
    "execute_immediate": ("EXECUTE IMMEDIATE 'DROP TABLE scratch'", "EXECUTE IMMEDIATE"),
    "explain_drop": ("EXPLAIN DROP TABLE scratch", "DROP"),
}


@pytest.mark.parametrize("sql, label", REFUSED.values(), ids=list(REFUSED))
def test_refused_statements(engine, sql, label):
    with pytest.raises(RefusedError) as exc:
        engine.execute(sql)
    assert exc.value.message.startswith("refused:") and label in exc.value.message
    assert engine.running() == []


def test_refused_statements_changed_nothing(engine, spark):
    assert engine.execute("SELECT count(*), sum(v) FROM scratch").rows == [(4, 60)]
    assert len(engine.table_history("scratch")) == 1
    assert spark.conf.get("spark.sql.shuffle.partitions") != "1"
    assert not spark.catalog.tableExists("other")


@pytest.mark.parametrize(
    "sql, first_row",
    [
        ("SELECT count(*) FROM logs", (5,)),
        ("WITH e AS (SELECT * FROM logs WHERE level = 'ERROR') SELECT count(*) FROM e", (2,)),
        ("DESCRIBE logs", ("event_id", "string", None)),
        ("SHOW TABLES", None),
        ("EXPLAIN SELECT * FROM logs", None),
        ("DESCRIBE HISTORY logs", None),
        ("SELECT * FROM range(3) ORDER BY id DESC", (2,)),
    ],
)
def test_allowed_reads_run(engine, sql, first_row):
    r = engine.execute(sql)
    assert r.rows
    if first_row is not None:
        assert r.rows[0] == first_row
    if sql == "SHOW TABLES":
        assert {row[1] for row in r.rows} >= {"logs", "scratch"}


def test_writes_switch_allows_own_tables_only(engine, sql_settings, spark):
    writer = SqlEngine(sql_settings.model_copy(update={"sql": sql_settings.sql.model_copy(
        update={"allow_writes": True})}), spark)
    writer.execute("INSERT INTO scratch VALUES (100, 1000)")
    assert engine.execute("SELECT count(*) FROM scratch").rows == [(5,)]
    writer.execute("DELETE FROM scratch WHERE id = 100")
    for sql in ("INSERT INTO logs SELECT * FROM logs", "DELETE FROM logs",
                "DROP TABLE logs", "CREATE TABLE analytics_x AS SELECT 1 AS a",
                "OPTIMIZE logs", "ADD JAR /tmp/evil.jar", "SELECT * FROM json.`/etc`"):
        with pytest.raises(RefusedError):
            writer.execute(sql)
    assert engine.execute("SELECT count(*) FROM logs").rows == [(5,)]


def test_injection_value_matches_no_rows(engine):
    catalog = {t: [c.name for c in cols] for t, cols in engine.refresh_catalog().items()}
    sql, args = build_query(
        QuerySpec(table="logs", columns=["event_id"],
                  filters=[Filter("level", "=", "x' OR '1'='1")]), catalog)
    assert engine.execute(sql, args).rows == []
    sql, args = build_query(
        QuerySpec(table="logs", columns=["event_id"], filters=[Filter("level", "=", "ERROR")],
                  order_by=[("event_id", False)]), catalog)
    assert engine.execute(sql, args).rows == [("e2",), ("e5",)]


LONG_QUERY = "SELECT count(*) FROM range(0, 200000, 1, 2) a CROSS JOIN range(0, 200000, 1, 2) b"


def _wait_for_job(spark, engine, query_id, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if spark.sparkContext.statusTracker().getJobIdsForGroup(f"lakewatch-sql-{query_id}"):
            return
        time.sleep(0.05)
    raise AssertionError("the long query never started a job")


def test_cancel_stops_a_long_query_and_session_stays_usable(engine, spark):
    outcome: dict = {}

    def run():
        try:
            engine.execute(LONG_QUERY, query_id="long1")
            outcome["result"] = "finished"
        except SqlError as exc:
            outcome["error"] = exc
        outcome["at"] = time.monotonic()

    worker = threading.Thread(target=run)
    worker.start()
    _wait_for_job(spark, engine, "long1")
    cancelled_at = time.monotonic()
    assert engine.cancel("long1")
    worker.join(30)
    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), QueryCancelledError), outcome
    assert outcome["at"] - cancelled_at < 2.0
    assert engine.running() == []
    assert engine.execute("SELECT count(*) FROM logs").rows == [(5,)]


def test_time_limit_stops_a_query(engine, sql_settings, spark):
    limited = SqlEngine(sql_settings.model_copy(update={"sql": sql_settings.sql.model_copy(
        update={"time_limit_s": 1.0})}), spark)
    started = time.monotonic()
    with pytest.raises(TimeLimitError, match="time limit"):
        limited.execute(LONG_QUERY)
    assert time.monotonic() - started < 30
    assert limited.running() == []
    assert engine.execute("SELECT count(*) FROM logs").rows == [(5,)]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_cli_runs_queries_and_refuses_writes(sql_settings, engine):
    cli_settings = sql_settings.model_copy(deep=True)
    cli_settings.spark.extra_conf = {"spark.databricks.delta.snapshotPartitions": "2"}
    env = {**__import__("os").environ, **cli_settings.to_env()}
    ok = subprocess.run(
        [sys.executable, "-m", "pipeline", "sql",
         "SELECT level, count(*) AS n FROM logs GROUP BY level ORDER BY level", "--format", "csv"],
        capture_output=True, text=True, env=env, timeout=540,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert ok.stdout == "level,n\nERROR,2\nINFO,2\nWARN,1\n"
    bad = subprocess.run(
        [sys.executable, "-m", "pipeline", "sql", "DROP TABLE logs"],
        capture_output=True, text=True, env=env, timeout=540,
    )
    assert bad.returncode == 2
    assert "refused: DROP" in bad.stderr
