"""Time zones of places, offline (timezonefinder's bundled boundaries), and UTC offsets in them."""

from __future__ import annotations

from functools import lru_cache

import polars as pl
from timezonefinder import TimezoneFinder


@lru_cache(maxsize=1)
def _finder() -> TimezoneFinder:
    return TimezoneFinder()


def zone_at(lat: float, lon: float) -> str | None:
    """The IANA zone at a position (at sea: the nautical 'Etc/GMT±N' zone); None off the map."""
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    return _finder().timezone_at(lng=lon, lat=lat)


def start_zones(records: pl.DataFrame) -> pl.DataFrame:
    """activity_id, start_zone: the zone of each activity's first recorded position."""
    starts = (
        records.filter(pl.col("lat_deg").is_not_null() & pl.col("lon_deg").is_not_null())
        .sort("ts", nulls_last=True)
        .group_by("activity_id")
        .agg(pl.col("lat_deg").first(), pl.col("lon_deg").first())
    )
    zones = [zone_at(lat, lon) for lat, lon in starts.select("lat_deg", "lon_deg").iter_rows()]  # per activity
    return starts.select("activity_id", pl.Series("start_zone", zones, dtype=pl.String))


def utc_offsets(frame: pl.DataFrame, at: str, zone: str, into: str) -> pl.DataFrame:
    """Add `into`: the UTC offset (s) in the zone named by column `zone` at UTC instant `at`,
    DST-correct for each row (null where the zone is null)."""
    zones = frame[zone].unique()
    if len(zones) == 1:  # one zone (one activity, one athlete): no split, no reassembly
        return frame.with_columns(_offset(at, zones[0]).alias(into))
    parts = []
    for name, part in frame.with_row_index("_row").group_by(zone, maintain_order=True):  # per zone, not per row
        parts.append(part.with_columns(_offset(at, name[0]).alias(into)))
    if not parts:
        return frame.with_columns(pl.lit(None, pl.Int32).alias(into))
    return pl.concat(parts).sort("_row").drop("_row")


def _offset(at: str, zone_name: str | None) -> pl.Expr:
    if not zone_name:
        return pl.lit(None, pl.Int32)
    naive = pl.col(at).dt.replace_time_zone(None)
    local = pl.col(at).dt.convert_time_zone(zone_name).dt.replace_time_zone(None)
    return (local - naive).dt.total_seconds().cast(pl.Int32)
