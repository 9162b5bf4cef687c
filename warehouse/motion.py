"""Motion of samples: distance and speed from positions (GPX, some TCX), moving time and climb."""

from __future__ import annotations

import polars as pl

from retrostride.warehouse.schema import in_time_order

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)


def haversine_m(lat1: pl.Expr, lon1: pl.Expr, lat2: pl.Expr, lon2: pl.Expr) -> pl.Expr:
    """Great-circle distance in metres between two positions given in degrees."""
    dlat = (lat2 - lat1).radians()
    dlon = (lon2 - lon1).radians()
    a = (dlat / 2).sin() ** 2 + lat1.radians().cos() * lat2.radians().cos() * (dlon / 2).sin() ** 2
    return 2 * EARTH_RADIUS_M * a.sqrt().arcsin()


def with_derived_motion(records: pl.DataFrame) -> pl.DataFrame:
    """Fill `distance_m` (cumulative along the track) and `speed_mps` where the file lacks them.

    Works per `session`; recorded values always win over derived ones.
    """
    on_globe = pl.col("lat_deg").is_between(-90.0, 90.0) & pl.col("lon_deg").is_between(-180.0, 180.0)
    lat, lon = pl.when(on_globe).then(pl.col("lat_deg")), pl.when(on_globe).then(pl.col("lon_deg"))
    step = pl.when(on_globe | pl.col("lat_deg").is_null()).then(haversine_m(  # from the last position on the globe
        lat.forward_fill().shift(1).over("session"), lon.forward_fill().shift(1).over("session"), lat, lon,
    ).fill_null(0.0))  # an impossible position has no distance or speed of its own
    seconds = pl.col("ts").diff().over("session").dt.total_microseconds() / 1e6
    derived = records.with_columns(step.alias("_step"), seconds.alias("_dt")).with_columns(
        pl.col("_step").cum_sum().over("session").alias("_distance"),
        pl.when(pl.col("_dt") > 0).then(pl.col("_step") / pl.col("_dt")).alias("_speed"),
    )
    has_positions = pl.col("lat_deg").is_not_null().any().over("session")
    return derived.with_columns(
        pl.coalesce("distance_m", pl.when(has_positions).then(pl.col("_distance"))).alias("distance_m"),
        pl.coalesce("speed_mps", "_speed").alias("speed_mps"),
    ).drop("_step", "_dt", "_distance", "_speed")


#: Slower than this counts as stopped for moving time (m/s).
MOVING_SPEED_MPS = 0.5
#: A gap between samples longer than this is a pause, not movement (s).
MAX_MOVING_GAP_S = 30.0
#: Altitude is smoothed over this many samples before summing climbs.
ELEVATION_SMOOTHING = 5


def with_motion(records: pl.DataFrame) -> pl.DataFrame:
    """Records sorted by activity and time, with each sample's `_moving` seconds (time since the
    previous sample, when moving and not paused) and `_climb` metres (smoothed altitude gained)."""
    gap = pl.col("ts").diff().dt.total_microseconds().truediv(1e6).over("activity_id")
    moving = (pl.col("speed_mps") >= MOVING_SPEED_MPS) & (gap <= MAX_MOVING_GAP_S)
    smooth_altitude = pl.col("altitude_m").rolling_mean(ELEVATION_SMOOTHING, min_samples=1).over("activity_id")
    climb = smooth_altitude.diff().over("activity_id").clip(lower_bound=0)
    return in_time_order(records).with_columns(
        pl.when(moving).then(gap).otherwise(0.0).alias("_moving"), climb.alias("_climb")
    )
