"""Motion of samples: distance and speed from positions (GPX, some TCX), moving time and climb."""

from __future__ import annotations

import numpy as np
import polars as pl

from retrostride.warehouse.rolling import centred_rolling, run_ids
from retrostride.warehouse.schema import in_time_order

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)


def haversine_m(lat1: pl.Expr, lon1: pl.Expr, lat2: pl.Expr, lon2: pl.Expr) -> pl.Expr:
    """Great-circle distance in metres between two positions given in degrees."""
    dlat = (lat2 - lat1).radians()
    dlon = (lon2 - lon1).radians()
    a = (dlat / 2).sin() ** 2 + lat1.radians().cos() * lat2.radians().cos() * (dlon / 2).sin() ** 2
    return 2 * EARTH_RADIUS_M * a.sqrt().arcsin()


#: A session's own (device) distance is its distance when the samples that carry one span at least
#: this share of the session's time; sparser, it is not used at all (never mixed with a derived one).
DEVICE_DISTANCE_SPAN = 0.9


def with_derived_motion(records: pl.DataFrame) -> pl.DataFrame:
    """Fill `speed_mps` where the file lacks it, and give each `session` one source of distance.

    Distance comes from one source per session, never two added or mixed row by row: the device's
    cumulative distance when its samples span `DEVICE_DISTANCE_SPAN` of the session's time (gaps
    between them are fine), else the track's positions, else speed × time (each step at the speed of
    the sample before it, over at most `MAX_MOVING_GAP_S`); else the device's, however sparse.
    Recorded speeds always win over derived ones.
    """
    on_globe = pl.col("lat_deg").is_between(-90.0, 90.0) & pl.col("lon_deg").is_between(-180.0, 180.0)
    lat, lon = pl.when(on_globe).then(pl.col("lat_deg")), pl.when(on_globe).then(pl.col("lon_deg"))
    step = pl.when(on_globe | pl.col("lat_deg").is_null()).then(
        haversine_m(  # from the last position on the globe
            lat.forward_fill().shift(1).over("session"),
            lon.forward_fill().shift(1).over("session"),
            lat,
            lon,
        ).fill_null(0.0)
    )  # an impossible position has no distance or speed of its own
    seconds = pl.col("ts").diff().over("session").dt.total_microseconds() / 1e6
    derived = records.with_columns(step.alias("_step"), seconds.alias("_dt")).with_columns(
        pl.col("_step").cum_sum().over("session").alias("_track"),
        pl.when(pl.col("_dt") > 0).then(pl.col("_step") / pl.col("_dt")).alias("_speed"),
        (pl.col("speed_mps").shift(1).over("session").fill_null(0.0) * pl.col("_dt").clip(0.0, MAX_MOVING_GAP_S))
        .fill_null(0.0)
        .cum_sum()
        .over("session")
        .alias("_integrated"),
    )
    span = lambda ts: (ts.max() - ts.min()).dt.total_microseconds().over("session")  # noqa: E731
    device_ts = pl.col("ts").filter(pl.col("distance_m").is_not_null())
    dense = span(device_ts) >= DEVICE_DISTANCE_SPAN * span(pl.col("ts"))
    has_positions = pl.col("lat_deg").is_not_null().any().over("session")
    has_speed = pl.col("speed_mps").is_not_null().any().over("session")
    return derived.with_columns(
        pl.when(dense.fill_null(False))
        .then(pl.col("distance_m"))
        .when(has_positions)
        .then(pl.col("_track"))
        .when(has_speed)
        .then(pl.col("_integrated"))
        .otherwise(pl.col("distance_m"))
        .alias("distance_m"),
        pl.coalesce("speed_mps", "_speed").alias("speed_mps"),
    ).drop("_step", "_dt", "_track", "_speed", "_integrated")


#: Slower than this counts as stopped for moving time (m/s).
MOVING_SPEED_MPS = 0.5
#: A gap between samples longer than this is a pause, not movement (s).
MAX_MOVING_GAP_S = 30.0
#: An altitude further than this from the median of the minute around it is a spike, not terrain (m).
ALTITUDE_SPIKE_M = 25.0
ALTITUDE_SPIKE_WINDOW_S = 60.0
#: Altitude is smoothed by a centred rolling median over this many seconds.
ALTITUDE_SMOOTHING_S = 5.0
#: Climb counts once altitude has left a band of this height (hysteresis): noise inside it is no climb.
CLIMB_HYSTERESIS_M = 1.5


#: The column `with_cleaned_altitude` adds: `with_motion` and the energy model's grade read it when
#: present instead of cleaning the altitude again.
CLEANED_ALTITUDE = "_cleaned_altitude_m"


def with_cleaned_altitude(records: pl.DataFrame) -> pl.DataFrame:
    """Records sorted by activity and time, with `CLEANED_ALTITUDE` (`cleaned_altitude`), cleaned once
    for every consumer."""
    if CLEANED_ALTITUDE in records.columns:
        return records
    return records.with_columns(cleaned_altitude(records).alias(CLEANED_ALTITUDE))


