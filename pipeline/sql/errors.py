"""Errors of the SQL engine: every one carries a message fit to show a user as is."""

from __future__ import annotations


class SqlError(Exception):
    """A statement failed. ``line``/``column`` (1-based, in the submitted script) point at
    the offending token when Spark reported one; ``error_class`` is Spark's condition name."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        error_class: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.error_class = error_class

    def located(self, line: int | None, column: int | None) -> SqlError:
        """A copy of this error placed at another position (used to shift a statement's
        position into its script)."""
        err = type(self)(self.message, line=line, column=column, error_class=self.error_class)
        return err

    def __str__(self) -> str:
        where = f" (line {self.line}, column {self.column})" if self.line else ""
        return f"{self.message}{where}"


class RefusedError(SqlError):
    """The statement was not run: the safety rules forbid it; the message says which rule."""


class QueryCancelledError(SqlError):
    """The statement was cancelled by the user."""


class TimeLimitError(QueryCancelledError):
    """The statement ran longer than ``sql.time_limit_s`` and was stopped."""
