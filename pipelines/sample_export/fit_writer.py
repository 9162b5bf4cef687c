"""Real FIT files, written with the Garmin FIT SDK's encoder: activities and weight-scale readings.

Units as the FIT profile defines them (the encoder applies each field's scale and offset):
positions in semicircles (deg × 2³¹ / 180), distance m, speed m/s, altitude m, step length mm,
stance time ms, vertical oscillation mm, temperature °C.  Running cadence is **strides/min**
(`cadence` + `fractional_cadence`, 1/128 resolution): steps/min = 2 × (cadence + fractional).
Walking sessions use the same convention.  Timestamps are whole seconds since 1989-12-31 UTC;
`activity.local_timestamp` is the local wall clock of the athlete's zone at the end of the activity.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
from garmin_fit_sdk import FIT_EPOCH_S, Encoder, Profile
from garmin_fit_sdk import fit as FIT

from .plans import SessionPlan
from .profiles import SCALE, Athlete, Device

MESG = Profile["mesg_num"]
SEMICIRCLES_PER_DEG = 2**31 / 180.0
HRM_PRO = 3300  # garmin_product hrm_pro: the chest strap that measures running dynamics
SOFTWARE_VERSION = 19.22


class CachingEncoder(Encoder):
    """The SDK encoder with three shortcuts for 1 Hz records; the output bytes are unchanged.

    The stock encoder rebuilds and compares a message definition for every message, converts each
    value through a general dispatch, and computes the file CRC a nibble at a time.  Here the
    definition of each layout is remembered, plain numbers in numeric fields take the SDK's own
    arithmetic ((value + offset) × scale, rounded unless the field is floating point) directly, and
    the CRC uses a byte table of the same CRC-16.  Everything else is the SDK's.
    """

    def __init__(self) -> None:
        super().__init__()
        self._definition_cache: dict[tuple, object] = {}

    def _create_mesg_definition(self, mesg_num, mesg):
        types = tuple(map(type, mesg.values()))  # None-ness decides which fields are defined
        key = (mesg_num, tuple(mesg), types)
        if str in types or list in types:  # strings and arrays also set field sizes
            key += (tuple(_size(v) for v in mesg.values()),)
        definition = self._definition_cache.get(key)
        if definition is None:
            definition = self._definition_cache[key] = super()._create_mesg_definition(mesg_num, mesg)
        return definition

    def _find_local_mesg_definition(self, mesg_definition):
        if self._local_mesg_definitions[mesg_definition.local_mesg_num] is mesg_definition:
            return mesg_definition
        return super()._find_local_mesg_definition(mesg_definition)

    def _transform_values(self, value, field_definition):
        kind = type(value)
        if (kind is int or (kind is float and math.isfinite(value))) and field_definition["type"] in _NUMERIC:
            scale, offset = field_definition["scale"], field_definition["offset"]
            if scale == FIT.FIELD_DEFAULT_SCALE and offset == FIT.FIELD_DEFAULT_OFFSET:
                return [value]
            scaled = (value + offset) * scale
            return [scaled if field_definition["type"] in _FLOATING else round(scaled)]
        return super()._transform_values(value, field_definition)

    def _write_file_crc(self):
        self._output_stream.write_uint16(fit_crc(self._output_stream.data))


_NUMERIC = frozenset(FIT.NUMERIC_FIELD_TYPES)
_FLOATING = frozenset(("float32", "float64"))


def _crc_table() -> list[int]:
    """CRC-16 (reflected polynomial 0xA001, initial 0): the FIT file checksum, one byte at a time."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def fit_crc(data: bytes) -> int:
    """The FIT CRC of `data` (equal to the SDK's `CrcCalculator.calculate_crc`)."""
    crc, table = 0, _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def _size(value: object) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    return len(value) if isinstance(value, list) else 0


def fit_time(moment: datetime) -> int:
    """A FIT `date_time`: seconds since 1989-12-31T00:00Z."""
    return int(moment.timestamp()) - FIT_EPOCH_S


