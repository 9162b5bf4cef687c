"""Privacy zones: positions recorded near a home or a workplace are removed from what is served."""

from __future__ import annotations

import polars as pl

from retrostride.warehouse.motion import haversine_m


def mask_positions(records: pl.DataFrame, zones: pl.DataFrame) -> pl.DataFrame:
    """`records` with lat/lon set to null wherever they fall inside one of the athlete's zones
    (`zones` shaped as `warehouse.schema.PRIVACY_ZONES`);
    every other column (distance, speed, time) stays as recorded."""
    if zones.is_empty() or records.is_empty():
        return records
    indexed = records.with_row_index("_row")
    inside = (
        indexed.select("_row", "athlete_id", "lat_deg", "lon_deg")
        .filter(pl.col("lat_deg").is_not_null())
        .join(
            zones.select("athlete_id", pl.col("lat_deg").alias("_zlat"), pl.col("lon_deg").alias("_zlon"), "radius_m"),
            on="athlete_id",
        )
        .filter(
            haversine_m(pl.col("lat_deg"), pl.col("lon_deg"), pl.col("_zlat"), pl.col("_zlon")) <= pl.col("radius_m")
        )
        .select("_row")
        .unique()
    )
    hidden = pl.col("_row").is_in(inside["_row"].implode())
    return indexed.with_columns(
        pl.when(hidden).then(None).otherwise(pl.col(c)).alias(c) for c in ("lat_deg", "lon_deg")
    ).drop("_row")
