"""The warehouse's weekly upkeep: small files merged, old snapshots expired (warehouse/maintenance.py)."""

import dagster as dg

from retrostride.assets.resources import Storage
from retrostride.warehouse.maintenance import compact

#: How far back `retrostride sql --as-of` reaches: snapshots older than this are expired.
KEEP_SNAPSHOT_DAYS = 30


@dg.asset(group_name="maintenance", pool="warehouse", kinds={"duckdb"})
def compacted_warehouse(storage: Storage) -> dg.MaterializeResult:
    """The DuckLake with its small Parquet files merged and snapshots older than 30 days expired."""
    done = compact(storage.warehouse, KEEP_SNAPSHOT_DAYS)
    return dg.MaterializeResult(
        metadata={
            "files_before": done.files_before,
            "files_after": done.files_after,
            "files_deleted": done.files_deleted,
        }
    )


maintenance_job = dg.define_asset_job(
    "maintenance",
    selection=[compacted_warehouse],
    description="Merge the warehouse's small files, expire old snapshots.",
)
maintenance_schedule = dg.ScheduleDefinition(
    name="weekly_maintenance",
    cron_schedule="30 4 * * 0",
    job=maintenance_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Sundays 04:30 (UTC): compact the warehouse.",
)
