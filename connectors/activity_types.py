"""What kind of activity each one is (`activities.activity_type`), told from what its file holds.

The sport a file (or its platform export) states wins, as it is.  A file that states none, or only
FIT's `generic`, is typed from its samples and its device, in this order:

1. a bike computer recorded it (Garmin Edge, Wahoo ELEMNT, Zwift, ...): `cycling`;
2. power on most samples without running dynamics (a power meter on a bike): `cycling`;
3. speed (moving samples, ≥ 0.5 m/s): a median of 5 m/s or more (18 km/h, faster than nearly every
   runner's average) or a 95th percentile of 8.5 m/s or more (31 km/h, beyond a sprinter's top
   speed, so no run holds it for 5 % of its time): `cycling`; a median under 1.9 m/s: `walking`;
   otherwise `running`;
4. none of these: `unknown`, with the reason.

`activity_type_basis` says which rule (or the file) decided, or why nothing could.  Pure Polars.
"""

from __future__ import annotations

import polars as pl

from retrostride.warehouse.motion import MOVING_SPEED_MPS

#: Stated sports (FIT, TCX, GPX `type`, Strava's Type after `connectors.strava`) → activity type.
STATED = {
    "running": "running",
    "trail_running": "running",
    "treadmill": "running",
    "walking": "walking",
    "hiking": "hiking",
    "cycling": "cycling",
    "e_biking": "cycling",
    "biking": "cycling",
    "mountain_biking": "cycling",
    "swimming": "swimming",
    "open_water": "swimming",
    "lap_swimming": "swimming",
}
#: Stated sports that say nothing about what was done.
UNSTATED = {"generic", "other", "all", "unknown"}
#: Recording devices that only bike computers are (`activities.device`, lower case).
BIKE_COMPUTERS = ("edge", "elemnt", "wahoo_fitness", "zwift", "bolt", "roam")

#: Moving-speed thresholds (m/s) of rule 3 (median, 95th percentile).
CYCLING_MEDIAN_MPS, CYCLING_P95_MPS, WALKING_MEDIAN_MPS = 5.0, 8.5, 1.9
#: Share of samples with power that marks a power meter.
POWER_SHARE = 0.5


def stated(sport: pl.Expr) -> pl.Expr:
    """Whether a sport says what was done (not null, not `generic` and the like)."""
    lower = sport.str.to_lowercase()
    return lower.is_not_null() & ~lower.is_in(list(UNSTATED))


def stated_type(sport: pl.Expr) -> pl.Expr:
    """The activity type a stated sport names (`other` for sports outside `STATED`)."""
    return sport.str.to_lowercase().replace_strict(STATED, default="other")


def sample_evidence(records: pl.DataFrame) -> pl.DataFrame:
    """Per activity: median and 95th percentile of moving speed, share of samples with power and
    with running dynamics (what `activity_types` reads)."""
    moving = pl.col("speed_mps").filter(pl.col("speed_mps") >= MOVING_SPEED_MPS)
    dynamics = pl.col("stance_time_ms").is_not_null() | pl.col("vertical_oscillation_mm").is_not_null()
    return records.group_by("activity_id").agg(
        moving.median().alias("_speed_median"),
        moving.quantile(0.95, "nearest").alias("_speed_p95"),
        pl.col("power_w").is_not_null().mean().alias("_power_share"),
        dynamics.any().alias("_dynamics"),
    )


def activity_types(activities: pl.DataFrame, evidence: pl.DataFrame) -> pl.DataFrame:
    """`activities` with `activity_type` and `activity_type_basis` (evidence: `sample_evidence`)."""
    frame = activities.join(evidence, on="activity_id", how="left")
    sport = pl.col("sport").str.to_lowercase()
    device = pl.col("device").str.to_lowercase().fill_null("")
    bike_computer = pl.any_horizontal(device.str.contains(name, literal=True) for name in BIKE_COMPUTERS)
    power_meter = (pl.col("_power_share") >= POWER_SHARE) & ~pl.col("_dynamics").fill_null(False)
    median, p95 = pl.col("_speed_median"), pl.col("_speed_p95")
    fast = (median >= CYCLING_MEDIAN_MPS) | (p95 >= CYCLING_P95_MPS)
    median_text = pl.format("median moving speed {} m/s, 95th percentile {} m/s", median.round(1), p95.round(1))
    decided = (
        pl.when(stated(sport))
        .then(pl.struct(type=stated_type(sport), basis=pl.format("the file's sport ({})", sport)))
        .when(bike_computer)
        .then(pl.struct(type=pl.lit("cycling"), basis=pl.format("recorded by a bike computer ({})", pl.col("device"))))
        .when(power_meter.fill_null(False))
        .then(pl.struct(type=pl.lit("cycling"), basis=pl.lit("power on most samples, no running dynamics")))
        .when(fast.fill_null(False))
        .then(pl.struct(type=pl.lit("cycling"), basis=median_text))
        .when(median < WALKING_MEDIAN_MPS)
        .then(pl.struct(type=pl.lit("walking"), basis=median_text))
        .when(median.is_not_null())
        .then(pl.struct(type=pl.lit("running"), basis=median_text))
        .otherwise(
            pl.struct(
                type=pl.lit("unknown"),
                basis=pl.lit("unknown: no sport stated, no moving speed, power or known device to tell"),
            )
        )
    )
    return (
        frame.with_columns(decided.alias("_decided"))
        .with_columns(
            pl.col("_decided").struct.field("type").alias("activity_type"),
            pl.col("_decided").struct.field("basis").alias("activity_type_basis"),
        )
        .drop("_decided", "_speed_median", "_speed_p95", "_power_share", "_dynamics")
    )
