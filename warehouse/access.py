"""Read-only SQL on the warehouse's newest published snapshot, or an older one: what `retrostride sql`
and the report run.

The boundary is DuckDB's own: the DuckLake is attached read-only at the snapshot, then external
access is turned off (no file outside the lake's own catalog and data folder, no URL, no ATTACH, no
COPY), extension installing and loading off, and the configuration locked, so no `SET`/`PRAGMA` can
write a log or profile anywhere or undo any of this.  Statements
are also classified before they run, only to refuse writes with a sentence naming the write rather
than a DuckDB error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import duckdb

from retrostride.warehouse.catalog import PUBLISHED, Catalog, open_engine

if TYPE_CHECKING:
    import polars as pl

#: Set once the lake is attached; `lock_configuration` (set last) keeps them so.
LOCKED_DOWN = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}

_SAVE = " To save a result, use --output FILE (csv, json or parquet)."
_IMPORT = " The warehouse changes only through `retrostride import`."
#: Statements refused before they run, with what they would do (the locked connection would refuse
#: them too, in DuckDB's words).
_WRITES = {
    **dict.fromkeys(("INSERT", "UPDATE", "DELETE", "MERGE_INTO"), ("changes rows", _IMPORT)),
    **dict.fromkeys(("CREATE", "CREATE_FUNC", "DROP", "ALTER"), ("changes the schema", _IMPORT)),
    **dict.fromkeys(("COPY", "COPY_DATABASE", "EXPORT"), ("writes files", _SAVE)),
    **dict.fromkeys(("ATTACH", "DETACH"), ("opens other databases", " Open them with DuckDB itself.")),
    "LOAD": ("installs or loads extensions", ""),
    **dict.fromkeys(("VACUUM", "ANALYZE"), ("rewrites the database", "")),
}

Fetched = TypeVar("Fetched")


class RefusedStatement(Exception):
    """A statement that would change something; the message says which and why."""


def refusal(statement_type: duckdb.StatementType) -> str | None:
    """Why `retrostride sql` does not run a statement of this type, or None if it may run.  The
    type is the parser's, so `WITH ... INSERT` is named an INSERT."""
    if statement_type.name not in _WRITES:
        return None
    does, advice = _WRITES[statement_type.name]
    return f"Refused: {statement_type.name.replace('_', ' ')} {does}, and the warehouse is read-only here.{advice}"


@dataclass(frozen=True)
class Reading:
    """What a reader queries: the warehouse at `catalog`, at its newest published snapshot (a whole
    import or none of it) or at `as_of` (a snapshot id or a timestamp)."""

    catalog: Catalog
    as_of: str | int | None = None

    def __str__(self) -> str:
        return f"{self.catalog.metadata}" + (f" as of {self.as_of}" if self.as_of is not None else "")


def read_only_connection(reading: Reading) -> duckdb.DuckDBPyConnection:
    """The warehouse of `reading`, attached read-only, reaching nothing else; times in UTC."""
    as_of = PUBLISHED if reading.as_of is None else reading.as_of
    connection = open_engine(reading.catalog, read_only=True, as_of=as_of)
    try:
        lock_down(connection, reading.catalog)
        return connection
    except BaseException:
        connection.close()
        raise


def lock_down(connection: duckdb.DuckDBPyConnection, catalog: Catalog) -> None:
    """External access off but for the lake's own files (DuckLake reads them as queries run), and
    the configuration locked."""
    if catalog.sqlite_file is not None:
        connection.execute("SET allowed_paths = ?", [[str(catalog.sqlite_file)]])
    connection.execute("SET allowed_directories = ?", [[catalog.data]])
    for name, value in LOCKED_DOWN.items():
        connection.execute(f"SET {name} = {str(value).lower()}")
    connection.execute("SET lock_configuration = true")


def read_only_answer(reading: Reading, sql: str, fetch: Callable[[duckdb.DuckDBPyRelation | None], Fetched]) -> Fetched:
    """Run `sql` (one or more statements) on the warehouse of `reading`, read-only; returns `fetch` of the
    last statement's relation (None when it has no rows to give).  Raises RefusedStatement for
    writes and duckdb.Error for bad SQL or anything the locked connection refuses."""
    connection = read_only_connection(reading)
    try:
        statements = connection.extract_statements(sql)
        for statement in statements:
            if (why := refusal(statement.type)) is not None:
                raise RefusedStatement(why)
        if not statements:
            return fetch(None)
        for statement in statements[:-1]:
            connection.execute(statement.query).fetchall()
        last = statements[-1].query
        try:
            relation = connection.sql(last)
        except duckdb.Error:
            connection.execute(last)  # the same error, with the LINE and ^ the relational API drops
            raise
        return fetch(relation)
    finally:
        connection.close()


def read_only_query(reading: Reading, sql: str) -> pl.DataFrame:
    """`read_only_answer` as a Polars frame (the demo and tests)."""
    import polars as pl

    return read_only_answer(
        reading, sql, lambda relation: pl.DataFrame() if relation is None else pl.from_arrow(relation.to_arrow_table())
    )
