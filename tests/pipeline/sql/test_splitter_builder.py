"""Pure parts of the SQL engine: statement splitting, positions, query builder, history."""

from __future__ import annotations

from datetime import datetime

import pytest

from pipeline.sql.errors import SqlError
from pipeline.sql.history import QueryHistory
from pipeline.sql.query_builder import (
    KLL_K,
    Aggregate,
    Filter,
    QuerySpec,
    TimeRange,
    build_query,
    kll_rank_error,
    percentile_note,
)
from pipeline.sql.splitter import line_col, offset_of, split_statements, statement_at

SCRIPT = """SELECT 'a;b' AS x; -- comment; still comment
/* block ; /* nested ; */ still */ SELECT `we;ird` FROM t;

SELECT "q\\";" AS y
"""


def test_split_respects_quotes_and_comments():
    stmts = split_statements(SCRIPT)
    assert [s.text for s in stmts] == [
        "SELECT 'a;b' AS x",
        "-- comment; still comment\n/* block ; /* nested ; */ still */ SELECT `we;ird` FROM t",
        'SELECT "q\\";" AS y',
    ]
    for s in stmts:
        assert SCRIPT[s.start:s.end] == s.text


def test_comment_only_chunks_are_dropped():
    assert split_statements("-- nothing\n;/* x */;  ;") == []
    assert [s.text for s in split_statements("SELECT 1;;SELECT 2")] == ["SELECT 1", "SELECT 2"]


def test_statement_at_cursor():
    script = "SELECT 1;\nSELECT 2;\n\nSELECT 3"
    assert statement_at(script, 0).text == "SELECT 1"
    assert statement_at(script, 9).text == "SELECT 1"  # right after the ;
    assert statement_at(script, 12).text == "SELECT 2"
    assert statement_at(script, 20).text == "SELECT 2"  # blank line after statement 2
    assert statement_at(script, len(script)).text == "SELECT 3"
    assert statement_at("   ", 1) is None


def test_line_col_round_trip():
    text = "ab\ncde\nf"
    assert line_col(text, 0) == (1, 1)
    assert line_col(text, 4) == (2, 2)
    assert line_col(text, 7) == (3, 1)
    assert offset_of(text, 2, 2) == 4
    assert offset_of(text, 9, 1) == len(text)


CATALOG = {"logs": ["ts", "level", "source", "status", "latency_ms", "endpoint"]}


def test_builder_plain_select_with_filters():
    spec = QuerySpec(
        table="logs",
        columns=["ts", "level", "endpoint"],
        filters=[Filter("level", "=", "ERROR"), Filter("status", "IN", [500, 503]),
                 Filter("endpoint", "IS NOT NULL")],
        time_range=TimeRange("ts", datetime(2026, 1, 1), datetime(2026, 1, 2)),
        order_by=[("ts", True)],
        limit=50,
    )
    sql, args = build_query(spec, CATALOG)
    assert sql == (
        "SELECT `ts`, `level`, `endpoint`\nFROM `logs`\n"
        "WHERE `level` = :p0\n  AND `status` IN (:p1, :p2)\n  AND `endpoint` IS NOT NULL\n"
        "  AND `ts` >= :p3\n  AND `ts` < :p4\nORDER BY `ts` DESC\nLIMIT 50"
    )
    assert args == {"p0": "ERROR", "p1": 500, "p2": 503, "p3": datetime(2026, 1, 1),
                    "p4": datetime(2026, 1, 2)}


def test_builder_group_by_aggregates():
    spec = QuerySpec(
        table="LOGS",
        group_by=["source"],
        aggregates=[Aggregate("count"), Aggregate("avg", "latency_ms"),
                    Aggregate("percentile", "latency_ms", percentile=0.95),
                    Aggregate("max", "status", alias="worst")],
        filters=[Filter("latency_ms", ">=", 10.5)],
        order_by=[("count_all", True), ("source", False)],
        limit=None,
    )
    sql, args = build_query(spec, CATALOG)
    sketch = f"kll_sketch_agg_double(CAST(`latency_ms` AS DOUBLE), {KLL_K})"
    assert sql == (
        "SELECT `source`, count(*) AS `count_all`, avg(`latency_ms`) AS `avg_latency_ms`, "
        f"CASE WHEN kll_sketch_get_n_double({sketch}) > 0 "
        f"THEN kll_sketch_get_quantile_double({sketch}, 0.95) END AS `p95_latency_ms`, "
        "max(`status`) AS `worst`\n"
        "FROM `logs`\nWHERE `latency_ms` >= :p0\nGROUP BY `source`\n"
        "ORDER BY `count_all` DESC, `source`"
    )
    assert args == {"p0": 10.5}


def test_builder_percentiles_of_a_column_read_one_sketch():
    spec = QuerySpec(table="logs", group_by=["endpoint"], limit=None, aggregates=[
        Aggregate("percentile", "latency_ms", q) for q in (0.5, 0.95, 0.99)] + [
        Aggregate("percentile", "status", 0.5)], order_by=[("p99_latency_ms", True)])
    sql, _ = build_query(spec, CATALOG)
    # the same aggregate text each time, which Spark computes once (tested on a session in
    # test_kll_percentiles.py); another column gets its own sketch
    assert sql.count(f"kll_sketch_agg_double(CAST(`latency_ms` AS DOUBLE), {KLL_K})") == 6
    assert sql.count(f"kll_sketch_agg_double(CAST(`status` AS DOUBLE), {KLL_K})") == 2
    for q, alias in ((0.5, "p50_latency_ms"), (0.95, "p95_latency_ms"),
                     (0.99, "p99_latency_ms"), (0.5, "p50_status")):
        assert f", {q}) END AS `{alias}`" in sql
    assert "percentile_approx" not in sql
    assert sql.endswith("GROUP BY `endpoint`\nORDER BY `p99_latency_ms` DESC")


