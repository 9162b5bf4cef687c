"""The warehouse: tables made from the canonical schemas in a DuckLake, short write transactions, views.

Every transaction that commits is a snapshot: readers in other processes see the newest one, or an
older one they ask for (`retrostride sql --as-of`).  On PostgreSQL writers commit side by side; on
the embedded catalog their transactions take turns (`catalog.writer_turn`).  A commit that conflicts
with another writer's (both deleted rows from one data file) is run again (`write`).
"""

from __future__ import annotations

import hashlib
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl

from retrostride.warehouse import schema
from retrostride.warehouse.catalog import ALIAS, Catalog, shared_engine, writer_turn
from retrostride.warehouse.mart_config import MART_SETTINGS, MartConfig, settings_row

#: Base tables, made from the schemas declared once in connectors/schema.py.
TABLES: dict[str, pl.Schema] = {
    "import_ledger": schema.LEDGER,
    "activities": schema.ACTIVITIES,
    "records": schema.RECORDS,
    "laps": schema.LAPS,
    "developer_fields": schema.DEVELOPER_FIELDS,
    "body_measurements": schema.BODY_MEASUREMENTS,
    "segments": schema.SEGMENT_TABLE,
    "activity_energy": schema.ACTIVITY_ENERGY,
    "activity_detection": schema.ACTIVITY_DETECTION,
    "gait_baselines": schema.BASELINES,
    "mart_settings": MART_SETTINGS,
    "pending_days": schema.PENDING_DAYS,
    "publishes": schema.PUBLISHES,
}

_DUCKDB_TYPES = {
    pl.String: "VARCHAR",
    pl.Float64: "DOUBLE",
    pl.Float32: "FLOAT",
    pl.Int64: "BIGINT",
    pl.Int32: "INTEGER",
    pl.Int16: "SMALLINT",
    pl.UInt32: "UINTEGER",
    pl.Boolean: "BOOLEAN",
    pl.Date: "DATE",
}

_log = logging.getLogger(__name__)
#: How long a write keeps retrying commits that conflict with other writers'.
WRITE_WAIT_S = 300.0
T = TypeVar("T")


#: What SQLite (the embedded catalog) and DuckDB say when they read a damaged catalog.
DAMAGE_SAYS = ("database disk image is malformed", "file is not a database", "Corrupt database file")


class WarehouseDamaged(Exception):
    """The warehouse's catalog cannot be read: damaged (truncated, overwritten) or not a catalog."""

    def __init__(self, where: Path | str, error: Exception | str):
        detail = str(error).splitlines()[0][:200]
        super().__init__(
            f"The warehouse {where} cannot be opened ({detail}); run `retrostride rebuild` to "
            "recreate it from the lake and the ledger copies kept there (the damaged catalog is kept aside)."
        )


def is_damage(error: BaseException) -> bool:
    return any(says in str(error) for says in DAMAGE_SAYS)


def duckdb_type(dtype: pl.DataType) -> str:
    """The DuckDB column type for a Polars dtype."""
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    return _DUCKDB_TYPES[dtype.base_type()]


def view_sql() -> dict[str, str]:
    """The views shipped in warehouse/sql/views/, by name, in file order."""
    folder = resources.files("retrostride.warehouse") / "sql" / "views"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return {f.name.split("_", 1)[1].removesuffix(".sql"): f.read_text(encoding="utf-8") for f in files}


