"""FIT messages to canonical frames: the one mapping every FIT decoder shares.

A FIT decoder only has to produce `FitMessages`: for each message type named in `FIT_FIELDS`, an
Arrow table whose columns are FIT profile field names with profile scale/offset applied, enums as
their profile names, and `date_time` fields as UTC datetimes.  Positions stay in semicircles here.

This runs once per imported file, and a Polars expression costs tens of microseconds to plan
whatever the data's size, so the mapping reads the messages' Arrow columns as NumPy columns
(`connectors.columns`) and builds each output frame once from Arrow; samples find their session by
a binary search over the few session starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl
import pyarrow as pa

from retrostride.connectors.columns import (
    Column,
    arrow_type,
    column_of,
    frame,
    micros,
    nulls,
    numbers,
    series,
    texts,
    to_arrow,
)
from retrostride.warehouse.schema import (
    FILE_ACTIVITIES,
    FILE_BODY_MEASUREMENTS,
    FILE_LAPS,
    FILE_RECORDS,
    DecodedFile,
    empty,
)

#: Developer fields of record messages read as `facing_deg`, strongest first: the FIT profile has no
#: body-facing field, so only an app's magnetometer/compass heading (degrees from north) can give it.
FACING_FIELDS = ("facing", "compass_heading", "heading")

#: The message fields the canonical schema uses, per FIT message type.
FIT_FIELDS: dict[str, tuple[str, ...]] = {
    "file_id": ("type", "manufacturer", "product", "garmin_product", "time_created"),
    "record": (
        "timestamp",
        "position_lat",
        "position_long",
        "altitude",
        "enhanced_altitude",
        "distance",
        "speed",
        "enhanced_speed",
        "heart_rate",
        "cadence",
        "fractional_cadence",
        "power",
        "step_length",
        "stance_time",
        "vertical_oscillation",
        "temperature",
        *FACING_FIELDS,
    ),
    "session": (
        "timestamp",
        "start_time",
        "sport",
        "sub_sport",
        "total_elapsed_time",
        "total_timer_time",
        "total_distance",
    ),
    "lap": ("timestamp", "start_time", "total_distance", "intensity", "lap_trigger", "wkt_step_index"),
    "activity": ("timestamp", "local_timestamp"),
    "workout": ("wkt_name",),
    "workout_step": ("message_index", "wkt_step_name"),
    "weight_scale": (
        "timestamp",
        "weight",
        "percent_fat",
        "percent_hydration",
        "muscle_mass",
        "bone_mass",
        "bmi",
        "user_profile_index",
    ),
}

FitMessages = dict[str, pa.Table]

SEMICIRCLE_DEG = 180.0 / 2**31
#: Sports whose FIT cadence counts strides (one foot): steps/min = 2 × (cadence + fraction).
FOOT_SPORTS = {"running", "walking", "hiking", "training", "generic"}

_UTC = arrow_type(FILE_RECORDS["ts"])
_EMPTY_RECORDS, _EMPTY_ACTIVITIES, _EMPTY_LAPS, _EMPTY_BODY = (
    empty(FILE_RECORDS),
    empty(FILE_ACTIVITIES),
    empty(FILE_LAPS),
    empty(FILE_BODY_MEASUREMENTS),
)


def to_canonical(messages: FitMessages, *, decoder: str, decoder_version: str) -> DecodedFile:
    """Canonical frames of one FIT file: one activity per session, samples assigned by time."""
    messages, anchored = _anchored(messages)
    sessions = _sessions(messages)
    records = _records(messages, sessions)
    return DecodedFile(
        format="fit",
        decoder=decoder,
        decoder_version=decoder_version,
        kind=_file_type(messages),
        notes=ANCHORED_NOTE if anchored else None,
        activities=_activities(messages, sessions, anchored)
        if len(records) or len(sessions)
        else _EMPTY_ACTIVITIES.clear(),
        records=records,
        laps=_laps(messages, sessions),
        body_measurements=_body_measurements(messages),
    )


def _message(messages: FitMessages, name: str) -> pa.Table | None:
    found = messages.get(name)
    return found if found is not None and len(found) else None


@dataclass(frozen=True)
class _Sessions:
    """Sessions in start order (position = `session`), those without a start last."""

    start: Column  # µs
    end: Column  # µs
    sport: list[str | None]
    sub_sport: pa.Array
    totals: dict[str, Column]  # total_elapsed_s, total_timer_s, total_distance_m

    def __len__(self) -> int:
        return len(self.sport)

    def of(self, times: Column) -> np.ndarray:
        """The latest session that started at or before each time; the first for null or earlier times."""
        starts = self.start.values[self.start.valid]  # ascending: sorted, nulls last
        if not len(starts):
            return np.zeros(len(times), dtype=np.int32)
        found = np.searchsorted(starts, times.values, side="right") - 1
        return np.where(times.valid & (found >= 0), found, 0).astype(np.int32)

    def counts_strides(self) -> np.ndarray:
        """Per session: is its cadence strides/min (by its sport, else the first session's)."""
        sports = [s if s is not None else self.sport[0] for s in self.sport]
        return np.array([s is None or s in FOOT_SPORTS for s in sports], dtype=bool)


def _sessions(messages: FitMessages) -> _Sessions:
    """Sessions in time order; one synthetic session spanning the records when the file has none."""
    table = _message(messages, "session")
    if table is None:
        records = _message(messages, "record")
        if records is None:
            return _Sessions(nulls(0, np.int64), nulls(0, np.int64), [], pa.nulls(0, pa.large_string()), {})
        times = micros(records, "timestamp")
        found = times.values[times.valid]
        first, last = (
            Column(np.array([f(found)]), np.ones(1, bool)) if len(found) else nulls(1, np.int64)
            for f in (np.min, np.max)
        )
        return _Sessions(first, last, [None], pa.nulls(1, pa.large_string()), {})
    end = micros(table, "timestamp")
    elapsed = numbers(table, "total_elapsed_time")
    # pl.duration(seconds=x) in µs: x × 10⁶ truncated towards zero
    from_end = Column(end.values - np.trunc(elapsed.values * 1e6).astype(np.int64), end.valid & elapsed.valid)
    start = micros(table, "start_time").or_else(from_end)
    order = np.lexsort((np.where(start.valid, start.values, 0), ~start.valid))  # stable, nulls last
    pick = lambda c: Column(c.values[order], c.valid[order])  # noqa: E731
    totals = {
        "total_elapsed_s": elapsed,
        "total_timer_s": numbers(table, "total_timer_time"),
        "total_distance_m": numbers(table, "total_distance"),
    }
    return _Sessions(
        pick(start),
        pick(end),
        texts(table, "sport").take(order).to_pylist(),
        texts(table, "sub_sport").take(order),
        {name: pick(c) for name, c in totals.items()},
    )


def _records(messages: FitMessages, sessions: _Sessions) -> pl.DataFrame:
    table = _message(messages, "record")
    if table is None:
        return _EMPTY_RECORDS.clear()
    ts = micros(table, "timestamp")
    session = sessions.of(ts)
    number = lambda name: numbers(table, name)  # noqa: E731
    cadence, fraction = number("cadence"), number("fractional_cadence")
    strides = cadence.values + np.where(fraction.valid, fraction.values, 0.0)
    columns = {
        "session": Column(session, np.ones(len(session), bool)),
        "lat_deg": _scaled(number("position_lat"), lambda v: v * SEMICIRCLE_DEG),
        "lon_deg": _scaled(number("position_long"), lambda v: v * SEMICIRCLE_DEG),
        "altitude_m": number("enhanced_altitude").or_else(number("altitude")),
        "distance_m": number("distance"),
        "speed_mps": number("enhanced_speed").or_else(number("speed")),
        "heart_rate_bpm": number("heart_rate"),
        "cadence_spm": Column(2.0 * strides, cadence.valid & sessions.counts_strides()[session]),
        "power_w": number("power"),
        "step_length_m": _scaled(number("step_length"), lambda v: v / 1000.0),
        "stance_time_ms": number("stance_time"),
        "vertical_oscillation_mm": number("vertical_oscillation"),
        "temperature_c": number("temperature"),
        "facing_deg": _facing(number),
    }
    arrays = {name: to_arrow(c, arrow_type(FILE_RECORDS[name])) for name, c in columns.items()}
    return frame(len(table), {**arrays, "ts": to_arrow(ts, _UTC)}, FILE_RECORDS)


def _facing(number) -> Column:
    """Degrees from north of the first developer facing field present, folded into 0–360."""
    facing = number(FACING_FIELDS[0])
    for name in FACING_FIELDS[1:]:
        facing = facing.or_else(number(name))
    return _scaled(facing, lambda v: np.mod(v, 360.0))


def _scaled(column: Column, scale) -> Column:
    return Column(scale(column.values), column.valid)


#: What the ledger says of a file whose clock was device-relative.
ANCHORED_NOTE = (
    "device-relative times placed by the activity's local time (UTC offset unknown: local time taken as UTC)"
)
#: Where a device-relative clock's times are placed: `activities.utc_offset_source`.
LOCAL_CLOCK = "device_local_clock"
_TIMES = ("timestamp", "start_time", "time_created")


def _anchored(messages: FitMessages) -> tuple[FitMessages, bool]:
    """Messages whose times are device-relative (seconds since the device powered on: integers here,
    not dates) placed on the calendar by the `activity` message's `local_timestamp` (its local
    wall clock at its own relative `timestamp`); unchanged, and False, when there is nothing to do."""
    activity = _message(messages, "activity")
    if (
        activity is None
        or _type(activity, "timestamp") != pa.int64()
        or not pa.types.is_timestamp(_type(activity, "local_timestamp") or pa.null())
    ):
        return messages, False
    both = pl.from_arrow(activity.select(["timestamp", "local_timestamp"])).drop_nulls()
    if both.is_empty():
        return messages, False
    relative, local = both.row(0)
    origin = local.replace(tzinfo=None) - timedelta(seconds=relative)

    def placed(table: pa.Table) -> pa.Table:
        columns = [c for c in _TIMES if _type(table, c) == pa.int64()]
        if not columns:
            return table
        frame = pl.from_arrow(table).with_columns(
            (pl.lit(origin) + pl.duration(seconds=pl.col(c))).dt.replace_time_zone("UTC").alias(c) for c in columns
        )
        return frame.to_arrow()

    return {name: placed(table) for name, table in messages.items()}, True


def _type(table: pa.Table, name: str) -> pa.DataType | None:
    """The Arrow type of a column (None when absent)."""
    column = column_of(table, name)
    return None if column is None else column.type


def _file_type(messages: FitMessages) -> str | None:
    """The FIT file's type (`activity`, `settings`, `workout`, `monitoring_b`, ...), as its file_id says."""
    file_id = _message(messages, "file_id")
    kind = column_of(file_id, "type")[0].as_py() if file_id is not None and _type(file_id, "type") is not None else None
    return str(kind) if kind is not None else None


def _device(messages: FitMessages) -> str | None:
    file_id = _message(messages, "file_id")
    if file_id is None:
        return None
    row = file_id.slice(0, 1).to_pylist()[0]
    parts = [row.get("manufacturer"), row.get("garmin_product") or row.get("product")]
    return " ".join(str(p) for p in parts if p is not None) or None


def _utc_offset_s(messages: FitMessages) -> int | None:
    """The device's own UTC offset at recording: `activity.local_timestamp − timestamp`, to 15 min."""
    activity = _message(messages, "activity")
    if activity is None or _type(activity, "timestamp") is None or _type(activity, "local_timestamp") is None:
        return None
    both = [
        (u, loc)
        for u, loc in zip(
            column_of(activity, "timestamp").to_pylist(), column_of(activity, "local_timestamp").to_pylist()
        )
        if u is not None and loc is not None
    ]
    if not both:
        return None
    utc, local = both[0]
    if not hasattr(local, "year") or not hasattr(utc, "year"):
        return None
    seconds = (local.replace(tzinfo=None) - utc.replace(tzinfo=None)).total_seconds()
    offset = int(round(seconds / 900.0) * 900)
    return offset if abs(offset) <= 14 * 3600 else None


def _activities(messages: FitMessages, sessions: _Sessions, anchored: bool = False) -> pl.DataFrame:
    n = len(sessions)
    offset = _utc_offset_s(messages)  # 0 on an anchored clock: its times are the local ones
    workout = _message(messages, "workout")
    name = (
        next((n for n in texts(workout, "wkt_name").to_pylist() if n is not None), None)
        if workout is not None
        else None
    )
    local = Column(sessions.start.values + (offset or 0) * 1_000_000, sessions.start.valid & (offset is not None))
    constant = lambda value, arrow: pa.array([value] * n, arrow)  # noqa: E731
    columns = {
        "session": pa.array(np.arange(n, dtype=np.int32)),
        "sport": pa.array(sessions.sport, pa.large_string()),
        "sub_sport": sessions.sub_sport,
        "name": constant(name, pa.large_string()),
        "device": constant(_device(messages), pa.large_string()),
        "start_ts": to_arrow(sessions.start, _UTC),
        "local_start_ts": to_arrow(local, arrow_type(FILE_ACTIVITIES["local_start_ts"])),
        "utc_offset_s": constant(offset, pa.int32()),
        "utc_offset_source": constant(
            LOCAL_CLOCK if anchored else "device_activity" if offset is not None else None, pa.large_string()
        ),
        **{name: to_arrow(c, pa.float64()) for name, c in sessions.totals.items()},
    }
    return frame(n, columns, FILE_ACTIVITIES)


def _laps(messages: FitMessages, sessions: _Sessions) -> pl.DataFrame:
    laps = _message(messages, "lap")
    if laps is None:
        return _EMPTY_LAPS.clear()
    start = micros(laps, "start_time").or_else(micros(laps, "timestamp"))
    session = sessions.of(start)
    steps = series(laps, "wkt_step_index", pl.Int32)
    names = _step_names(messages)
    columns = {
        "session": pa.array(session),
        "lap_index": pa.array(_rank_within(session).astype(np.int32)),
        "name": pa.array([names.get(i) for i in steps.to_list()], pa.large_string()),
        "start_ts": to_arrow(start, _UTC),
        "end_ts": to_arrow(micros(laps, "timestamp"), _UTC),
        "distance_m": to_arrow(numbers(laps, "total_distance"), pa.float64()),
        "intensity": texts(laps, "intensity"),
        "trigger": texts(laps, "lap_trigger"),
        "wkt_step_index": steps.to_arrow(),
    }
    return frame(len(laps), columns, FILE_LAPS)


def _step_names(messages: FitMessages) -> dict[int, str | None]:
    """Workout-step number → its name (the first step of each number)."""
    steps = _message(messages, "workout_step")
    if steps is None or _type(steps, "message_index") is None:
        return {}
    names: dict[int, str | None] = {}
    for index, name in zip(
        series(steps, "message_index", pl.Int32).to_list(), texts(steps, "wkt_step_name").to_pylist()
    ):
        if index is not None:
            names.setdefault(index, name)
    return names


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """Each element's position among the elements of its group, in order (0, 1, … per group)."""
    order = np.argsort(groups, kind="stable")
    ordered = groups[order]
    first = np.ones(len(groups), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    position = np.arange(len(groups))
    rank = np.empty(len(groups), dtype=np.int64)
    rank[order] = position - np.maximum.accumulate(np.where(first, position, 0))
    return rank


def _body_measurements(messages: FitMessages) -> pl.DataFrame:
    scale = _message(messages, "weight_scale")
    if scale is None:
        return _EMPTY_BODY.clear()
    fields = {
        "weight_kg": "weight",
        "body_fat_pct": "percent_fat",
        "body_water_pct": "percent_hydration",
        "muscle_mass_kg": "muscle_mass",
        "bone_mass_kg": "bone_mass",
        "bmi": "bmi",
    }
    values = {column: numbers(scale, field) for column, field in fields.items()}  # "calculating" etc. → null
    profile = series(scale, "user_profile_index", pl.Int32, strict=False).to_arrow()
    columns = {
        "ts": to_arrow(micros(scale, "timestamp"), _UTC),
        **{name: to_arrow(c, pa.float64()) for name, c in values.items()},
        "user_profile_index": profile,
    }
    measured = values["weight_kg"].valid | values["body_fat_pct"].valid
    return frame(len(scale), columns, FILE_BODY_MEASUREMENTS).filter(pl.Series(measured))
