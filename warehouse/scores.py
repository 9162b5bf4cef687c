"""Read what scoring needs from the warehouse, and replace what it wrote, a month range at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from connectors.schema import ACTIVITIES, BASELINES, BODY_MEASUREMENTS, LAPS, RECORDS, conform
from warehouse.store import Warehouse, insert

_STARTED_IN = "activity_id IN (SELECT activity_id FROM activities WHERE start_day BETWEEN ? AND ?)"

#: Tables scoring writes, per activity.
SCORE_TABLES = ("segments", "activity_energy")


@dataclass(frozen=True)
class ActivityFrames:
    """Activities with their records and laps, as the warehouse holds them."""

    activities: pl.DataFrame
    records: pl.DataFrame
    laps: pl.DataFrame


def activities_started(warehouse: Warehouse, first: date, last: date) -> ActivityFrames:
    """Every activity that started on days first..last (UTC), with its records and laps."""
    return ActivityFrames(
        activities=_read(warehouse, ACTIVITIES, "activities WHERE start_day BETWEEN ? AND ?", [first, last]),
        records=_read(warehouse, RECORDS, f"records WHERE {_STARTED_IN} ORDER BY activity_id, ts", [first, last]),
        laps=_read(warehouse, LAPS, f"laps WHERE {_STARTED_IN}", [first, last]),
    )


def latest_runs(warehouse: Warehouse, sports: tuple[str, ...], per_athlete: int) -> ActivityFrames:
    """Each athlete's latest `per_athlete` activities of `sports` (or no sport), to fit baselines on."""
    chosen = (
        "activity_id IN (SELECT activity_id FROM activities WHERE sport IS NULL OR list_contains(?, sport)"
        " QUALIFY row_number() OVER (PARTITION BY athlete_id ORDER BY start_ts DESC) <= ?)"
    )
    parameters = [list(sports), per_athlete]
    return ActivityFrames(
        activities=_read(warehouse, ACTIVITIES, f"activities WHERE {chosen}", parameters),
        records=_read(warehouse, RECORDS, f"records WHERE {chosen} ORDER BY activity_id, ts", parameters),
        laps=_read(warehouse, LAPS, f"laps WHERE {chosen}", parameters),
    )


def body_measurements(warehouse: Warehouse) -> pl.DataFrame:
    """Every body measurement (a few per athlete per week at most: small)."""
    return _read(warehouse, BODY_MEASUREMENTS, "body_measurements", [])


def gait_baselines(warehouse: Warehouse) -> pl.DataFrame:
    """The stored forward-gait baselines."""
    return _read(warehouse, BASELINES, "gait_baselines", [])


def replace_gait_baselines(warehouse: Warehouse, baselines: pl.DataFrame) -> int:
    """Replace every athlete's baseline."""
    with warehouse.transaction() as connection:
        connection.execute("DELETE FROM gait_baselines")
        return insert(connection, "gait_baselines", baselines)


def replace_scores(warehouse: Warehouse, first: date, last: date, rows: dict[str, pl.DataFrame]) -> dict[str, int]:
    """Replace the score rows (`segments`, `activity_energy`) of activities that started on days
    first..last, in one transaction."""
    with warehouse.transaction() as connection:
        counts = {}
        for table in SCORE_TABLES:
            connection.execute(f"DELETE FROM {table} WHERE {_STARTED_IN}", [first, last])
            counts[table] = insert(connection, table, rows[table])
        return counts


def drop_orphan_scores(warehouse: Warehouse) -> None:
    """Delete score rows of activities the warehouse no longer holds."""
    with warehouse.transaction() as connection:
        for table in SCORE_TABLES:
            connection.execute(f"DELETE FROM {table} WHERE activity_id NOT IN (SELECT activity_id FROM activities)")


def _read(warehouse: Warehouse, schema: pl.Schema, source: str, parameters: list) -> pl.DataFrame:
    columns = ", ".join(f'"{name}"' for name in schema.names())
    return conform(warehouse.query(f"SELECT {columns} FROM {source}", parameters), schema)
