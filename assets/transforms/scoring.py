"""Score activities: detection, then energy, into the warehouse's `segments` and `activity_energy` rows."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from retrostride.assets.transforms.detection_status import detection_status
from retrostride.assets.transforms.energy import activity_energy, as_of_mass, record_energy, segment_energy
from retrostride.assets.transforms.gait_prior import with_prior_baselines
from retrostride.assets.transforms.model_config import DetectionConfig, EnergyConfig, energy_row_version
from retrostride.assets.transforms.segments import detect_segments
from retrostride.warehouse.motion import with_cleaned_altitude, with_motion
from retrostride.warehouse.schema import ACTIVITY_ENERGY, SEGMENT_TABLE, conform, in_time_order

#: The record columns scoring reads (`tests/test_scoring.py` checks the transforms use no other): the
#: rest (power, running dynamics, temperature) are neither read from the warehouse nor handed over.
RECORD_COLUMNS = (
    "activity_id",
    "athlete_id",
    "ts",
    "lat_deg",
    "lon_deg",
    "altitude_m",
    "distance_m",
    "speed_mps",
    "heart_rate_bpm",
    "cadence_spm",
    "facing_deg",
)


@dataclass(frozen=True)
class Scores:
    """What scoring adds to a set of activities."""

    segments: pl.DataFrame  # SEGMENT_TABLE
    activity_energy: pl.DataFrame  # ACTIVITY_ENERGY
    activity_detection: pl.DataFrame  # ACTIVITY_DETECTION


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
    """Segments with their moving time, climb and kcal, and each activity's energy.

    Activities on foot (`activity_type` in `detection.foot_sports`, at foot speeds) are scored; the
    others (a ride, a swim, an activity whose type could not be told) get one 'unknown' segment
    carrying their totals, and no kcal: the energy model is for legs.  Rows published before types
    were told go by their sport (null or on foot).  Athletes without a stored baseline are scored against the
    literature prior (`gait_prior`)."""
    if "activity_type" not in activities.columns:
        activities = activities.with_columns(pl.lit(None, pl.String).alias("activity_type"))
    mean_speed = pl.col("distance_m") / pl.col("moving_time_s")
    by_sport = pl.col("sport").is_null() | pl.col("sport").is_in(list(detection.foot_sports))
    typed = pl.col("activity_type").is_in(list(detection.foot_sports))
    on_foot = pl.when(pl.col("activity_type").is_not_null()).then(typed).otherwise(by_sport) & (
        mean_speed <= detection.foot_max_mean_speed_mps
    ).fill_null(True)
    foot = activities.filter(on_foot)
    # sorted once here (a filtered warehouse read interleaves activities): each step after finds them in order
    records = in_time_order(records.filter(pl.col("activity_id").is_in(foot["activity_id"].implode())))
    laps = laps.filter(pl.col("activity_id").is_in(foot["activity_id"].implode()))
    baselines = with_prior_baselines(baselines, foot, profiles, detection)
    segments = detect_segments(records, foot, laps, baselines, detection)
    masses = as_of_mass(activities, body_measurements, profiles, energy)
    cleaned = with_cleaned_altitude(records)  # for the energy model's grade and the climb, cleaned once
    record_kcal = record_energy(cleaned, segments, masses, energy)
    with_kcal = segment_energy(record_kcal, segments, energy)
    keys = ["activity_id", "segment_index"]
    table = with_kcal.join(segment_motion(cleaned, segments), on=keys, how="left")
    version = energy_row_version(detection.model_version, energy)
    others = activities.filter(~on_foot)
    totals = activity_energy(record_kcal, masses.join(others, on="activity_id", how="anti"))
    unscored = masses.join(others.select("activity_id"), on="activity_id", how="semi")
    return Scores(
        segments=pl.concat([conform(table, SEGMENT_TABLE), whole_activity_segments(others, version)]).sort(keys),
        activity_energy=pl.concat([conform(totals, ACTIVITY_ENERGY), conform(unscored, ACTIVITY_ENERGY)])
        .with_columns(pl.col("model_version").fill_null(version))
        .sort("activity_id"),
        activity_detection=detection_status(
            activities, activities.select(on_foot).to_series(), records, baselines, detection
        ),
    )


def whole_activity_segments(activities: pl.DataFrame, model_version: str) -> pl.DataFrame:
    """One 'unknown' segment per activity, with the activity's own totals and no kcal."""
    return conform(
        activities.with_columns(
            pl.lit(0, pl.Int32).alias("segment_index"),
            pl.lit("unknown").alias("direction"),
            pl.lit("unknown").alias("gait"),
            pl.when(pl.col("duration_s") > 0).then(pl.col("distance_m") / pl.col("duration_s")).alias("mean_speed_mps"),
            pl.lit("none").alias("evidence"),
            pl.lit(0.0).alias("confidence"),
            pl.lit(model_version).alias("model_version"),
        ),
        SEGMENT_TABLE,
    )


def segment_motion(records: pl.DataFrame, segments: pl.DataFrame) -> pl.DataFrame:
    """Per segment: moving time and elevation gain, counted as for whole activities, so the
    segments of an activity add up to its `moving_time_s` and `elevation_gain_m`."""
    starts = segments.select("activity_id", "segment_index", pl.col("start_ts").alias("_segment_start"))
    return (
        with_motion(records)
        .select("activity_id", "ts", "_moving", "_climb")
        .join_asof(
            starts.sort("activity_id", "_segment_start"),
            left_on="ts",
            right_on="_segment_start",
            by="activity_id",
            strategy="backward",
            check_sortedness=False,  # in time order within each activity; Polars cannot check within `by` groups
        )
        .group_by("activity_id", "segment_index")
        .agg(
            pl.col("_moving").sum().alias("moving_time_s"),
            pl.col("_climb").sum().alias("elevation_gain_m"),
        )
        .drop_nulls("segment_index")
    )
