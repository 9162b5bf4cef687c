"""Read-only SQL on the warehouse's newest snapshot, or an older one: what `retrostride sql` runs.

Statements are checked before they run: anything but reading (SELECT, DESCRIBE, SHOW, EXPLAIN,
PRAGMA, SET, CALL) is refused with a sentence, not a DuckDB error.  The connection is read-only
as well, so a check that missed something still cannot change the warehouse.
"""

from __future__ import annotations

import os
import threading
from contextlib import suppress
from dataclasses import dataclass

import duckdb
import polars as pl

from retrostride.warehouse.catalog import ALIAS, PUBLISHED_SNAPSHOT_SQL, Catalog, open_engine

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


@dataclass(frozen=True)
class Reading:
    """What a reader queries: the warehouse at `catalog`, at its newest snapshot or `as_of` (a
    snapshot id or a timestamp)."""

    catalog: Catalog
    as_of: str | int | None = None


_readers: dict[tuple, duckdb.DuckDBPyConnection] = {}
_readers_lock = threading.Lock()


def reader(reading: Reading) -> duckdb.DuckDBPyConnection:
    """A cursor on the warehouse attached read-only at `as_of`, else at the newest published snapshot
    (a whole import or none of it: the pipeline's steps in between are skipped).  One engine per
    process and reading (opening one costs ~0.5 s); a new publish is attached beside it (~10 ms)."""
    key = (os.getpid(), reading)
    with _readers_lock:
        engine = _readers.get(key)
        if engine is None:
            engine = _readers[key] = open_engine(reading.catalog, read_only=True, as_of=reading.as_of)
        alias = ALIAS
        if reading.as_of is None:
            published = engine.execute(PUBLISHED_SNAPSHOT_SQL).fetchone()[0]
            if published is not None:
                alias = f"{ALIAS}_{published}"
                attached = {row[0] for row in engine.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
                if alias not in attached:
                    engine.execute(reading.catalog.attach_sql(alias, as_of=published))
                    for older in attached - {alias}:
                        if older.startswith(f"{ALIAS}_"):  # readers of an older publish go on with theirs
                            with suppress(duckdb.Error):
                                engine.execute(f"DETACH {older}")
    cursor = engine.cursor()
    cursor.execute(f"USE {alias}")
    cursor.execute("SET TimeZone = 'UTC'")
    return cursor


def read_only_query(reading: Reading, sql: str) -> pl.DataFrame:
    """Run `sql` (one or more statements) on the warehouse, read-only; returns the last statement's
    rows.  Raises RefusedStatement for writes and duckdb.Error for bad SQL."""
    connection = reader(reading)
    try:
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