def write_activity(
    path: Path, plan: SessionPlan, athlete: Athlete, samples: pl.DataFrame, sample_interval_s: int
) -> None:
    """Write one activity: file_id, devices, workout (if labelled), records, laps, events,
    session and activity (with `local_timestamp`)."""
    device = athlete.device
    start = fit_time(plan.start_utc)
    end = start + int(samples["t_s"][-1])
    enc = CachingEncoder()
    enc.on_mesg(
        MESG["FILE_ID"],
        {
            "type": "activity",
            "manufacturer": "garmin",
            "product": device.garmin_product,
            "serial_number": device.serial_number,
            "time_created": start,
        },
    )
    enc.on_mesg(MESG["FILE_CREATOR"], {"software_version": round(SOFTWARE_VERSION * 100)})
    enc.on_mesg(MESG["EVENT"], _timer_event(start, "start", auto=False))
    _write_devices(enc, device, start)
    if plan.steps:
        _write_workout(enc, plan)

    laps = lap_summary(samples, labelled=bool(plan.steps), sample_interval_s=sample_interval_s)
    lap_after = {row["last_row"]: row for row in laps.iter_rows(named=True)}
    gap_after = set(
        samples.with_row_index("row")
        .filter(pl.col("t_s").shift(-1) - pl.col("t_s") > sample_interval_s)["row"]
        .to_list()
    )
    records = _record_fields(samples, start, device)
    for row, record in enumerate(records.iter_rows(named=True)):
        enc.on_mesg(MESG["RECORD"], record)
        if row in gap_after:  # auto-pause: the timer stops here and restarts with the next record
            enc.on_mesg(MESG["EVENT"], _timer_event(record["timestamp"], "stop_all", auto=True))
            enc.on_mesg(MESG["EVENT"], _timer_event(start + int(samples["t_s"][row + 1]), "start", auto=True))
        if row in lap_after:
            enc.on_mesg(MESG["LAP"], _lap_message(lap_after[row], plan, start, device, final=row == samples.height - 1))

    timer_s = float(laps["timer_s"].sum())
    enc.on_mesg(MESG["EVENT"], _timer_event(end, "stop_all", auto=False))
    enc.on_mesg(MESG["SESSION"], _session_message(samples, laps, plan, start, end, timer_s, device))
    local_end = datetime.fromtimestamp(end + FIT_EPOCH_S, ZoneInfo(athlete.timezone))
    enc.on_mesg(
        MESG["ACTIVITY"],
        {
            "timestamp": end,
            "total_timer_time": timer_s,
            "num_sessions": 1,
            "type": "manual",
            "event": "activity",
            "event_type": "stop",
            "local_timestamp": end + int(local_end.utcoffset().total_seconds()),
        },
    )
    path.write_bytes(enc.close())


