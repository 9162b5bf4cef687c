"""Move a home from before DuckLake (one DuckDB file, `warehouse.duckdb`, and its copy
`published.duckdb`) into the DuckLake warehouse: every table's rows in one transaction, then the old
files are kept beside, renamed, never deleted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from retrostride.warehouse.catalog import ALIAS, PUBLISHED, Catalog
from retrostride.warehouse.store import Warehouse, athletes_from_activities

#: The suffix an old warehouse file gets once its rows are in the DuckLake.
MIGRATED = ".migrated"


@dataclass(frozen=True)
class Migration:
    source: Path
    rows: dict[str, int]  # table -> rows copied
    kept_as: Path


def ensure_migrated(legacy: Path, catalog: Catalog) -> Migration | None:
    """Move a home's warehouse from before DuckLake (`legacy`) into the DuckLake, once (None: nothing to move)."""
    if not legacy.exists():
        return None
    return migrate_file(legacy, Warehouse(catalog))


def migrate_file(source: Path, warehouse: Warehouse) -> Migration:
    """Copy every base table of the DuckDB file `source` that the warehouse has into it (tables of
    the warehouse that are not empty are left alone: a migration runs once), then rename `source`
    (and the `published.duckdb` copy beside it) with MIGRATED."""
    warehouse.ensure_schema()

    def copy(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
        old = {
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'legacy'"
            ).fetchall()
        }
        rows = {}
        for table in warehouse.tables:
            if table not in old or (
                table != "mart_settings" and connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            ):
                continue
            if table == "mart_settings":
                connection.execute("DELETE FROM mart_settings")
            shared = _shared_columns(connection, table)
            columns = ", ".join(f'"{c}"' for c in shared)
            rows[table] = connection.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM legacy.{table}"
            ).fetchone()[0]
            if "athlete_id" in warehouse.tables[table] and "athlete_id" not in shared and "activity_id" in shared:
                athletes_from_activities(connection, table)  # laps and developer_fields of an older home
        connection.execute(f"CALL {ALIAS}.set_commit_message('retrostride', '{PUBLISHED}')")  # readers see it all
        return rows

    attached = warehouse.connect()
    attached.execute(f"ATTACH '{source}' AS legacy (READ_ONLY)")
    try:
        rows = warehouse.write(copy)
    finally:
        attached.execute("DETACH legacy")
        attached.close()
    kept = source.with_name(source.name + MIGRATED)
    source.rename(kept)
    published = source.with_name("published.duckdb")
    if published.exists():
        published.rename(published.with_name(published.name + MIGRATED))
    return Migration(source, rows, kept)


def _shared_columns(connection: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Columns `table` has both in the old file and in the warehouse (a home from an older version may lack some)."""

    def columns(database: str) -> list[str]:
        return [
            row[0]
            for row in connection.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND table_name = ? ORDER BY column_index",
                [database, table],
            ).fetchall()
        ]

    old = set(columns("legacy"))
    return [c for c in columns(connection.execute("SELECT current_database()").fetchone()[0]) if c in old]
