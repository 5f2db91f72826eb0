"""Parameters inlined as literals for Spark Connect: markers only in SQL text, values escaped."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from pipeline.sql.errors import SqlError
from pipeline.sql.params import inline_args, sql_literal


def test_markers_outside_strings_names_and_comments_only():
    sql = "SELECT ':p0', `:p0`, a::int /* :p0 */ FROM t WHERE a = :p0 AND b = :p1 -- :p0"
    assert inline_args(sql, {"p0": 1, "p1": "x"}) == (
        "SELECT ':p0', `:p0`, a::int /* :p0 */ FROM t WHERE a = 1 AND b = 'x' -- :p0")


def test_unknown_markers_and_longer_names_stay():
    assert inline_args("SELECT :p1, :p10, :other", {"p1": 1}) == "SELECT 1, :p10, :other"


@pytest.mark.parametrize("value, literal", [
    (None, "NULL"), (True, "TRUE"), (7, "7"), (1.5, "1.5D"),
    ("it's \\ x", "'it\\'s \\\\ x'"),
    (datetime(2026, 1, 1, 10, 0, 0, 5), "TIMESTAMP '2026-01-01 10:00:00.000005'"),
    (datetime(2026, 1, 1, 11, 0, tzinfo=UTC), "TIMESTAMP '2026-01-01 11:00:00'"),
    (date(2026, 1, 2), "DATE '2026-01-02'"), (Decimal("1.20"), "1.20BD"),
])
def test_literals(value, literal):
    assert sql_literal(value) == literal


def test_unsupported_type_is_an_error():
    with pytest.raises(SqlError):
        sql_literal(object())
