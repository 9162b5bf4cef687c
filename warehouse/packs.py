"""Which lake pack holds each imported file's current rows, as the ledger says (`warehouse.lake`).

A file's rows are in the pack named by its newest ledger row that names one: the pack it was decoded
into, or a later one its activities were rewritten into when an export's copy brought labels.  A file
imported before packs existed has its own folder, named by its sha256.
"""

from __future__ import annotations

import duckdb
import polars as pl

from retrostride.warehouse.lake import Lake
from retrostride.warehouse.store import Warehouse

IMPORTED = "status IN ('ok', 'partial')"
_CURRENT = f"""
    SELECT sha256, arg_max(coalesce(lake_pack, sha256), imported_at) AS pack
    FROM import_ledger WHERE lake_pack IS NOT NULL OR {IMPORTED} GROUP BY sha256"""


def current_packs(
    warehouse: Warehouse,
    where: str = "true",
    parameters: list | None = None,
    connection: duckdb.DuckDBPyConnection | None = None,
) -> dict[str, str]:
    """sha256 → pack, for the imported files with a ledger row (ok or partial) that satisfies `where`
    (read in `connection`'s transaction when given)."""
    sql = (
        f"SELECT sha256, pack FROM ({_CURRENT}) JOIN (SELECT sha256, min(first_day) AS first_day FROM import_ledger"
        f" WHERE {IMPORTED} AND ({where}) GROUP BY sha256) USING (sha256) ORDER BY first_day, sha256"
    )
    if connection is not None:
        return dict(connection.execute(sql, parameters or []).fetchall())
    return dict(warehouse.query(sql, parameters).iter_rows())


def pack_files(lake: Lake, packs: dict[str, str], frame: str) -> pl.DataFrame:
    """path, sha256: the Parquet file holding one frame of each file's current rows (files without
    rows of that frame left out)."""
    paths = {pack: lake.frame_path(pack, frame) for pack in set(packs.values())}
    rows = [(str(paths[pack]), sha) for sha, pack in packs.items() if paths[pack] is not None]
    return pl.DataFrame(rows, schema={"path": pl.String, "sha256": pl.String}, orient="row")
