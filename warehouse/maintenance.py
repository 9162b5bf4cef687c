"""Keep the DuckLake small and fast: merge the small Parquet files many publishes leave, and drop the
files no snapshot within the kept history needs (DuckLake's own maintenance functions)."""

from __future__ import annotations

from dataclasses import dataclass

from retrostride.warehouse.catalog import ALIAS
from retrostride.warehouse.store import Warehouse


@dataclass(frozen=True)
class Maintenance:
    files_before: int
    files_after: int
    files_deleted: int


def data_files(warehouse: Warehouse) -> int:
    """Parquet data files the newest snapshot reads, over every table."""
    return sum(
        int(warehouse.query(f"SELECT count(*) AS n FROM ducklake_list_files('{ALIAS}', '{table}')")["n"][0])
        for table in warehouse.tables
    )


def compact(warehouse: Warehouse, keep_days: int = 30) -> Maintenance:
    """Merge adjacent small files of every table; expire snapshots older than `keep_days` (`--as-of`
    reaches back that far) and delete the files nothing references any more."""
    before = data_files(warehouse)
    connection = warehouse.connect()
    try:
        connection.execute(f"CALL ducklake_merge_adjacent_files('{ALIAS}')")
        connection.execute(
            f"CALL ducklake_expire_snapshots('{ALIAS}', older_than => now() - INTERVAL {int(keep_days)} DAY)"
        )
        deleted = len(connection.execute(f"CALL ducklake_cleanup_old_files('{ALIAS}', cleanup_all => true)").fetchall())
    finally:
        connection.close()
    return Maintenance(before, data_files(warehouse), deleted)
