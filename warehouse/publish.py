"""Publish decoded files from the lake into the warehouse tables readers query.

Day partitions are replaced whole (delete what the days held, insert what the lake says they hold)
in one transaction, so re-running a range gives the same tables and readers never see half of it.
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
        link_duplicates(connection, first, last)
    return counts


#: Activities of one athlete starting this close together, whose time spans overlap, are one activity.
DUPLICATE_START_TOLERANCE_S = 180
#: ... unless their distances differ by more than this share of the longer one.
DUPLICATE_DISTANCE_TOLERANCE = 0.15
#: Between equally rich duplicates (same sample count), the first of these formats is canonical.
SOURCE_PREFERENCE = ("fit", "tcx", "gpx")


def link_duplicates(connection, first: date, last: date) -> None:
    """Mark activities that started on days first..last and repeat another activity (the same run
    from the watch and from a platform export): `duplicate_of` names the canonical one, the richest
    (most samples, then SOURCE_PREFERENCE, then id).  Nothing is deleted; marts count canonical rows."""
    connection.execute("UPDATE activities SET duplicate_of = NULL WHERE start_day BETWEEN ? AND ?", [first, last])
    connection.execute(
        """
        WITH ranked AS (
            SELECT activity_id, athlete_id, start_ts, coalesce(end_ts, start_ts) AS end_ts, distance_m,
                   row_number() OVER (ORDER BY records DESC NULLS LAST,
                       coalesce(list_position($preference, source), 99), activity_id) AS rank
            FROM activities
            WHERE start_day BETWEEN $first - INTERVAL 1 DAY AND $last + INTERVAL 1 DAY),
        pairs AS (
            SELECT d.activity_id, arg_min(c.activity_id, c.rank) AS canonical
            FROM ranked d JOIN ranked c
              ON c.athlete_id = d.athlete_id AND c.rank < d.rank
             AND abs(epoch(c.start_ts) - epoch(d.start_ts)) <= $tolerance
             AND c.start_ts <= d.end_ts AND d.start_ts <= c.end_ts
             AND (c.distance_m IS NULL OR d.distance_m IS NULL
                  OR abs(c.distance_m - d.distance_m) <= $share * greatest(c.distance_m, d.distance_m))
            GROUP BY d.activity_id)
        UPDATE activities SET duplicate_of = pairs.canonical FROM pairs
        WHERE activities.activity_id = pairs.activity_id AND activities.start_day BETWEEN $first AND $last
        """,
        {"first": first, "last": last, "preference": list(SOURCE_PREFERENCE),
         "tolerance": DUPLICATE_START_TOLERANCE_S, "share": DUPLICATE_DISTANCE_TOLERANCE},
    )


def publish_body_measurements(warehouse: Warehouse, lake: Lake) -> int:
    """Replace `body_measurements` with every imported file's measurements."""
    shas = warehouse.query(
        f"SELECT DISTINCT sha256 FROM import_ledger WHERE {_IMPORTED} AND body_measurements > 0 ORDER BY 1"
    )["sha256"].to_list()
    frame = lake.read_decoded(shas, "body_measurements") if shas else None
    with warehouse.transaction() as connection:
        connection.execute("DELETE FROM body_measurements")
        return insert(connection, "body_measurements", frame) if frame is not None else 0
