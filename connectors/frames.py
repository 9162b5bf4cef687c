"""Decoded file frames → warehouse frames: ids, local time, and per-activity summaries (pure Polars)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from retrostride.connectors.activity_types import activity_types, sample_evidence
from retrostride.connectors.batches import FILE, DecodedBatch
from retrostride.connectors.timezones import start_zones, utc_offsets
from retrostride.warehouse.motion import with_motion
from retrostride.warehouse.schema import (
    ACTIVITIES,
    BODY_MEASUREMENTS,
    DEVELOPER_FIELDS,
    EXPORT_PRIVACY_ZONES,
    LAPS,
    RECORDS,
    DecodedFile,
    activity_ids,
    conform,
)


def warehouse_frames(decoded: DecodedFile, sha256: str, athlete_id: str, zone: str | None) -> dict[str, pl.DataFrame]:
    """The warehouse frames of one decoded file, owned by `athlete_id` (local time: `with_local_time`)."""
    batch = DecodedBatch.of([decoded])
    return batch.unstacked(batch_frames(batch, [FileOwner(sha256, athlete_id, zone)]))[0]


@dataclass(frozen=True)
class FileOwner:
    """Whose a decoded file is: its content hash, its athlete and the athlete's time zone."""

    sha256: str
    athlete_id: str
    zone: str | None


def batch_frames(batch: DecodedBatch, owners: list[FileOwner]) -> dict[str, pl.DataFrame]:
    """`warehouse_frames` of every file of a batch, stacked (each row keeps `FILE`)."""
    frames = batch.frames
    files = pl.DataFrame(
        {
            FILE: range(len(owners)),
            "source_sha256": [o.sha256 for o in owners],
            "athlete_id": [o.athlete_id for o in owners],
            "_athlete_zone": [o.zone for o in owners],
            "source": [f.format for f in batch.files],
        },
        schema_overrides={FILE: pl.Int32, "_athlete_zone": pl.String},
    )
    owned = {
        name: frames[name].join(files, on=FILE, how="left") if frames[name].height else frames[name]
        for name in ("body_measurements", "privacy_zones")
    }
    activities, records, laps, developer = (
        frames[name] for name in ("activities", "records", "laps", "developer_fields")
    )
    if activities.height or records.height or laps.height:
        activities, records = _activity_frames(activities, records, files)
        laps, developer = (_with_activity_ids(f, files) for f in (laps, developer))
    return {
        "activities": _conformed(activities, ACTIVITIES),
        "records": _conformed(records, RECORDS),
        "laps": _conformed(laps, LAPS),
        "developer_fields": _conformed(developer, DEVELOPER_FIELDS),
        "body_measurements": _conformed(owned["body_measurements"], BODY_MEASUREMENTS),
        "privacy_zones": _conformed(owned["privacy_zones"], EXPORT_PRIVACY_ZONES),
    }


