"""Read-only SQL on the published snapshot: what `retrostride sql` runs.

Statements are checked before they run: anything but reading (SELECT, DESCRIBE, SHOW, EXPLAIN,
PRAGMA, SET, CALL) is refused with a sentence, not a DuckDB error.  The connection is read-only
as well, so a check that missed something still cannot change the warehouse.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

_READING = {
    duckdb.StatementType.SELECT,
    duckdb.StatementType.EXPLAIN,
    duckdb.StatementType.PRAGMA,
    duckdb.StatementType.SET,
    duckdb.StatementType.VARIABLE_SET,
    duckdb.StatementType.CALL,
}


class RefusedStatement(Exception):
    """A statement that would change something; the message says which and why."""


def refusal(statement_type: duckdb.StatementType, text: str) -> str:
    """Why `retrostride sql` does not run a statement of this type."""
    kind = text.strip().split(None, 1)[0].upper() if text.strip() else statement_type.name
    advice = {
        duckdb.StatementType.COPY: " To save a result, use --output FILE (csv, json or parquet).",
        duckdb.StatementType.EXPORT: " To save a result, use --output FILE (csv, json or parquet).",
        duckdb.StatementType.ATTACH: " Open other databases with DuckDB itself.",
    }.get(statement_type, " The warehouse changes only through `retrostride import`.")
    return f"Refused: the warehouse is read-only here, and {kind} is not a read-only statement.{advice}"


def read_only_query(path: Path, sql: str) -> pl.DataFrame:
    """Run `sql` (one or more statements) on the database at `path`, read-only; returns the last
    statement's rows.  Raises RefusedStatement for writes and duckdb.Error for bad SQL."""
    connection = duckdb.connect(str(path), read_only=True)
    try:
        connection.execute("SET TimeZone = 'UTC'")
        statements = connection.extract_statements(sql)
        for statement in statements:
            if statement.type not in _READING:
                raise RefusedStatement(refusal(statement.type, statement.query))
        if not statements:
            return pl.DataFrame()
        for statement in statements[:-1]:
            connection.execute(statement.query).fetchall()
        last = statements[-1].query
        try:
            relation = connection.sql(last)
        except duckdb.Error:
            connection.execute(last)  # the same error, with the LINE and ^ the relational API drops
            raise
        return pl.DataFrame() if relation is None else pl.from_arrow(relation.to_arrow_table())
    finally:
        connection.close()