def _record_fields(samples: pl.DataFrame, start: int, device: Device) -> pl.DataFrame:
    """Samples in FIT record fields and units; null fields are left out of a record."""
    strides = (pl.col("cadence_spm") / 2.0 * 128.0).round()  # strides/min in 1/128 units
    altitude, speed = ("altitude", "speed") if device.legacy_speed_fields else ("enhanced_altitude", "enhanced_speed")
    return samples.select(
        timestamp=pl.col("t_s") + start,
        position_lat=(pl.col("lat_deg") * SEMICIRCLES_PER_DEG).round().cast(pl.Int32),
        position_long=(pl.col("lon_deg") * SEMICIRCLES_PER_DEG).round().cast(pl.Int32),
        **{altitude: pl.col("altitude_m")},
        distance=pl.col("distance_m"),
        **{speed: pl.col("speed_mps")},
        heart_rate=pl.col("heart_rate_bpm").cast(pl.Int32),
        cadence=(strides // 128).cast(pl.Int32),
        fractional_cadence=(strides % 128) / 128.0,
        step_length=pl.col("step_length_mm"),
        stance_time=pl.col("stance_time_ms"),
        vertical_oscillation=pl.col("vertical_oscillation_mm"),
        temperature=pl.col("temperature_c").cast(pl.Int32),
    )


def lap_summary(samples: pl.DataFrame, *, labelled: bool, sample_interval_s: int) -> pl.DataFrame:
    """One row per lap: a lap per workout step when labelled, else an auto-lap every 1 km."""
    key = pl.col("step") if labelled else (pl.col("distance_m") // 1000).cast(pl.Int32)
    gap = pl.col("t_s").shift(-1) - pl.col("t_s")
    steps_per_stride = 0.5
    laps = (
        samples.with_row_index("row")
        .with_columns(
            lap=key.rle_id(),
            timed_s=pl.when(gap <= sample_interval_s).then(gap).otherwise(0).fill_null(0),
            climb=pl.col("altitude_m").rolling_mean(15, min_samples=1).diff().fill_null(0.0),
        )
        .group_by("lap", maintain_order=True)
        .agg(
            first_row=pl.col("row").first(),
            last_row=pl.col("row").last(),
            step=pl.col("step").first(),
            start_t=pl.col("t_s").first(),
            start_distance=pl.col("distance_m").first(),
            timer_s=pl.col("timed_s").sum(),
            start_lat=pl.col("lat_deg").first(),
            start_lon=pl.col("lon_deg").first(),
            end_lat=pl.col("lat_deg").last(),
            end_lon=pl.col("lon_deg").last(),
            max_speed=pl.col("speed_mps").max(),
            avg_hr=pl.col("heart_rate_bpm").mean(),
            max_hr=pl.col("heart_rate_bpm").max(),
            avg_strides=pl.col("cadence_spm").filter(pl.col("cadence_spm") > 0).mean() * steps_per_stride,
            max_strides=pl.col("cadence_spm").max() * steps_per_stride,
            ascent=pl.col("climb").clip(lower_bound=0).sum(),
            descent=-pl.col("climb").clip(upper_bound=0).sum(),
        )
    )
    last_t, last_distance = samples["t_s"][-1], samples["distance_m"][-1]
    return laps.with_columns(
        end_t=pl.col("start_t").shift(-1).fill_null(last_t),
        distance_m=pl.col("start_distance").shift(-1).fill_null(last_distance) - pl.col("start_distance"),
    ).with_columns(timer_s=pl.col("timer_s").cast(pl.Float64))


def _lap_message(lap: dict, plan: SessionPlan, start: int, device: Device, *, final: bool) -> dict:
    timer = lap["timer_s"]
    message = {
        "message_index": lap["lap"],
        "timestamp": start + lap["end_t"],
        "event": "lap",
        "event_type": "stop",
        "start_time": start + lap["start_t"],
        "start_position_lat": _semicircles(lap["start_lat"]),
        "start_position_long": _semicircles(lap["start_lon"]),
        "end_position_lat": _semicircles(lap["end_lat"]),
        "end_position_long": _semicircles(lap["end_lon"]),
        "total_elapsed_time": float(lap["end_t"] - lap["start_t"]),
        "total_timer_time": timer,
        "total_distance": lap["distance_m"],
        **_speed_fields(lap["distance_m"] / timer if timer else 0.0, lap["max_speed"], device),
        **_effort_fields(lap),
        "sport": plan.sport,
        "sub_sport": "generic",
        "lap_trigger": "session_end" if final else "time" if plan.steps else "distance",
    }
    if plan.steps:
        message["intensity"] = plan.steps[lap["step"]].intensity
        message["wkt_step_index"] = lap["step"]
    else:
        message["intensity"] = "active"
    return message


def _session_message(
    samples: pl.DataFrame, laps: pl.DataFrame, plan: SessionPlan, start: int, end: int, timer_s: float, device: Device
) -> dict:
    distance = float(samples["distance_m"][-1])
    totals = {
        "avg_hr": samples["heart_rate_bpm"].mean(),
        "max_hr": samples["heart_rate_bpm"].max(),
        "avg_strides": samples["cadence_spm"].filter(samples["cadence_spm"] > 0).mean() / 2.0,
        "max_strides": samples["cadence_spm"].max() / 2.0,
        "ascent": laps["ascent"].sum(),
        "descent": laps["descent"].sum(),
    }
    return {
        "message_index": 0,
        "timestamp": end,
        "event": "session",
        "event_type": "stop",
        "start_time": start,
        "start_position_lat": _semicircles(samples["lat_deg"][0]),
        "start_position_long": _semicircles(samples["lon_deg"][0]),
        "sport": plan.sport,
        "sub_sport": "generic",
        "total_elapsed_time": float(end - start),
        "total_timer_time": timer_s,
        "total_distance": distance,
        **_speed_fields(distance / timer_s if timer_s else 0.0, samples["speed_mps"].max(), device),
        **_effort_fields(totals),
        "first_lap_index": 0,
        "num_laps": laps.height,
        "trigger": "activity_end",
    }


def _speed_fields(avg: float, peak: float, device: Device) -> dict:
    fields = {"avg_speed": avg, "max_speed": peak}
    if not device.legacy_speed_fields:
        fields |= {"enhanced_avg_speed": avg, "enhanced_max_speed": peak}
    return fields


def _effort_fields(summary: dict) -> dict:
    """Heart rate, cadence (strides/min + 1/128 fraction) and climb of a lap or session."""
    fields = {
        "avg_heart_rate": _rounded(summary["avg_hr"]),
        "max_heart_rate": _rounded(summary["max_hr"]),
        "total_ascent": _rounded(summary["ascent"]),
        "total_descent": _rounded(summary["descent"]),
    }
    for name, value in (("avg", summary["avg_strides"]), ("max", summary["max_strides"])):
        if value is not None:
            whole = int(value)
            fields[f"{name}_cadence"] = whole
            fields[f"{name}_fractional_cadence"] = round((value - whole) * 128) / 128
    return fields


def _rounded(value: float | None) -> int | None:
    return None if value is None else int(round(value))


def _semicircles(deg: float) -> int:
    return int(round(deg * SEMICIRCLES_PER_DEG))


def _timer_event(timestamp: int, event_type: str, *, auto: bool) -> dict:
    # `data` carries the timer_trigger sub-field: 0 manual, 1 auto.
    return {"timestamp": timestamp, "event": "timer", "event_type": event_type, "data": int(auto), "event_group": 0}


def _write_devices(enc: Encoder, device: Device, start: int) -> None:
    enc.on_mesg(
        MESG["DEVICE_INFO"],
        {
            "timestamp": start,
            "device_index": 0,
            "manufacturer": "garmin",
            "product": device.garmin_product,
            "serial_number": device.serial_number,
            "software_version": SOFTWARE_VERSION,
            "source_type": "local",
        },
    )
    if device.running_dynamics:
        enc.on_mesg(
            MESG["DEVICE_INFO"],
            {
                "timestamp": start,
                "device_index": 1,
                "device_type": 120,
                "manufacturer": "garmin",  # 120: heart_rate
                "product": HRM_PRO,
                "serial_number": device.serial_number % 1_000_000 + 7,
                "software_version": 13.1,
                "source_type": "antplus",
            },
        )


def _write_workout(enc: Encoder, plan: SessionPlan) -> None:
    """The structured workout the watch ran: laps point at these steps by `wkt_step_index`."""
    enc.on_mesg(
        MESG["WORKOUT"],
        {"wkt_name": plan.name, "sport": plan.sport, "sub_sport": "generic", "num_valid_steps": len(plan.steps)},
    )
    for index, step in enumerate(plan.steps):
        enc.on_mesg(
            MESG["WORKOUT_STEP"],
            {
                "message_index": index,
                "wkt_step_name": step.name,
                "duration_type": "time",
                "duration_value": step.duration_s * 1000,  # duration_time sub-field, in ms
                "target_type": "open",
                "intensity": step.intensity,
            },
        )


def write_weight(path: Path, athlete: Athlete, reading: dict) -> None:
    """One weight-scale reading (`file_id.type = weight`): user profile and a `weight_scale` message."""
    when = fit_time(reading["ts"])
    enc = CachingEncoder()
    enc.on_mesg(
        MESG["FILE_ID"],
        {
            "type": "weight",
            "manufacturer": "garmin",
            "product": SCALE.garmin_product,
            "serial_number": SCALE.serial_number,
            "time_created": when,
        },
    )
    enc.on_mesg(
        MESG["USER_PROFILE"],
        {
            "message_index": 0,
            "gender": athlete.sex,
            "age": reading["ts"].year - athlete.birth_year,
            "height": athlete.height_cm / 100.0,
        },
    )
    enc.on_mesg(
        MESG["WEIGHT_SCALE"],
        {
            "timestamp": when,
            "weight": reading["weight_kg"],
            "percent_fat": reading["body_fat_pct"],
            "percent_hydration": reading["body_water_pct"],
            "bone_mass": reading["bone_mass_kg"],
            "muscle_mass": reading["muscle_mass_kg"],
            "bmi": reading["bmi"],
            "user_profile_index": 0,
        },
    )
    path.write_bytes(enc.close())
