"""The published snapshot: a read-only copy of the warehouse that SQL users query.

DuckDB lets one process hold a database file for writing, and while it does no other process may
open that file, not even to read.  So readers never open the working file: after every import the
pipeline checkpoints it and copies it, under its write lock, to a staging file, checks the copy
opens, and renames it over `published.duckdb`.  A rename is atomic: a reader opens either the old
snapshot or the new one, never a half-written or half-imported one, and one that has the old file
open keeps reading it undisturbed.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import duckdb

from retrostride.warehouse.store import Warehouse


def publish_snapshot(warehouse: Warehouse, target: Path) -> float:
    """Copy `warehouse` as it is now to `target`, atomically; returns the seconds it took."""
    started = time.perf_counter()
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    connection = warehouse.connect()  # holds the write lock: nobody changes the file meanwhile
    try:
        connection.execute("CHECKPOINT")  # everything into the main file, the WAL emptied
        shutil.copyfile(warehouse.path, staging)
    finally:
        connection.close()
    try:
        with open(staging, "rb+") as handle:
            os.fsync(handle.fileno())
        duckdb.connect(str(staging), read_only=True).close()  # a copy that does not open stays out
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return time.perf_counter() - started
