"""Distance and speed for files that record only positions and times (GPX, some TCX)."""

from __future__ import annotations

import polars as pl

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
