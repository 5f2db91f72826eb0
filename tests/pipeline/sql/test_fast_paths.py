"""Fast paths (pipeline.sql.fast_paths): each rewrite returns exactly what the statement as
written returns, on a real Delta ``logs`` table of several date partitions and many files,
and reads fewer files."""

from __future__ import annotations

import itertools

import pytest

from pipeline.schemas import LOGS_DDL
from pipeline.sql import fast_paths
from pipeline.sql.engine import SqlEngine
from pipeline.sql.fast_paths import apply, recognise

LATEST = "SELECT * FROM logs ORDER BY ts DESC LIMIT 100"
LAST_HOUR = ("SELECT endpoint, count(*), avg(latency_ms) FROM logs "
             "WHERE ts > current_timestamp() - INTERVAL 1 HOUR GROUP BY endpoint")
GROUPS = {
    # name: (rows, first second before the table's "now", seconds between rows, appends)
    # the newest group is 10 min ahead of the clock (a skewed producer), so it stays inside
    # any 60 s window while the module runs; four rows share each second there (ties).
    "minute": (40, -600, 0.25, 1),
    "hour": (400, 300, 6, 2),  # 5 .. 45 min ago
    "day": (300, 3 * 3600, 180, 1),  # 3 .. 18 h ago
    "old": (2000, 26 * 3600, 150, 1),  # 26 h .. 4.5 days ago: several date partitions
}
TOTAL = sum(g[0] for g in GROUPS.values())
#: Spark tests (module setup writes a table: minutes on a loaded 2-core machine).
slow = pytest.mark.slow


def _frame(spark, ids: tuple[int, int], first: int, start_s: int, step_s: float, now: int):
    """Rows ``ids`` of a group starting at id ``first``: ``ts = now - start_s - ⌊i·step_s⌋``."""
    from pyspark.sql import functions as F

    types = dict(c.strip().split(" ") for c in LOGS_DDL.split(","))
    offset = F.floor((F.col("id") - first) * F.lit(step_s))
    df = spark.range(*ids).select(
        F.format_string("e%05d", "id").alias("event_id"),
        F.timestamp_seconds(F.lit(now - start_s) - offset).alias("ts"),
        F.when(F.col("id") % 7 == 0, 500).otherwise(200).alias("status"),
        F.element_at(F.array(*[F.lit(e) for e in ("/", "/api", "/x")]),
                     (F.col("id") % 3 + 1).cast("int")).alias("endpoint"),
        (F.col("id") % 97).cast("double").alias("latency_ms"),
    )
    cols = [F.col(c) if c in df.columns else F.lit(None).cast(t).alias(c)
            for c, t in types.items() if c != "date"]
    return df.select(*cols, F.to_date("ts").alias("date"))


