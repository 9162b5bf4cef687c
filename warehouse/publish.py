"""Publish decoded files from the lake into the warehouse tables readers query.

Day partitions are replaced whole (delete what the days held, insert what the lake says they hold)
in one transaction, so re-running a range gives the same tables and readers never see half of it.
Ingest notes the days it imported in `pending_days`; `mark_published` clears them once the whole
publish run (tables, detection, energy) has succeeded, so a run killed half-way is published again.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from connectors.privacy import PRIVACY_ZONES, mask_positions
from connectors.schema import conform, empty
from warehouse.lake import Lake
from warehouse.store import Warehouse, insert

#: Files read from the lake at a time while publishing a range (bounds memory).
FILES_PER_CHUNK = 200

_IMPORTED = "status IN ('ok', 'partial')"


def publish_days(
    warehouse: Warehouse, lake: Lake, first: date, last: date, privacy_zones: pl.DataFrame | None = None
) -> dict[str, int]:
    """Replace the activities, records and laps of activities that started on days first..last (UTC);
    record positions inside `privacy_zones` are published as null."""
    zones = conform(privacy_zones, PRIVACY_ZONES) if privacy_zones is not None else empty(PRIVACY_ZONES)
    shas = warehouse.query(
        f"SELECT DISTINCT sha256 FROM import_ledger WHERE {_IMPORTED} AND first_day <= ? AND last_day >= ? ORDER BY 1",
        [last, first],
    )["sha256"].to_list()
    counts = {"activities": 0, "records": 0, "laps": 0}
    in_range = "activity_id IN (SELECT activity_id FROM activities WHERE start_day BETWEEN ? AND ?)"
    with warehouse.transaction() as connection:
        for table in ("records", "laps"):
            connection.execute(f"DELETE FROM {table} WHERE {in_range}", [first, last])
        connection.execute("DELETE FROM activities WHERE start_day BETWEEN ? AND ?", [first, last])
        for start in range(0, len(shas), FILES_PER_CHUNK):
            chunk = shas[start : start + FILES_PER_CHUNK]
            activities = lake.read_decoded(chunk, "activities")
            if activities is None:
                continue
            activities = activities.filter(pl.col("start_day").is_between(first, last))
            ids = activities["activity_id"]
            counts["activities"] += insert(connection, "activities", activities)
            for table in ("records", "laps"):
                frame = lake.read_decoded(chunk, table)
                if frame is None:
                    continue
                frame = frame.filter(pl.col("activity_id").is_in(ids.implode()))
                if table == "records":
                    frame = mask_positions(frame, zones)
                counts[table] += insert(connection, table, frame)
    return counts


def mark_published(warehouse: Warehouse, first: date, last: date) -> int:
    """Clear days first..last from `pending_days` after a publish run over them succeeded."""
    with warehouse.transaction() as connection:
        return connection.execute("DELETE FROM pending_days WHERE day BETWEEN ? AND ?", [first, last]).fetchone()[0]


def publish_body_measurements(warehouse: Warehouse, lake: Lake) -> int:
    """Replace `body_measurements` with every imported file's measurements."""
    shas = warehouse.query(
        f"SELECT DISTINCT sha256 FROM import_ledger WHERE {_IMPORTED} AND body_measurements > 0 ORDER BY 1"
    )["sha256"].to_list()
    frame = lake.read_decoded(shas, "body_measurements") if shas else None
    with warehouse.transaction() as connection:
        connection.execute("DELETE FROM body_measurements")
        return insert(connection, "body_measurements", frame) if frame is not None else 0