def cleaned_altitude(records: pl.DataFrame) -> pl.Series:
    """Altitude as climb is counted from it, for records sorted by activity and time: spikes (further
    than `ALTITUDE_SPIKE_M` from the median of the minute around them) dropped, a centred median
    over `ALTITUDE_SMOOTHING_S`, then a hysteresis band of `CLIMB_HYSTERESIS_M` (the altitude moves
    only when the smoothed one leaves the band).  Null where the record has no altitude or time."""
    timed = pl.col("ts").is_not_null()
    frame = records.select("activity_id", "ts", "altitude_m").with_row_index("_row").filter(timed)
    keys = ["activity_id"]
    # A median lies between the lowest and the highest altitude: only activities spanning more than
    # ALTITUDE_SPIKE_M can hold a spike, and only theirs are rolled.
    altitude = pl.col("altitude_m")
    hilly = frame.select(((altitude.max() - altitude.min()).over(keys) > ALTITUDE_SPIKE_M).fill_null(False)).to_series()
    hills = frame.filter(hilly)
    median = centred_rolling(hills, ALTITUDE_SPIKE_WINDOW_S, keys, [altitude.median()]).to_series()
    despiked = hills.select(pl.when((altitude - median).abs() <= ALTITUDE_SPIKE_M).then(altitude)).to_series()
    kept = frame.with_columns(frame["altitude_m"].clone().scatter(hilly.arg_true(), despiked))
    smooth = centred_rolling(kept, ALTITUDE_SMOOTHING_S, keys, [pl.col("altitude_m").median()]).to_series()
    smooth = pl.when(kept["altitude_m"].is_not_null()).then(smooth).otherwise(None)
    smoothed = kept.select(smooth.alias("altitude_m"), run_ids(keys).alias("_activity"), "_row")
    banded = _hysteresis(smoothed["altitude_m"].to_numpy(), smoothed["_activity"].to_numpy(), CLIMB_HYSTERESIS_M)
    out = np.full(records.height, np.nan)
    out[smoothed["_row"].to_numpy()] = banded
    return pl.Series("altitude_m", out, dtype=pl.Float64).fill_nan(None)


def _hysteresis(altitude: np.ndarray, group: np.ndarray, band_m: float) -> np.ndarray:
    """Each group's altitude through a play operator of width `band_m`: the output follows the input
    only once it leaves [output, output + band]; NaN (no altitude) stays NaN and holds the output.

    Columnar: between turning points the altitude only rises (the output is the larger of its level
    at the run's start and altitude - band, once above that level + band) or only falls (the
    smaller of that level and the altitude), so only the runs' ends are stepped through one by one.
    The same as stepping sample by sample unless two altitudes of a rising run differ by a rounding
    error (~1e-13 m): altitudes are recorded in steps of centimetres or more."""
    out = np.full(len(altitude), np.nan)
    rows = np.flatnonzero(~np.isnan(altitude))
    if not len(rows):
        return out
    value, owner = altitude[rows], group[rows]
    first = np.r_[True, owner[1:] != owner[:-1]]
    step = np.sign(np.r_[0.0, np.diff(value)])
    step[first] = 0.0
    last_move = np.maximum.accumulate(np.where((step != 0) | first, np.arange(len(value)), 0))
    rising = step[last_move] >= 0  # a run's direction: its last move in the group (rising before any)
    starts = np.flatnonzero(first | np.r_[False, rising[1:] != rising[:-1]])
    ends = np.r_[starts[1:], len(value)] - 1
    levels = []  # each run's level at its start
    level = 0.0
    for start, end, new_group, up in zip(
        starts.tolist(), ends.tolist(), first[starts].tolist(), rising[starts].tolist(), strict=True
    ):
        if new_group:
            level = value[start]
        levels.append(level)
        top = value[end]
        level = (top - band_m if top > level + band_m else level) if up else min(level, top)
    at_start = np.repeat(np.array(levels), ends - starts + 1)
    lifted = np.where(value > at_start + band_m, value - band_m, at_start)  # the band's own comparison
    out[rows] = np.where(rising, lifted, np.minimum(at_start, value))
    return out


def with_motion(records: pl.DataFrame) -> pl.DataFrame:
    """Records sorted by activity and time, with each sample's `_moving` seconds (time since the
    previous sample, when moving and not paused) and `_climb` metres (cleaned altitude gained,
    `cleaned_altitude`)."""
    gap = pl.col("ts").diff().dt.total_microseconds().truediv(1e6).over("activity_id")
    moving = (pl.col("speed_mps") >= MOVING_SPEED_MPS) & (gap <= MAX_MOVING_GAP_S)
    ordered = with_cleaned_altitude(in_time_order(records))
    cleaned = pl.col(CLEANED_ALTITUDE)
    climb = cleaned.forward_fill().over("activity_id").diff().over("activity_id").clip(lower_bound=0)
    return ordered.with_columns(
        pl.when(moving).then(gap).otherwise(0.0).alias("_moving"), climb.fill_null(0.0).alias("_climb")
    ).drop(CLEANED_ALTITUDE)
