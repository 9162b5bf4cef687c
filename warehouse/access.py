"""Read-only SQL on the published snapshot: what `retrostride sql` runs.

The boundary is DuckDB's own: the snapshot is opened read-only with external access off (no other
file, no URL, no ATTACH, no COPY), extension installing and loading off, and the configuration
locked, so no `SET`/`PRAGMA` can write a log or profile anywhere or undo any of this.  Statements
are also classified before they run, only to refuse writes with a sentence naming the write rather
than a DuckDB error.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import duckdb

if TYPE_CHECKING:
    import polars as pl

#: Set when the connection opens; `lock_configuration` (set last) keeps them so.
LOCKED_DOWN = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
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


def read_only_connection(path: Path) -> duckdb.DuckDBPyConnection:
    """The database at `path`, read-only, reaching nothing else; times in UTC."""
    connection = duckdb.connect(str(path), read_only=True, config=LOCKED_DOWN)
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("SET lock_configuration = true")
    return connection


def read_only_answer(path: Path, sql: str, fetch: Callable[[duckdb.DuckDBPyRelation | None], Fetched]) -> Fetched:
    """Run `sql` (one or more statements) on the database at `path`, read-only; returns `fetch` of the
    last statement's relation (None when it has no rows to give).  Raises RefusedStatement for
    writes and duckdb.Error for bad SQL or anything the locked connection refuses."""
    connection = read_only_connection(path)
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


def read_only_query(path: Path, sql: str) -> pl.DataFrame:
    """`read_only_answer` as a Polars frame (the demo and tests)."""
    import polars as pl

    return read_only_answer(
        path, sql, lambda relation: pl.DataFrame() if relation is None else pl.from_arrow(relation.to_arrow_table())
    )
