"""Read what scoring needs from the warehouse, and replace what it wrote, a month range at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from retrostride.warehouse.schema import ACTIVITIES, BASELINES, BODY_MEASUREMENTS, LAPS, RECORDS, conform
from retrostride.warehouse.store import Warehouse, insert, of_athletes

_STARTED_IN = "activity_id IN (SELECT activity_id FROM activities WHERE start_day BETWEEN ? AND ? AND {athletes})"

#: Tables scoring writes, per activity.
SCORE_TABLES = ("segments", "activity_energy", "activity_detection")


@dataclass(frozen=True)
class ActivityFrames:
    """Activities with their records and laps, as the warehouse holds them."""

    activities: pl.DataFrame
    records: pl.DataFrame
    laps: pl.DataFrame

    def as_dict(self) -> dict[str, pl.DataFrame]:
        return {"activities": self.activities, "records": self.records, "laps": self.laps}

    def started(self, first: date, last: date) -> ActivityFrames:
        """The activities that started on days first..last, with their records and laps."""
        activities = self.activities.filter(pl.col("start_day").is_between(first, last))
        ids = activities["activity_id"].implode()
        return ActivityFrames(
            activities,
            self.records.filter(pl.col("activity_id").is_in(ids)),
            self.laps.filter(pl.col("activity_id").is_in(ids)),
        )


def batches_started(
    warehouse: Warehouse,
    batches: list[tuple[date, date]],
    per_read: int,
    record_columns: tuple[str, ...] | None = None,
    athletes: list[str] | None = None,
) -> Iterator[tuple[date, date, ActivityFrames]]:
    """Each (first, last) batch's activities (of `athletes`; None: all) that started on its days (UTC),
    with their records (only `record_columns`, default all; in no set order: the filtered read
    interleaves activities, and `score_activities` sorts them) and laps.  The activities and laps of
    every batch are read at once (small tables; each read of one costs tens of ms whatever it
    finds), the records of `per_read` consecutive batches at a time."""
    if not batches:
        return
    records = RECORDS if record_columns is None else pl.Schema({name: RECORDS[name] for name in record_columns})
    mine = of_athletes(athletes)
    started_in = _STARTED_IN.format(athletes=mine)
    days = [batches[0][0], batches[-1][1]]
    activities = _read(warehouse, ACTIVITIES, f"activities WHERE start_day BETWEEN ? AND ? AND {mine}", days)
    laps = _read(warehouse, LAPS, f"laps WHERE {started_in}", days)
    for start in range(0, len(batches), per_read):
        group = batches[start : start + per_read]
        days = [group[0][0], group[-1][1]]
        chosen = activities.filter(pl.col("start_day").is_between(*days))
        frames = ActivityFrames(chosen, _records_of(warehouse, records, chosen, f"{mine} AND {started_in}", days), laps)
        for first, last in group:
            yield first, last, frames.started(first, last)


def month_batches(
    warehouse: Warehouse, first: date, end: date, max_records: int, athletes: list[str] | None = None
) -> list[tuple[date, date]]:
    """(first, last day) ranges covering the months from `first` up to `end` (exclusive) that hold
    activities (of `athletes`; None: any), consecutive months together up to `max_records` samples
    (a bigger month alone)."""
    months = warehouse.query(
        "SELECT date_trunc('month', start_day)::DATE AS first_day, last_day(start_day) AS last_day,"
        " coalesce(sum(records), 0)::BIGINT AS samples FROM activities"
        f" WHERE start_day >= ? AND start_day < ? AND {of_athletes(athletes)} GROUP BY 1, 2 ORDER BY 1",
        [first, end],
    )
    batches: list[tuple[date, date, int]] = []
    for first_day, last_day, samples in months.iter_rows():
        if batches and batches[-1][2] + samples <= max_records:
            batches[-1] = (batches[-1][0], last_day, batches[-1][2] + samples)
        else:
            batches.append((first_day, last_day, samples))
    return [(max(start, first), min(stop, end - timedelta(days=1))) for start, stop, _ in batches]


def latest_runs(warehouse: Warehouse, sports: tuple[str, ...], per_athlete: int) -> pl.DataFrame:
    """Each athlete's latest `per_athlete` activities of `sports` (or no sport): what baselines are fit on."""
    return _read(
        warehouse,
        ACTIVITIES,
        "activities WHERE sport IS NULL OR list_contains(?, sport)"
        " QUALIFY row_number() OVER (PARTITION BY athlete_id ORDER BY start_ts DESC) <= ?",
        [list(sports), per_athlete],
    )


