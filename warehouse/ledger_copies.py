"""The ledger outside the warehouse: a Parquet copy of every chunk of ledger rows, in the lake.

The warehouse is rebuilt from the lake (`warehouse/rebuild.py`), but the ledger, which says which
file's rows are in which pack, lives in the warehouse itself.  So each chunk of ledger rows is also
written to `lake/ledger/<time>-<id>.parquet` (atomically, before its transaction commits): replaying
the chunks in order through the same statement (`write_ledger`) gives the ledger back.  A chunk whose
transaction never committed (a kill, a full disk) names files whose packs are in the lake; the next
import writes their rows again, and the replay keeps one row per (sha256, path), the newest.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl

from retrostride.warehouse.lake import Lake
from retrostride.warehouse.store import Warehouse, insert

#: Failures caused by the machine rather than the file: the next run tries the file again
#: (an object the store would not hand over, e.g. access denied to one key, is one of them).
RETRIED = ("decoder timed out", "decoder process died", "refused: file is", "could not download")


def write_ledger_copy(lake: Lake, frame: pl.DataFrame) -> Path:
    """Keep a copy of ledger rows in the lake (atomically: a reader sees all of it or none)."""
    folder = lake.ledger_dir
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
    temporary = folder / f".{name}"
    try:
        frame.write_parquet(temporary)
        os.replace(temporary, folder / name)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return folder / name


def ensure_ledger_copied(warehouse: Warehouse, lake: Lake) -> None:
    """Copy the whole ledger into the lake once, for a home whose ledger predates the copies."""
    if next(ledger_copies(lake), None) is None:
        ledger = warehouse.query("SELECT * FROM import_ledger")
        if len(ledger):
            write_ledger_copy(lake, ledger)


def ledger_copies(lake: Lake) -> Iterator[pl.DataFrame]:
    """The ledger chunks kept in the lake, oldest first."""
    folder = lake.ledger_dir
    for path in sorted(folder.glob("[0-9]*.parquet")) if folder.exists() else []:
        yield pl.read_parquet(path)


def write_ledger(connection: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> None:
    """Append ledger rows; a file retried after a failure of the machine's (`RETRIED`) loses its old row."""
    retried = " OR ".join("reason LIKE ?" for _ in RETRIED)
    connection.register("incoming_paths", frame.select("path"))
    try:
        connection.execute(
            f"DELETE FROM import_ledger WHERE status = 'failed' AND ({retried}) AND path IN (SELECT path FROM incoming_paths)",
            [f"{prefix}%" for prefix in RETRIED],
        )
    finally:
        connection.unregister("incoming_paths")
    insert(connection, "import_ledger", frame)


def replay_ledger(connection: duckdb.DuckDBPyConnection, lake: Lake) -> int:
    """Write the ledger kept in the lake into an empty `import_ledger`; how many rows it holds then."""
    for frame in ledger_copies(lake):
        write_ledger(connection, frame)
    connection.execute("""
        DELETE FROM import_ledger WHERE rowid IN (
            SELECT rowid FROM (SELECT rowid, row_number() OVER (PARTITION BY sha256, path ORDER BY imported_at DESC) AS newer
                               FROM import_ledger) WHERE newer > 1)""")
    return connection.execute("SELECT count(*) FROM import_ledger").fetchone()[0]
