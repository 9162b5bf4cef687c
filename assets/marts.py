"""Marts: SQL views refreshed after every import; then the snapshot readers see is noted in the ledger."""

import dagster as dg

from retrostride.assets.resources import Models, Storage
from retrostride.warehouse.marts import MARTS, mart_description, refresh_marts
from retrostride.warehouse.publish import publish_snapshot

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
    refresh_marts(storage.warehouse, models.marts())
    for name in MARTS:
        yield dg.MaterializeResult(asset_key=name)


@dg.asset(deps=list(MARTS), group_name="marts", pool="warehouse", kinds={"duckdb"})
def published_warehouse(storage: Storage) -> dg.MaterializeResult:
    """The snapshot readers see (`retrostride sql`, the DuckDB CLI): one commit marks it, nothing is
    copied; the ledger notes it for the files it published (`retrostride sql --as-of`)."""
    return dg.MaterializeResult(metadata=publish_readers_snapshot(storage))


def publish_readers_snapshot(storage: Storage) -> dict:
    """Publish the snapshot readers see (the work of `published_warehouse`): its metadata."""
    snapshot, files = publish_snapshot(storage.warehouse)
    return {"snapshot_id": snapshot, "files": files}
