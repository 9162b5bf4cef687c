"""Why each activity's segments say what they say: one `detection_status` per activity.

So a reader can tell "no backward running" from "could not look": an activity is `scored` against
the athlete's own forward baseline, `scored_with_prior` against the literature prior (alone or blended
with fewer than `baseline_min_runs` runs of theirs), or says why gait evidence could not speak:
`not_on_foot`, `no_records`, `too_short`, `no_speed`, `no_cadence`, `no_running_gait`.  Labels and
facing, where present, still decide segments of an activity that gait cannot score.
"""

from __future__ import annotations

import polars as pl

from retrostride.assets.transforms.model_config import DetectionConfig
from retrostride.warehouse.schema import ACTIVITY_DETECTION, conform

#: Every status, in the order they are checked.
STATUSES = (
    "not_on_foot",
    "no_records",
    "too_short",
    "no_speed",
    "no_cadence",
    "no_running_gait",
    "scored",
    "scored_with_prior",
)


def detection_status(
    activities: pl.DataFrame,
    on_foot: pl.Series,
    records: pl.DataFrame,
    baselines: pl.DataFrame,
    config: DetectionConfig,
) -> pl.DataFrame:
    """One ACTIVITY_DETECTION row per activity; `on_foot` says which of `activities` were scored,
    `records` are theirs and `baselines` what they were scored against."""
    timed = records.filter(pl.col("ts").is_not_null())
    cadence = pl.col("cadence_spm")
    facts = timed.group_by("activity_id").agg(
        ((pl.col("ts").max() - pl.col("ts").min()).dt.total_microseconds() / 1e6).alias("_span_s"),
        (pl.col("speed_mps").is_not_null() | pl.col("distance_m").is_not_null()).any().alias("_speed"),
        (cadence > 0).any().alias("_cadence"),
        (cadence >= config.run_min_spm).any().alias("_running"),
    )
    basis = baselines.select(
        "athlete_id", pl.col("basis").alias("baseline_basis"), pl.col("runs").cast(pl.Int32).alias("baseline_runs")
    )
    rows = (
        activities.select("activity_id", "athlete_id")
        .with_columns(on_foot.alias("_on_foot"))
        .join(facts, on="activity_id", how="left")
        .join(basis, on="athlete_id", how="left")
    )
    status = (
        pl.when(~pl.col("_on_foot"))
        .then(pl.lit("not_on_foot"))
        .when(pl.col("_span_s").is_null())
        .then(pl.lit("no_records"))
        .when(pl.col("_span_s") < config.min_segment_s)
        .then(pl.lit("too_short"))
        .when(~pl.col("_speed"))
        .then(pl.lit("no_speed"))
        .when(~pl.col("_cadence"))
        .then(pl.lit("no_cadence"))
        .when(~pl.col("_running"))
        .then(pl.lit("no_running_gait"))
        .when(pl.col("baseline_basis") == "own")
        .then(pl.lit("scored"))
        .otherwise(pl.lit("scored_with_prior"))
    )
    scored = status.is_in(["scored", "scored_with_prior"])
    return conform(
        rows.with_columns(
            status.alias("detection_status"),
            pl.when(scored).then("baseline_basis").alias("baseline_basis"),
            pl.when(scored).then("baseline_runs").alias("baseline_runs"),
            pl.lit(config.model_version).alias("model_version"),
        ),
        ACTIVITY_DETECTION,
    ).sort("activity_id")
