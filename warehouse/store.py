"""The DuckDB warehouse: tables made from the canonical schemas, short write transactions, views.

Writers hold the file only for the length of one transaction; a process that finds it locked waits
and retries instead of failing, so a query and an import can take turns.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl

from retrostride.warehouse import schema
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

LOCK_WAIT_S = 60.0


#: A DuckDB file's three 4 KiB headers, before its blocks.
HEADER_BYTES = 3 * 4096
#: What DuckDB says when it reads a damaged file.
DAMAGE_SAYS = ("Could not read enough bytes", "Corrupt database file", "not a valid DuckDB database file")


class WarehouseDamaged(Exception):
    """The warehouse file cannot be read: damaged (truncated, overwritten) or not a DuckDB file."""

    def __init__(self, path: Path, error: Exception | str):
        detail = str(error).splitlines()[0][:200]
        super().__init__(
            f"The warehouse {path} cannot be opened ({detail}); run `retrostride rebuild` to "
            "recreate it from the lake and the ledger copies kept there (the damaged file is kept aside)."
        )


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
    """One DuckDB file, opened briefly for each read or write (or kept open by `held`)."""

    def __init__(self, path: Path | str, tables: Mapping[str, pl.Schema] = TABLES):
        self.path = Path(path)
        self.tables = dict(tables)
        self._held: duckdb.DuckDBPyConnection | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keep the file open meanwhile: each read and write inside takes a cursor of one connection
        instead of opening the file (which grows with the warehouse).  For a step that reads and
        writes many times and owns the file (the `warehouse` pool); other processes wait meanwhile."""
        if self._held is not None:
            yield
            return
        self._held = self.connect()
        try:
            yield
        finally:
            self._held.close()
            self._held = None

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """A connection (UTC session time zone), waiting out another process's lock."""
        if self._held is not None:
            cursor = self._held.cursor()
            cursor.execute("SET TimeZone = 'UTC'")
            return cursor
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                connection = duckdb.connect(str(self.path), read_only=read_only)
                connection.execute("SET TimeZone = 'UTC'")
                return connection
            except duckdb.Error as error:
                if "lock" in str(error).lower() and time.monotonic() <= deadline:
                    time.sleep(0.05 + random.random() * 0.2)
                    continue
                if any(says in str(error) for says in DAMAGE_SAYS):
                    raise WarehouseDamaged(self.path, error) from None
                raise

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction: all of it is visible afterwards, or none of it."""
        connection = self.connect()
        try:
            connection.execute("BEGIN TRANSACTION")
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        finally:
            connection.close()

    def ensure_schema(self) -> None:
        """Check that the file is whole, create missing tables and columns, and (re)create the views."""
        self.check_whole()
        with self.transaction() as connection:
            for table, columns in self.tables.items():
                _ensure_table(connection, table, columns)
            if (
                "mart_settings" in self.tables
                and not connection.execute("SELECT count(*) FROM mart_settings").fetchall()[0][0]
            ):
                insert(connection, "mart_settings", settings_row(MartConfig()))
            for name, sql in view_sql().items():
                connection.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")

    def query(self, sql: str, parameters: list | None = None) -> pl.DataFrame:
        """Run a read-only query and return its rows."""
        connection = self.connect(read_only=True)
        try:
            return pl.from_arrow(connection.sql(sql, params=parameters or None).to_arrow_table())
        except duckdb.Error as error:
            if any(says in str(error) for says in DAMAGE_SAYS):
                raise WarehouseDamaged(self.path, error) from None
            raise
        finally:
            connection.close()

    def check_whole(self) -> None:
        """Raise WarehouseDamaged when the file is shorter than the blocks its header counts (a
        truncated copy, a disk that lost the tail): found here, not in the middle of a publish.
        With a write-ahead log beside it the count includes blocks not yet written, so the check waits
        for a file without one (every completed import ends with a checkpoint)."""
        if self._held is not None or not self.path.exists() or self.path.with_name(self.path.name + ".wal").exists():
            return
        connection = self.connect()
        try:
            # used, not total: DuckDB cuts free blocks off the file's end, and total counts them still
            block_size, blocks = connection.execute(
                "SELECT block_size, used_blocks FROM pragma_database_size()"
            ).fetchone()
        finally:
            connection.close()
        size = self.path.stat().st_size
        if size < HEADER_BYTES + blocks * block_size:
            raise WarehouseDamaged(
                self.path,
                f"the file has {size} bytes where its {blocks} used blocks need {HEADER_BYTES + blocks * block_size}",
            )


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


def _ensure_table(connection: duckdb.DuckDBPyConnection, table: str, columns: pl.Schema) -> None:
    definition = ", ".join(f'"{name}" {duckdb_type(dtype)}' for name, dtype in columns.items())
    connection.execute(f"CREATE TABLE IF NOT EXISTS {table} ({definition})")
    existing = {
        row[0]
        for row in connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
        ).fetchall()
    }
    for name, dtype in columns.items():
        if name not in existing:
            connection.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {duckdb_type(dtype)}')