def test_kll_rank_error_is_datasketches_single_sided_bound():
    # Apache DataSketches: k = 200 gives a single-sided epsilon of about 1.33 % (the
    # double-sided PMF one is the 1.65 %); figures Spark's own sketches report
    assert kll_rank_error(200) == pytest.approx(0.01329, abs=5e-5)
    assert kll_rank_error(1000) == pytest.approx(0.00278, abs=5e-5)
    assert kll_rank_error(400) < kll_rank_error(200) / 1.9
    note = percentile_note(200)
    assert "approximate" in note and "k = 200" in note and "±1.3 %" in note
    assert "93.67 % and 96.33 %" in note


@pytest.mark.parametrize(
    "spec, message",
    [
        (QuerySpec(table="secrets"), "unknown table"),
        (QuerySpec(table="logs", columns=["level; DROP TABLE logs"]), "unknown column"),
        (QuerySpec(table="logs", filters=[Filter("level", "OR 1=1", "x")]), "unknown operator"),
        (QuerySpec(table="logs", aggregates=[Aggregate("exec", "status")]), "unknown aggregate"),
        (QuerySpec(table="logs", aggregates=[Aggregate("percentile", "status", 2.0)]),
         "percentile"),
        (QuerySpec(table="logs", order_by=[("nope", False)]), "unknown column"),
    ],
)
def test_builder_rejects_names_outside_the_catalog(spec, message):
    with pytest.raises(SqlError, match=message):
        build_query(spec, CATALOG)


def test_builder_injection_value_is_a_parameter():
    sql, args = build_query(
        QuerySpec(table="logs", filters=[Filter("level", "=", "x' OR '1'='1")]), CATALOG
    )
    assert "OR" not in sql
    assert args == {"p0": "x' OR '1'='1"}


def test_history_search_and_saved(tmp_path):
    h = QueryHistory(tmp_path / "h.sqlite", keep=3)
    for i in range(5):
        h.add(f"SELECT {i} FROM logs_%", "ok", rows=i, elapsed_ms=10)
    h.add("SELECT nope", "error", error="bad")
    items = h.search()
    assert [i.sql for i in items] == ["SELECT nope", "SELECT 4 FROM logs_%", "SELECT 3 FROM logs_%"]
    assert [i.sql for i in h.search("4 from LOGS_%")] == ["SELECT 4 FROM logs_%"]
    assert h.search("_x") == []
    h.save("errors", "SELECT 1")
    h.save("errors", "SELECT 2")
    h.save("a", "SELECT 3")
    assert [(s.name, s.sql) for s in h.saved()] == [("a", "SELECT 3"), ("errors", "SELECT 2")]
    assert h.delete_saved("a") and not h.delete_saved("a")
    # a second store on the same file sees the same data (persisted)
    assert [i.sql for i in QueryHistory(tmp_path / "h.sqlite").search()][0] == "SELECT nope"


def test_output_formats():
    import io

    from pipeline.sql.output import write_rows

    cols = ["a", "b"]
    rows = [(1, "x"), (None, datetime(2026, 1, 2, 3, 4, 5))]
    out = io.StringIO()
    write_rows(out, cols, rows, "table")
    assert out.getvalue() == (
        "a    | b\n-----+--------------------\n1    | x\nNULL | 2026-01-02 03:04:05\n"
    )
    out = io.StringIO()
    write_rows(out, cols, rows, "csv")
    assert out.getvalue() == "a,b\n1,x\n,2026-01-02 03:04:05\n"
    out = io.StringIO()
    write_rows(out, cols, rows, "json")
    assert out.getvalue() == '{"a": 1, "b": "x"}\n{"a": null, "b": "2026-01-02T03:04:05"}\n'


def test_export_round_trips(tmp_path):
    import json

    import pyarrow.parquet as pq

    from desktop_app.sql.export import export_rows

    cols, types = ["level", "n"], ["string", "bigint"]
    rows = [("ERROR", 2), ("INFO", 3), (None, 0)]
    export_rows(tmp_path / "r.csv", "csv", cols, types, rows)
    assert (tmp_path / "r.csv").read_text() == "level,n\nERROR,2\nINFO,3\n,0\n"
    export_rows(tmp_path / "r.jsonl", "jsonl", cols, types, rows)
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [{"level": "ERROR", "n": 2}, {"level": "INFO", "n": 3},
                                              {"level": None, "n": 0}]
    export_rows(tmp_path / "r.parquet", "parquet", cols, types, rows)
    assert pq.read_table(tmp_path / "r.parquet").to_pylist() == [
        {"level": "ERROR", "n": 2}, {"level": "INFO", "n": 3}, {"level": None, "n": 0}]
    assert not list(tmp_path.glob("*.part"))