class Warehouse:
    """The DuckLake warehouse (`warehouse.catalog.Catalog`): this process's engine attaches it once;
    each read or write takes a cursor and sees the newest committed snapshot."""

    def __init__(self, catalog: Catalog, tables: Mapping[str, pl.Schema] = TABLES):
        self.catalog = catalog
        self.tables = dict(tables)
        self._held: duckdb.DuckDBPyConnection | None = None

    @classmethod
    def embedded(cls, home: Path | str, tables: Mapping[str, pl.Schema] = TABLES) -> Warehouse:
        """The default warehouse of a home: catalog and files under it, no server."""
        return cls(Catalog.embedded(home), tables)

    @property
    def path(self) -> Path:
        """Where its writes land on this machine (for a full disk's message): the embedded catalog,
        else the data folder (or the working folder, for data on an object store)."""
        if self.catalog.sqlite_file is not None:
            return self.catalog.sqlite_file
        return Path(self.catalog.data) if "://" not in self.catalog.data else Path.cwd()

    def exists(self) -> bool:
        return self.catalog.exists()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Reads and writes inside take cursors of one connection (a step that reads and writes many times)."""
        if self._held is not None:
            yield
            return
        self._held = self.connect()
        try:
            yield
        finally:
            self._held.close()
            self._held = None

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A cursor of this process's engine (UTC session time zone), its own transactions; a catalog
        busy with another process's commit is waited for; a damaged one raises WarehouseDamaged."""
        try:
            parent = self._held if self._held is not None else shared_engine(self.catalog)
        except (duckdb.Error, sqlite3.DatabaseError) as error:
            if is_damage(error):
                raise WarehouseDamaged(self.catalog.metadata, error) from None
            raise
        cursor = parent.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        deadline = time.monotonic() + WRITE_WAIT_S
        while True:
            try:
                cursor.execute(f"USE {ALIAS}")
                return cursor
            except duckdb.Error as error:
                if "database is locked" in str(error) and time.monotonic() <= deadline:
                    time.sleep(0.05 + random.random() * 0.2)
                    continue
                cursor.close()
                raise

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction, one snapshot: all of it is visible afterwards, or none of it.
        Commits that conflict with another writer's raise; `write` retries them.  On an embedded
        catalog, transactions of all processes take turns (`writer_turn`)."""
        with writer_turn(self.catalog):
            connection = self.connect()
            try:
                connection.execute("BEGIN TRANSACTION")
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                with suppress(duckdb.Error):
                    connection.execute("ROLLBACK")
                raise
            finally:
                connection.close()

    def write(self, body: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `body` in a transaction; when another writer's commit conflicts with it (both deleted
        from one data file), run it again on the newer snapshot, for up to WRITE_WAIT_S."""
        deadline = time.monotonic() + WRITE_WAIT_S
        while True:
            try:
                with self.transaction() as connection:
                    return body(connection)
            except duckdb.Error as error:
                if not is_conflict(error) or time.monotonic() > deadline:
                    raise
                _log.info(
                    "a commit conflicted with another writer's; running it again: %s", " ".join(str(error).split())
                )
                time.sleep(0.05 + random.random() * 0.2)

    def ensure_schema(self) -> dict[str, int]:
        """Create missing tables and columns (partitioned by athlete where they have one), and (re)create
        the views.  A table given `athlete_id` after it was made (`laps` and `developer_fields` before
        they had one) is partitioned by it from then on, and its rows take their activity's athlete:
        those rows per table are returned (nothing: the schema was current)."""

        def create(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
            given = {}
            for table, columns in self.tables.items():
                added = _ensure_table(connection, table, columns)
                if "athlete_id" in columns and (added is None or "athlete_id" in added):
                    # one athlete's rows in files of their own: writers for different athletes delete from different files
                    connection.execute(f"ALTER TABLE {table} SET PARTITIONED BY (athlete_id)")
                if added and "athlete_id" in added and "activity_id" in columns:
                    given[table] = athletes_from_activities(connection, table)
            if (
                "mart_settings" in self.tables
                and not connection.execute("SELECT count(*) FROM mart_settings").fetchall()[0][0]
            ):
                insert(connection, "mart_settings", settings_row(MartConfig()))
            existing = dict(
                connection.execute(
                    "SELECT view_name, comment FROM duckdb_views() WHERE database_name = current_database()"
                ).fetchall()
            )
            for name, sql in view_sql().items():
                version = hashlib.sha256(sql.encode()).hexdigest()[:16]
                if existing.get(name) != version:  # an unchanged view is left alone: no snapshot, no conflict
                    connection.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
                    connection.execute(f"COMMENT ON VIEW {name} IS '{version}'")
            return given

        return self.write(create)

    def query(self, sql: str, parameters: list | None = None) -> pl.DataFrame:
        """Run a read-only query and return its rows."""
        connection = self.connect()
        try:
            # execute, not sql(params=): DuckDB 1.5's relation over a prepared statement reads it row by row
            return pl.from_arrow(connection.execute(sql, parameters or None).to_arrow_table())
        except duckdb.Error as error:
            if is_damage(error):
                raise WarehouseDamaged(self.catalog.metadata, error) from None
            raise
        finally:
            connection.close()


def is_conflict(error: duckdb.Error) -> bool:
    """A commit that lost a race with another writer's (worth running again), not a mistake."""
    text = str(error).lower()
    return isinstance(error, duckdb.TransactionException) or "conflict" in text or "database is locked" in text


def of_athletes(athletes: list[str] | None, column: str = "athlete_id") -> str:
    """SQL true for rows whose `column` is one of `athletes` (None: every athlete); the names are
    quoted, never user SQL."""
    if athletes is None:
        return "true"
    names = ", ".join("'" + athlete.replace("'", "''") + "'" for athlete in athletes)
    return f"{column} IN ({names})" if names else "false"


def insert(connection: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Append `frame` to `table`, matching columns by name."""
    if len(frame) == 0:
        return 0
    connection.register("incoming_rows", frame)
    try:
        connection.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_rows")
    finally:
        connection.unregister("incoming_rows")
    return len(frame)


def athletes_from_activities(connection: duckdb.DuckDBPyConnection, table: str) -> int:
    """Give the rows of `table` without an athlete their activity's (rows from before the table had
    the column); how many."""
    return connection.execute(
        f"UPDATE {table} SET athlete_id = a.athlete_id FROM activities a"
        f" WHERE {table}.activity_id = a.activity_id AND {table}.athlete_id IS NULL"
    ).fetchone()[0]


def _ensure_table(connection: duckdb.DuckDBPyConnection, table: str, columns: pl.Schema) -> list[str] | None:
    """Create `table` (None) or add the columns it lacks (their names)."""
    definition = ", ".join(f'"{name}" {duckdb_type(dtype)}' for name, dtype in columns.items())
    existing = {
        row[0]
        for row in connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() AND table_name = ?",
            [table],
        ).fetchall()
    }
    if not existing:
        connection.execute(f"CREATE TABLE {table} ({definition})")
        return None
    added = [name for name in columns if name not in existing]
    for name in added:
        connection.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {duckdb_type(columns[name])}')
    return added