@pytest.fixture(scope="module")
def engines(spark, base_settings, tmp_path_factory):
    """(fast, plain) engines on one ``logs`` table: four groups in five appends of 4 tasks."""
    spark.conf.set("spark.databricks.delta.snapshotPartitions", "2")
    s = base_settings.model_copy(deep=True)
    s.storage.data_dir = tmp_path_factory.mktemp("fast-paths") / "data"
    path = str(s.table_path("logs"))
    now = int(spark.sql("SELECT unix_seconds(current_timestamp())").first()[0])
    first = 0
    for n, start, step, appends in GROUPS.values():
        cuts = [first + n * k // appends for k in range(appends + 1)]
        for lo, hi in itertools.pairwise(cuts):
            part = _frame(spark, (lo, hi), first, start, step, now)
            part.repartition(4).write.format("delta").partitionBy("date").mode(
                "append").save(path)
        first += n
    fast = SqlEngine(s, spark)
    fast.start()
    plain_settings = s.model_copy(deep=True)
    plain_settings.sql.fast_paths = False
    return fast, SqlEngine(plain_settings, spark)


def _same(engines, sql, **kw):
    fast, plain = engines
    a, b = fast.execute(sql, **kw), plain.execute(sql, **kw)
    assert a.columns == b.columns and a.types == b.types
    return a.fetch_all(), b.fetch_all()


def _files_read(spark, sql) -> int:
    """Files opened by the scans of ``sql`` (FileSourceScanExec's numFiles, AQE unwrapped)."""
    df = spark.sql(sql)
    df.collect()
    total, stack = 0, [df._jdf.queryExecution().executedPlan()]
    while stack:
        node = stack.pop()
        name = str(node.getClass().getSimpleName())
        if name == "AdaptiveSparkPlanExec":
            stack.append(node.executedPlan())
            continue
        if name.endswith("QueryStageExec"):
            stack.append(node.plan())
            continue
        metric = node.metrics().get("numFiles")
        if metric.isDefined():
            total += int(metric.get().value())
        children = node.children()
        stack.extend(children.apply(i) for i in range(children.size()))
    return total


def _build(spark):
    return lambda text: spark.sql(text)


@slow
def test_table_has_many_files_and_partitions(engines, spark):
    rows = engines[0].execute("SELECT count(*), count(DISTINCT date) FROM logs").fetch_all()
    assert rows == [(TOTAL, rows[0][1])] and rows[0][1] >= 4
    assert _files_read(spark, "SELECT * FROM logs") >= 20


@slow
@pytest.mark.parametrize("n, window", [(10, 60), (100, 3600), (600, 86400)])
def test_latest_n_equals_the_original_and_reads_fewer_files(engines, spark, n, window):
    sql = f"SELECT * FROM logs ORDER BY ts DESC, event_id LIMIT {n}"
    fast_rows, plain_rows = _same(engines, sql)
    assert len(fast_rows) == n and fast_rows == plain_rows
    df, rows = apply(sql, spark.sql(sql), _build(spark), 1000)
    assert rows == plain_rows  # taken from the fast path
    rewritten = recognise(sql).rewrite(sql, window)
    windows = fast_paths.LATEST_WINDOWS_S
    assert spark.sql(rewritten).count() == n  # the first window holding n rows
    if window != windows[0]:
        before = recognise(sql).rewrite(sql, windows[windows.index(window) - 1])
        assert spark.sql(before).count() < n
    assert _files_read(spark, rewritten) < _files_read(spark, sql)


@slow
def test_latest_n_with_ties_at_the_boundary(engines):
    """Ties on ``ts`` at the n-th row: same ts sequence, same rows above the tied second, and
    tied rows from the same candidates (the original itself picks any of them)."""
    sql = "SELECT event_id, ts FROM logs ORDER BY ts DESC LIMIT 22"  # 4 rows per second
    fast_rows, plain_rows = _same(engines, sql)
    assert [r[1] for r in fast_rows] == [r[1] for r in plain_rows]
    edge = plain_rows[-1][1]
    assert {r for r in fast_rows if r[1] > edge} == {r for r in plain_rows if r[1] > edge}
    tied = set(engines[1].execute(
        "SELECT event_id, ts FROM logs "
        "WHERE ts = (SELECT ts FROM logs ORDER BY ts DESC LIMIT 1 OFFSET 21)").fetch_all())
    assert len(tied) == 4
    assert {r for r in fast_rows if r[1] == edge} <= tied


@slow
def test_latest_n_with_where_columns_and_alias(engines):
    for sql in (
        "SELECT event_id, ts, status FROM logs WHERE status >= 500 "
        "ORDER BY ts DESC, event_id LIMIT 7",
        "SELECT l.event_id, l.endpoint FROM logs AS l WHERE l.endpoint = '/api' "
        "ORDER BY l.ts DESC NULLS LAST, event_id LIMIT 50",
    ):
        assert recognise(sql).latest_n is not None
        fast_rows, plain_rows = _same(engines, sql)
        assert fast_rows == plain_rows and fast_rows


@slow
@pytest.mark.parametrize("n, first_page", [(900, 1000), (TOTAL + 500, TOTAL + 1000)])
def test_latest_n_beyond_every_window_falls_back(engines, spark, n, first_page):
    sql = f"SELECT * FROM logs ORDER BY ts DESC, event_id LIMIT {n}"
    fast_rows, plain_rows = _same(engines, sql, first_page=first_page)
    assert fast_rows == plain_rows and len(fast_rows) == min(n, TOTAL)
    assert apply(sql, spark.sql(sql), _build(spark), first_page)[1] is None


@slow
@pytest.mark.parametrize("sql", [
    LAST_HOUR,
    "SELECT endpoint, count(*) AS n FROM logs WHERE ts >= now() - INTERVAL 20 HOURS "
    "AND status = 500 GROUP BY endpoint HAVING count(*) > 1",
    "SELECT count(*), max(ts) FROM logs WHERE ts BETWEEN current_timestamp() - INTERVAL 20 "
    "HOURS AND current_timestamp() - INTERVAL 2 HOURS",  # 2 days of slack: prunes 4 days ago
])
def test_time_bounded_filters_equal_the_original_and_read_fewer_files(engines, spark, sql):
    fast_rows, plain_rows = _same(engines, sql)
    assert sorted(fast_rows) == sorted(plain_rows) and plain_rows
    df, rows = apply(sql, spark.sql(sql), _build(spark), 1000)
    assert rows is None
    rewritten = recognise(sql).rewrite(sql)
    assert "`date` >= date_sub(to_date(" in rewritten
    # Delta already skips files by their ts statistics; the date bound adds nothing there...
    assert _files_read(spark, rewritten) <= _files_read(spark, sql)
    # ...but prunes files that have none (written without stats, or stats switched off)
    spark.conf.set("spark.databricks.delta.stats.skipping", "false")
    try:
        assert _files_read(spark, rewritten) < _files_read(spark, sql)
    finally:
        spark.conf.unset("spark.databricks.delta.stats.skipping")


@slow
def test_latest_hour_group_by_under_a_literal_bound(engines):
    since = engines[1].execute("SELECT CAST(min(ts) AS STRING) FROM logs "
                               "WHERE ts > current_timestamp() - INTERVAL 30 HOURS").fetch_all()
    sql = (f"SELECT endpoint, date, count(*) FROM logs WHERE ts >= TIMESTAMP '{since[0][0]}' "
           "GROUP BY endpoint, date ORDER BY endpoint, date")
    assert recognise(sql).date_bounds
    fast_rows, plain_rows = _same(engines, sql)
    assert fast_rows == plain_rows and fast_rows


@pytest.fixture(scope="module")
def small_tables(engines, spark, tmp_path_factory):
    """``fp_empty`` (no rows) and ``fp_small`` (5 rows): outside the data dir, dropped after."""
    base = tmp_path_factory.mktemp("fast-paths-small")
    now = int(spark.sql("SELECT unix_seconds(current_timestamp())").first()[0])
    for name, n in (("fp_empty", 0), ("fp_small", 5)):
        path = str(base / name)
        _frame(spark, (0, n), 0, 5, 10, now).write.format("delta").partitionBy("date").save(path)
        spark.sql(f"CREATE TABLE {name} USING DELTA LOCATION '{path}'")
    yield
    for name in ("fp_empty", "fp_small"):
        spark.sql(f"DROP TABLE IF EXISTS {name}")


@slow
@pytest.mark.usefixtures("small_tables")
@pytest.mark.parametrize("table", ["fp_empty", "fp_small"])
@pytest.mark.parametrize("query", [
    "SELECT * FROM {t} ORDER BY ts DESC LIMIT 10",
    "SELECT endpoint, count(*) FROM {t} WHERE ts > current_timestamp() - INTERVAL 1 HOUR "
    "GROUP BY endpoint",
])
def test_empty_and_tiny_tables(spark, table, query):
    sql = query.format(t=table)
    original = sorted(tuple(r) for r in spark.sql(sql).collect())
    df, rows = apply(sql, spark.sql(sql), _build(spark), 1000, table=table)
    assert rows is None  # fewer than n rows: the latest-N answer is never taken
    assert sorted(tuple(r) for r in df.collect()) == original


@pytest.mark.parametrize("sql", [
    "SELECT max(ts) AS ts FROM logs ORDER BY ts DESC LIMIT 1",  # output named ts
    "SELECT endpoint ts FROM logs WHERE ts > now() ORDER BY ts DESC LIMIT 1",
    "SELECT * FROM logs WHERE status = 1 OR ts > now() - INTERVAL 1 HOUR",
    "SELECT * FROM logs l JOIN logs r ON l.event_id = r.event_id WHERE l.ts > now()",
    "SELECT * FROM logs WHERE ts > (SELECT max(ts) FROM logs) - INTERVAL 1 HOUR",
    "SELECT * FROM logs WHERE ts > ingest_ts ORDER BY ts ASC LIMIT 5",
    "SELECT * FROM logs WHERE ts > now() - INTERVAL rand() HOUR",
    "SELECT * FROM logs ORDER BY ts DESC NULLS FIRST LIMIT 5",
    "SELECT * FROM logs ORDER BY ts DESC LIMIT 5 OFFSET 5",
    "SELECT DISTINCT endpoint FROM logs ORDER BY ts DESC LIMIT 5",
    "SELECT endpoint FROM logs GROUP BY endpoint ORDER BY ts DESC LIMIT 5",
    "SELECT * FROM `logs` ORDER BY ts DESC LIMIT 5",
    "SELECT * FROM logs WHERE ts > `now`() ORDER BY ts ASC LIMIT 5",
    "SELECT * FROM scratch ORDER BY ts DESC LIMIT 5",
    "WITH x AS (SELECT * FROM logs) SELECT * FROM x ORDER BY ts DESC LIMIT 5",
])
def test_shapes_left_alone(sql):
    assert recognise(sql) is None


def test_recognised_shapes():
    assert recognise(LATEST).latest_n == 100
    assert recognise(LAST_HOUR).date_bounds == ("current_timestamp() - INTERVAL 1 HOUR",)
    s = recognise("SELECT * FROM logs -- newest\nWHERE message = 'ORDER BY ts DESC LIMIT 9' "
                  "AND ts >= TIMESTAMP '2026-01-01 00:00:00' ORDER BY ts DESC LIMIT 3")
    assert s.latest_n == 3 and s.date_bounds == ("TIMESTAMP '2026-01-01 00:00:00'",)
    s = recognise("SELECT * FROM logs WHERE x BETWEEN 1 AND ts > now() AND "
                  "ts BETWEEN '2026-01-01' AND '2026-01-02'")
    assert s.date_bounds == ("'2026-01-01'",)  # the fragment after x's BETWEEN is skipped


@slow
def test_a_rewrite_that_does_not_analyse_falls_back(spark):
    # a qualified name that the subquery's alias cannot resolve: the original runs as written
    sql = ("SELECT default.logs.endpoint, count(*) FROM logs "
           "WHERE ts > now() - INTERVAL 1 HOUR GROUP BY 1")
    assert recognise(sql) is not None
    original = spark.sql(sql)
    df, rows = apply(sql, original, _build(spark), 1000)
    assert df is original and rows is None
