"""Marts: SQL views refreshed after every import, then the snapshot SQL users read is published."""

import dagster as dg

from retrostride.assets.resources import Models, Storage
from retrostride.warehouse.marts import MARTS, mart_description, refresh_marts
from retrostride.warehouse.snapshot import publish_snapshot

_INPUTS = ["activities", "segments", "activity_energy", "body_measurements"]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(name, deps=_INPUTS, description=mart_description(name), kinds={"duckdb", "sql"}) for name in MARTS
    ],
    group_name="marts",
    pool="warehouse",
)
def mart_views(storage: Storage, models: Models):
    """Recreate the mart views and store their parameters (`[marts]` of the model file) in mart_settings."""
    for name, rows in refresh_marts(storage.warehouse, models.marts()).items():
        yield dg.MaterializeResult(asset_key=name, metadata={"rows": rows})


@dg.asset(deps=list(MARTS), group_name="marts", pool="warehouse", kinds={"duckdb"})
def published_warehouse(storage: Storage) -> dg.MaterializeResult:
    """The read-only copy of the warehouse (`published.duckdb`) that `retrostride sql` and other
    readers open: replaced atomically, so a reader never sees a half-finished import."""
    return dg.MaterializeResult(metadata=publish_readers_snapshot(storage))


def publish_readers_snapshot(storage: Storage) -> dict:
    """Publish the snapshot readers open (the work of `published_warehouse`): its metadata."""
    seconds = publish_snapshot(storage.warehouse, storage.published_path)
    size = storage.published_path.stat().st_size
    return {"seconds": round(seconds, 3), "bytes": size, "path": str(storage.published_path)}