def _conformed(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """`frame` in `schema`, keeping `FILE` (an empty frame costs no Polars call)."""
    if frame.height == 0:
        return pl.DataFrame(schema={**schema, FILE: pl.Int32})
    return conform(frame, pl.Schema({**schema, FILE: pl.Int32}))


def _activity_frames(
    activities: pl.DataFrame, records: pl.DataFrame, files: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    records = _with_activity_ids(records, files)
    activities = activities.join(files, on=FILE, how="left").with_columns(
        activity_ids(pl.col("source_sha256")).alias("activity_id")
    )
    activities = with_local_time(activities.join(start_zones(records), on="activity_id", how="left"))
    return activity_types(summarize(activities, records), sample_evidence(records)), records


def _with_activity_ids(frame: pl.DataFrame, files: pl.DataFrame) -> pl.DataFrame:
    """Rows of a per-session frame (records, laps, developer fields) with their activity's id."""
    ids = files.select(FILE, "source_sha256", "athlete_id")
    return frame.join(ids, on=FILE, how="left").with_columns(activity_ids(pl.col("source_sha256")).alias("activity_id"))


def with_local_time(activities: pl.DataFrame) -> pl.DataFrame:
    """Fill missing UTC offsets, each DST-correct for the activity's start: the file's own offset
    (FIT `activity.local_timestamp − timestamp`) stays; else the zone of the start position
    (`start_zone`, when the frame has it); else the athlete's zone (`_athlete_zone`); else UTC,
    marked as assumed.  Never the device's settings, never today's offset."""
    frame = (
        activities
        if "start_zone" in activities.columns
        else activities.with_columns(pl.lit(None, pl.String).alias("start_zone"))
    )
    frame = utc_offsets(frame, "start_ts", "start_zone", "_position_offset")
    frame = utc_offsets(frame, "start_ts", "_athlete_zone", "_athlete_offset")
    has_start = pl.col("start_ts").is_not_null()
    candidates = [
        (pl.col("utc_offset_s"), pl.col("utc_offset_source")),
        (pl.col("_position_offset"), pl.lit("start_position")),
        (pl.col("_athlete_offset"), pl.lit("athlete_zone")),
    ]
    source = pl.when(~has_start).then(pl.col("utc_offset_source"))
    for offset, name in candidates:
        source = source.when(offset.is_not_null()).then(name)
    filled = frame.with_columns(
        pl.when(has_start).then(pl.coalesce([c[0] for c in candidates] + [pl.lit(0, pl.Int32)])).alias("utc_offset_s"),
        source.otherwise(pl.lit("utc_assumed")).alias("utc_offset_source"),
    ).drop("_position_offset", "_athlete_zone", "_athlete_offset")
    return filled.with_columns(
        (pl.col("start_ts").dt.replace_time_zone(None) + pl.duration(seconds=pl.col("utc_offset_s"))).alias(
            "local_start_ts"
        )
    )


#: A file's own session start or end further than this from its samples is not trusted (s).
SESSION_TIME_TRUST_S = 86_400.0
#: Below this share of samples with a speed (a pool swim, an indoor session), moving time is the file's timer time.
SPEED_COVERAGE = 0.5


def summarize(activities: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """Add end, duration, moving time, distance, elevation gain and sample count from the records.

    An activity starts at the earlier of its file's start and its first sample (a file's start more
    than a day off its samples is ignored).  Its duration is a FIT session's own elapsed time (the
    device's clock, pauses without samples included), else first to last sample; it ends at its
    last sample or start + duration, whichever is later.  Moving time is counted from speed, or is
    the file's timer time where few samples have a speed, and never exceeds the duration."""
    stats = (
        with_motion(records)
        .group_by("activity_id")
        .agg(
            pl.col("ts").min().alias("_first"),
            pl.col("ts").max().alias("_last"),
            pl.col("_moving").sum().alias("_moving_s"),
            (pl.col("distance_m").max() - pl.col("distance_m").min()).alias("_distance"),
            pl.col("_climb").sum().alias("elevation_gain_m"),
            pl.len().cast(pl.Int64).alias("records"),
            pl.col("speed_mps").is_not_null().mean().alias("_speed_share"),
        )
    )
    return (
        activities.join(stats, on="activity_id", how="left")
        .with_columns(
            pl.min_horizontal(_trusted("start_ts", "_first"), "_first").alias("start_ts"),
            pl.col("records").fill_null(0),
        )
        .with_columns(
            pl.coalesce(
                pl.when(pl.col("source") == "fit").then(pl.col("total_elapsed_s")),
                (pl.col("_last") - pl.col("start_ts")).dt.total_microseconds() / 1e6,
                pl.col("total_elapsed_s"),
            ).alias("duration_s"),
        )
        .with_columns(
            pl.max_horizontal(
                "_last", pl.col("start_ts") + pl.duration(microseconds=(pl.col("duration_s") * 1e6).cast(pl.Int64))
            ).alias("end_ts"),
        )
        .with_columns(
            pl.min_horizontal(
                pl.when(pl.col("_speed_share") >= SPEED_COVERAGE)
                .then(pl.col("_moving_s"))
                .otherwise(pl.coalesce("total_timer_s", "_moving_s")),
                "duration_s",
            ).alias("moving_time_s"),
            pl.coalesce("_distance", "total_distance_m").alias("distance_m"),
            pl.col("start_ts").dt.date().alias("start_day"),
            (pl.col("start_ts").dt.replace_time_zone(None) + pl.duration(seconds=pl.col("utc_offset_s"))).alias(
                "local_start_ts"
            ),
        )
        .with_columns(pl.col("local_start_ts").dt.date().alias("local_day"))
    )


def _trusted(file_time: str, sample_time: str) -> pl.Expr:
    """The file's own time, unless it lies more than `SESSION_TIME_TRUST_S` from its samples' time."""
    near = (pl.col(file_time) - pl.col(sample_time)).dt.total_seconds().abs().fill_null(0) <= SESSION_TIME_TRUST_S
    return pl.when(near).then(pl.col(file_time))


def placeable(earliest: date, latest: date) -> pl.Expr:
    """Activities whose start day is a real partition (not missing, not absurd)."""
    return pl.col("start_day").is_between(earliest, latest)
