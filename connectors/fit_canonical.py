"""FIT messages to canonical frames: the one mapping every FIT decoder shares.

A FIT decoder only has to produce `FitMessages`: for each message type named in `FIT_FIELDS`, a
Polars frame whose columns are FIT profile field names with profile scale/offset applied, enums as
their profile names, and `date_time` fields as UTC datetimes.  Positions stay in semicircles here.
"""

from __future__ import annotations

import polars as pl

from connectors.schema import (
    FILE_ACTIVITIES,
    FILE_BODY_MEASUREMENTS,
    FILE_LAPS,
    FILE_RECORDS,
    UTC_US,
    DecodedFile,
    conform,
    empty,
)

#: The message fields the canonical schema uses, per FIT message type.
FIT_FIELDS: dict[str, tuple[str, ...]] = {
    "file_id": ("type", "manufacturer", "product", "garmin_product", "time_created"),
    "record": (
        "timestamp", "position_lat", "position_long", "altitude", "enhanced_altitude", "distance",
        "speed", "enhanced_speed", "heart_rate", "cadence", "fractional_cadence", "power",
        "step_length", "stance_time", "vertical_oscillation", "temperature",
    ),
    "session": (
        "timestamp", "start_time", "sport", "sub_sport", "total_elapsed_time", "total_timer_time",
        "total_distance",
    ),
    "lap": ("timestamp", "start_time", "total_distance", "intensity", "lap_trigger", "wkt_step_index"),
    "activity": ("timestamp", "local_timestamp"),
    "workout": ("wkt_name",),
    "workout_step": ("message_index", "wkt_step_name"),
    "weight_scale": (
        "timestamp", "weight", "percent_fat", "percent_hydration", "muscle_mass", "bone_mass",
        "bmi", "user_profile_index",
    ),
}

FitMessages = dict[str, pl.DataFrame]

SEMICIRCLE_DEG = 180.0 / 2**31
#: Sports whose FIT cadence counts strides (one foot): steps/min = 2 × (cadence + fraction).
FOOT_SPORTS = {"running", "walking", "hiking", "training", "generic"}


def to_canonical(messages: FitMessages, *, decoder: str, decoder_version: str) -> DecodedFile:
    """Canonical frames of one FIT file: one activity per session, samples assigned by time."""
    sessions = _sessions(messages)
    records = _records(messages, sessions)
    return DecodedFile(
        format="fit",
        decoder=decoder,
        decoder_version=decoder_version,
        activities=_activities(messages, sessions) if len(records) or len(sessions) else empty(FILE_ACTIVITIES),
        records=records,
        laps=_laps(messages, sessions),
        body_measurements=_body_measurements(messages),
    )


def _frame(messages: FitMessages, name: str) -> pl.DataFrame:
    """The message type's frame with every wanted column present (null where the file lacks it)."""
    frame = messages.get(name, pl.DataFrame())
    missing = [f for f in FIT_FIELDS[name] if f not in frame.columns]
    return frame.with_columns(pl.lit(None).alias(f) for f in missing) if len(frame) else pl.DataFrame(
        {f: [] for f in FIT_FIELDS[name]}
    )