def activity_frames(warehouse: Warehouse, activities: pl.DataFrame) -> ActivityFrames:
    """`activities` with their records and laps."""
    chosen = "activity_id IN (SELECT unnest(?::VARCHAR[]))"
    ids = [activities["activity_id"].to_list()]
    return ActivityFrames(
        activities=activities,
        records=_records_of(warehouse, RECORDS, activities, chosen, ids),
        laps=_read(warehouse, LAPS, f"laps WHERE {chosen}", ids),
    )


def body_measurements(warehouse: Warehouse) -> pl.DataFrame:
    """Every body measurement (a few per athlete per week at most: small)."""
    return _read(warehouse, BODY_MEASUREMENTS, "body_measurements", [])


def gait_baselines(warehouse: Warehouse) -> pl.DataFrame:
    """The stored forward-gait baselines."""
    return _read(warehouse, BASELINES, "gait_baselines", [])


def replace_gait_baselines(
    warehouse: Warehouse, baselines: pl.DataFrame, refit: list[str], athletes: list[str] | None = None
) -> int:
    """Replace the baselines of the `refit` athletes (and drop those of athletes without activities),
    of `athletes` only (None: any)."""

    def replace(connection) -> int:
        connection.execute(
            "DELETE FROM gait_baselines WHERE (list_contains(?, athlete_id)"
            f" OR athlete_id NOT IN (SELECT athlete_id FROM activities)) AND {of_athletes(athletes)}",
            [refit],
        )
        return insert(connection, "gait_baselines", baselines)

    return warehouse.write(replace)


def replace_scores(warehouse: Warehouse, activity_ids: list[str], rows: dict[str, pl.DataFrame]) -> dict[str, int]:
    """Replace the score rows (`segments`, `activity_energy`, `activity_detection`) of the activities
    scored, in one transaction.  Only theirs: an activity another run published meanwhile keeps the
    rows that run gave it, so a commit retried after a conflict loses nothing."""

    def replace(connection) -> dict[str, int]:
        counts = {}
        for table in SCORE_TABLES:
            connection.execute(f"DELETE FROM {table} WHERE list_contains(?, activity_id)", [activity_ids])
            counts[table] = insert(connection, table, rows[table])
        return counts

    return warehouse.write(replace)


def drop_orphan_scores(warehouse: Warehouse, athletes: list[str] | None = None) -> None:
    """Delete score rows of activities the warehouse no longer holds, of `athletes` (None: any)."""

    def drop(connection) -> None:
        for table in SCORE_TABLES:
            connection.execute(
                f"DELETE FROM {table} WHERE {of_athletes(athletes)}"
                " AND activity_id NOT IN (SELECT activity_id FROM activities)"
            )

    warehouse.write(drop)


def _records_of(
    warehouse: Warehouse, schema: pl.Schema, activities: pl.DataFrame, chosen: str, parameters: list
) -> pl.DataFrame:
    """The records (`schema`'s columns) that `chosen` (SQL over `records`, with `parameters`) selects
    of `activities`.  An activity's samples lie between its start and its end (`connectors.frames.summarize`)
    and the records go in about time order (`warehouse.publish`), so only the row groups of the
    activities' span are read; rows not adding up to the activities' `records` (a sample outside its
    activity's span) mean a read of every row group instead."""
    span = activities.select(pl.col("start_ts").min(), pl.max_horizontal("start_ts", "end_ts").max().alias("end")).row(
        0
    )
    if None not in span:
        found = _read(warehouse, schema, f"records WHERE {chosen} AND ts BETWEEN ? AND ?", [*parameters, *span])
        if found.height == activities["records"].sum():
            return found
    return _read(warehouse, schema, f"records WHERE {chosen}", parameters)


def _read(warehouse: Warehouse, schema: pl.Schema, source: str, parameters: list) -> pl.DataFrame:
    columns = ", ".join(f'"{name}"' for name in schema.names())
    return conform(warehouse.query(f"SELECT {columns} FROM {source}", parameters), schema)
