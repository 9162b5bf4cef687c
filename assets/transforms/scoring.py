"""Score activities: detection, then energy, into the warehouse's `segments` and `activity_energy` rows."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from assets.transforms.energy import activity_energy, as_of_mass, record_energy, segment_energy
from assets.transforms.model_config import DetectionConfig, EnergyConfig, energy_row_version
from assets.transforms.segments import detect_segments
from connectors.frames import with_motion
from connectors.schema import ACTIVITY_ENERGY, SEGMENT_TABLE, conform


@dataclass(frozen=True)
class Scores:
    """What scoring adds to a set of activities."""

    segments: pl.DataFrame  # SEGMENT_TABLE
    activity_energy: pl.DataFrame  # ACTIVITY_ENERGY


def score_activities(
    records: pl.DataFrame,
    activities: pl.DataFrame,
    laps: pl.DataFrame,
    baselines: pl.DataFrame,
    body_measurements: pl.DataFrame,
    profiles: pl.DataFrame,
    detection: DetectionConfig,
    energy: EnergyConfig,
) -> Scores:
    """Segments with their moving time, climb and kcal, and each activity's energy."""
    segments = detect_segments(records, activities, laps, baselines, detection)
    masses = as_of_mass(activities, body_measurements, profiles, energy)
    record_kcal = record_energy(records, segments, masses, energy)
    with_kcal = segment_energy(record_kcal, segments, energy)
    keys = ["activity_id", "segment_index"]
    table = with_kcal.join(segment_motion(records, segments), on=keys, how="left")
    version = energy_row_version(detection.model_version, energy)
    totals = activity_energy(record_kcal, masses).with_columns(pl.col("model_version").fill_null(version))
    return Scores(segments=conform(table, SEGMENT_TABLE).sort(keys), activity_energy=conform(totals, ACTIVITY_ENERGY))


def segment_motion(records: pl.DataFrame, segments: pl.DataFrame) -> pl.DataFrame:
    """Per segment: moving time and elevation gain, counted as for whole activities, so the
    segments of an activity add up to its `moving_time_s` and `elevation_gain_m`."""
    starts = segments.select("activity_id", "segment_index", pl.col("start_ts").alias("_segment_start"))
    return (
        with_motion(records)
        .select("activity_id", "ts", "_moving", "_climb")
        .sort("ts")
        .join_asof(
            starts.sort("_segment_start"),
            left_on="ts",
            right_on="_segment_start",
            by="activity_id",
            strategy="backward",
            check_sortedness=False,  # sorted above; Polars cannot check within `by` groups
        )
        .group_by("activity_id", "segment_index")
        .agg(
            pl.col("_moving").sum().alias("moving_time_s"),
            pl.col("_climb").sum().alias("elevation_gain_m"),
        )
        .drop_nulls("segment_index")
    )