def _utc(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _sessions(messages: FitMessages) -> pl.DataFrame:
    """Sessions in time order with index, start and end; one synthetic session when none exist."""
    frame = _frame(messages, "session")
    if len(frame) == 0:
        records = _frame(messages, "record")
        if len(records) == 0:
            return pl.DataFrame(schema={"session": pl.Int32, "start": UTC_US, "end": UTC_US, "sport": pl.String})
        frame = records.select(
            pl.col("timestamp").min().alias("start_time"),
            pl.col("timestamp").max().alias("timestamp"),
            pl.lit(None, pl.String).alias("sport"),
            pl.lit(None, pl.String).alias("sub_sport"),
            *(pl.lit(None, pl.Float64).alias(c) for c in ("total_elapsed_time", "total_timer_time", "total_distance")),
        )
    start = pl.coalesce(_utc("start_time"), _utc("timestamp") - pl.duration(seconds=pl.col("total_elapsed_time").cast(pl.Float64)))
    return (
        frame.with_columns(start.alias("start"), _utc("timestamp").alias("end"))
        .sort("start", nulls_last=True)
        .with_row_index("session")
        .with_columns(pl.col("session").cast(pl.Int32), pl.col("sport").cast(pl.String), pl.col("sub_sport").cast(pl.String))
    )


def _assign_session(frame: pl.DataFrame, time_column: str, sessions: pl.DataFrame) -> pl.DataFrame:
    """Tag each row with the latest session that started at or before it (else the first)."""
    if len(sessions) == 0:
        return frame.with_columns(pl.lit(0, pl.Int32).alias("session"))
    starts = sessions.select("session", pl.col("start").alias("_start"), "sport").drop_nulls("_start").sort("_start")
    tagged = (
        frame.with_row_index("_order")
        .sort(time_column, nulls_last=True)
        .join_asof(starts, left_on=time_column, right_on="_start", strategy="backward")
        .sort("_order")
    )
    first = sessions.row(0, named=True)
    return tagged.with_columns(
        pl.col("session").fill_null(pl.lit(first["session"], pl.Int32)),
        pl.col("sport").fill_null(pl.lit(first["sport"], pl.String)),
    ).drop("_order", "_start")


def _records(messages: FitMessages, sessions: pl.DataFrame) -> pl.DataFrame:
    frame = _frame(messages, "record").with_columns(_utc("timestamp").alias("ts"))
    if len(frame) == 0:
        return empty(FILE_RECORDS)
    frame = _assign_session(frame, "ts", sessions)
    is_foot = pl.col("sport").is_in(list(FOOT_SPORTS)) | pl.col("sport").is_null()
    strides = pl.col("cadence").cast(pl.Float64) + pl.col("fractional_cadence").cast(pl.Float64).fill_null(0.0)
    return conform(
        frame.with_columns(
            (pl.col("position_lat").cast(pl.Float64) * SEMICIRCLE_DEG).alias("lat_deg"),
            (pl.col("position_long").cast(pl.Float64) * SEMICIRCLE_DEG).alias("lon_deg"),
            pl.coalesce(pl.col("enhanced_altitude").cast(pl.Float64), pl.col("altitude").cast(pl.Float64)).alias("altitude_m"),
            pl.col("distance").cast(pl.Float64).alias("distance_m"),
            pl.coalesce(pl.col("enhanced_speed").cast(pl.Float64), pl.col("speed").cast(pl.Float64)).alias("speed_mps"),
            pl.col("heart_rate").cast(pl.Float64).alias("heart_rate_bpm"),
            pl.when(is_foot).then(2.0 * strides).alias("cadence_spm"),
            pl.col("power").cast(pl.Float64).alias("power_w"),
            (pl.col("step_length").cast(pl.Float64) / 1000.0).alias("step_length_m"),
            pl.col("stance_time").cast(pl.Float64).alias("stance_time_ms"),
            pl.col("vertical_oscillation").cast(pl.Float64).alias("vertical_oscillation_mm"),
            pl.col("temperature").cast(pl.Float64).alias("temperature_c"),
        ),
        FILE_RECORDS,
    )


def _device(messages: FitMessages) -> str | None:
    file_id = _frame(messages, "file_id")
    if len(file_id) == 0:
        return None
    row = file_id.row(0, named=True)
    parts = [row.get("manufacturer"), row.get("garmin_product") or row.get("product")]
    return " ".join(str(p) for p in parts if p is not None) or None


def _utc_offset_s(messages: FitMessages) -> int | None:
    """The device's own UTC offset at recording: `activity.local_timestamp − timestamp`, to 15 min."""
    activity = _frame(messages, "activity").drop_nulls(["timestamp", "local_timestamp"])
    if len(activity) == 0:
        return None
    row = activity.row(0, named=True)
    local, utc = row["local_timestamp"], row["timestamp"]
    if not hasattr(local, "year") or not hasattr(utc, "year"):
        return None
    seconds = (local.replace(tzinfo=None) - utc.replace(tzinfo=None)).total_seconds()
    offset = int(round(seconds / 900.0) * 900)
    return offset if abs(offset) <= 14 * 3600 else None


def _activities(messages: FitMessages, sessions: pl.DataFrame) -> pl.DataFrame:
    offset = _utc_offset_s(messages)
    workout = _frame(messages, "workout")
    name = workout["wkt_name"].drop_nulls().first() if len(workout) else None
    frame = sessions.with_columns(
        pl.col("start").alias("start_ts"),
        pl.lit(name, pl.String).alias("name"),
        pl.lit(_device(messages), pl.String).alias("device"),
        pl.lit(offset, pl.Int32).alias("utc_offset_s"),
        pl.lit("device_activity" if offset is not None else None, pl.String).alias("utc_offset_source"),
        pl.col("total_elapsed_time").cast(pl.Float64).alias("total_elapsed_s"),
        pl.col("total_timer_time").cast(pl.Float64).alias("total_timer_s"),
        pl.col("total_distance").cast(pl.Float64).alias("total_distance_m"),
    ).with_columns(
        (pl.col("start_ts").dt.replace_time_zone(None) + pl.duration(seconds=pl.col("utc_offset_s"))).alias("local_start_ts")
    )
    return conform(frame, FILE_ACTIVITIES)


def _laps(messages: FitMessages, sessions: pl.DataFrame) -> pl.DataFrame:
    laps = _frame(messages, "lap")
    if len(laps) == 0:
        return empty(FILE_LAPS)
    steps = _frame(messages, "workout_step").select(
        pl.col("message_index").cast(pl.Int32).alias("wkt_step_index"), pl.col("wkt_step_name").cast(pl.String).alias("name")
    ).unique("wkt_step_index", keep="first")
    frame = laps.with_columns(
        pl.coalesce(_utc("start_time"), _utc("timestamp")).alias("start_ts"),
        _utc("timestamp").alias("end_ts"),
        pl.col("wkt_step_index").cast(pl.Int32),
    ).join(steps, on="wkt_step_index", how="left")
    frame = _assign_session(frame, "start_ts", sessions)
    frame = frame.with_columns(
        (pl.int_range(pl.len()).over("session")).cast(pl.Int32).alias("lap_index"),
        pl.col("total_distance").cast(pl.Float64).alias("distance_m"),
        pl.col("intensity").cast(pl.String),
        pl.col("lap_trigger").cast(pl.String).alias("trigger"),
    )
    return conform(frame, FILE_LAPS)


def _body_measurements(messages: FitMessages) -> pl.DataFrame:
    scale = _frame(messages, "weight_scale")
    if len(scale) == 0:
        return empty(FILE_BODY_MEASUREMENTS)
    number = lambda c: pl.col(c).cast(pl.Float64, strict=False)  # noqa: E731  ("calculating" etc. → null)
    frame = scale.with_columns(
        _utc("timestamp").alias("ts"),
        number("weight").alias("weight_kg"),
        number("percent_fat").alias("body_fat_pct"),
        number("percent_hydration").alias("body_water_pct"),
        number("muscle_mass").alias("muscle_mass_kg"),
        number("bone_mass").alias("bone_mass_kg"),
        number("bmi").alias("bmi"),
        pl.col("user_profile_index").cast(pl.Int32, strict=False),
    )
    return conform(frame, FILE_BODY_MEASUREMENTS).filter(pl.col("weight_kg").is_not_null() | pl.col("body_fat_pct").is_not_null())
