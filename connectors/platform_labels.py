"""Names, descriptions, sports and calories that a platform export gives the activities in its files.

An export's table (Strava's activities.csv, Garmin's summarized activities) is written once per
import as a Parquet file of LABELS rows; each activity file of the export carries a `PlatformLabels`
pointing at it, and the decoder's activities are enriched after decoding: matched on the file's name
in the export (Strava) or on the start time within a tolerance (Garmin).  Names and descriptions
from the platform win (users edit them there; the detector reads them); a sport the file itself
states wins over the platform's (FIT `generic` states none), and a platform's sport types an activity
whose file stated none (`activities.activity_type`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from retrostride.connectors.activity_types import stated, stated_type
from retrostride.warehouse.schema import UTC_US, DecodedFile, conform

LABELS = pl.Schema(
    {
        "file": pl.String,  # the activity file's path inside the export (Strava's Filename)
        "start_ts": UTC_US,
        "name": pl.String,
        "description": pl.String,
        "sport": pl.String,
        "calories_kcal": pl.Float64,
        "platform": pl.String,
        "platform_activity_id": pl.String,
    }
)
#: A Garmin summary and a FIT session start within this many seconds of each other are the same activity.
START_TOLERANCE_S = 120


@dataclass(frozen=True)
class PlatformLabels:
    """Where one file's labels are: the export's table, and how to find the file's rows in it."""

    table: str  # a Parquet file of LABELS rows
    file: str | None = None  # match the row naming this file; None: match sessions by start time
    tolerance_s: float = START_TOLERANCE_S


def write_labels(rows: pl.DataFrame, folder: Path, name: str) -> str:
    """Write an export's label rows for the files that follow; returns the table's path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.labels.parquet"
    conform(rows, LABELS).write_parquet(target)
    return str(target)


def with_platform_labels(decoded: DecodedFile, labels: PlatformLabels | None) -> DecodedFile:
    """`decoded` with its activities enriched from the export's table (unchanged when nothing matches)."""
    if labels is None or not len(decoded.activities):
        return decoded
    labelled = label_activities(decoded.activities, labels)
    return decoded if labelled is None else replace(decoded, activities=labelled)


def label_activities(activities: pl.DataFrame, labels: PlatformLabels) -> pl.DataFrame | None:
    """`activities` (a decoder's frame, or the warehouse frame already in the lake) with the export's
    labels, in the same schema; None when no row of the table is this file's.

    The lake's frame takes them when the same bytes were imported loose first: the export's copy is
    then a duplicate, and its labels reach the activity this way (`connectors.ingest`)."""
    if not len(activities):
        return None
    table = pl.scan_parquet(labels.table)
    if labels.file is not None:
        row = table.filter(pl.col("file") == labels.file).head(1).collect()
        if not len(row):
            return None
        matched = activities.join(row.drop("file", "start_ts"), how="cross", suffix="_platform")
    else:
        rows = table.filter(pl.col("start_ts").is_not_null()).sort("start_ts").collect().drop("file")
        dated = activities.filter(pl.col("start_ts").is_not_null()).sort("start_ts")
        matched = pl.concat(
            [
                dated.join_asof(
                    rows, on="start_ts", strategy="nearest", tolerance=f"{int(labels.tolerance_s)}s", suffix="_platform"
                ),
                activities.filter(pl.col("start_ts").is_null()),
            ],
            how="diagonal",
        ).sort("session")
        if not matched["platform_platform"].is_not_null().any():
            return None
    platform_sport = ~stated(pl.col("sport")) & stated(pl.col("sport_platform"))  # the file states none
    if "activity_type" in matched.columns:  # the lake's frame, typed from samples before the export came
        matched = matched.with_columns(
            pl.when(platform_sport)
            .then(stated_type(pl.col("sport_platform")))
            .otherwise("activity_type")
            .alias("activity_type"),
            pl.when(platform_sport)
            .then(pl.format("the platform's sport ({})", pl.col("sport_platform")))
            .otherwise("activity_type_basis")
            .alias("activity_type_basis"),
        )
    enriched = matched.with_columns(
        pl.coalesce("name_platform", "name").alias("name"),
        pl.coalesce("description_platform", "description").alias("description"),
        pl.when(platform_sport).then(pl.col("sport_platform")).otherwise("sport").alias("sport"),
        pl.coalesce("calories_kcal_platform", "calories_kcal").alias("calories_kcal"),
        pl.coalesce("platform_platform", "platform").alias("platform"),
        pl.coalesce("platform_activity_id_platform", "platform_activity_id").alias("platform_activity_id"),
    )
    return conform(enriched, activities.schema)
