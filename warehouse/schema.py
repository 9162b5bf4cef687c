"""The canonical frames every decoder returns (DESIGN §4), declared once.

Decoders fill the *file-level* frames, keyed by `session` (the activity's index inside the file).
The ingest step adds `activity_id`, `athlete_id` and `source_sha256` to make the warehouse frames.
Missing values are null, never 0.  Times are UTC with microsecond precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import polars as pl

UTC_US = pl.Datetime("us", "UTC")

#: One row per sample; the measure columns of DESIGN §4.
RECORD_MEASURES: dict[str, pl.DataType] = {
    "lat_deg": pl.Float64,
    "lon_deg": pl.Float64,
    "altitude_m": pl.Float64,
    "distance_m": pl.Float64,
    "speed_mps": pl.Float64,
    "heart_rate_bpm": pl.Float64,
    "cadence_spm": pl.Float64,  # steps/min (FIT running cadence is strides/min: doubled)
    "power_w": pl.Float64,
    "step_length_m": pl.Float64,
    "stance_time_ms": pl.Float64,
    "vertical_oscillation_mm": pl.Float64,
    "facing_deg": pl.Float64,  # body/device facing from a magnetometer or compass
    "temperature_c": pl.Float64,
}

FILE_RECORDS = pl.Schema({"session": pl.Int32, "ts": UTC_US, **RECORD_MEASURES})

#: What an activity is called and what recorded it.
ACTIVITY_LABELS: dict[str, pl.DataType] = {
    "sport": pl.String,
    "sub_sport": pl.String,
    "name": pl.String,
    "description": pl.String,
    "device": pl.String,
}

#: What a platform export (Strava, Garmin Connect) says about an activity beyond its file.
PLATFORM_FIELDS: dict[str, pl.DataType] = {
    "calories_kcal": pl.Float64,  # as the platform reports it
    "platform": pl.String,  # strava | garmin (null: a file from a watch or folder)
    "platform_activity_id": pl.String,  # the platform's own id, for matching across sources
}

FILE_ACTIVITIES = pl.Schema(
    {
        "session": pl.Int32,
        **ACTIVITY_LABELS,
        "start_ts": UTC_US,
        "local_start_ts": pl.Datetime("us"),  # local wall-clock time, naive
        "utc_offset_s": pl.Int32,
        "utc_offset_source": pl.String,  # device_activity | athlete_zone | utc_assumed (null: not yet known)
        "total_elapsed_s": pl.Float64,  # as reported by the file, when it says so
        "total_timer_s": pl.Float64,
        "total_distance_m": pl.Float64,
        **PLATFORM_FIELDS,
    }
)

FILE_LAPS = pl.Schema(
    {
        "session": pl.Int32,
        "lap_index": pl.Int32,
        "name": pl.String,  # workout-step name, lap label or GPX segment name
        "start_ts": UTC_US,
        "end_ts": UTC_US,
        "distance_m": pl.Float64,
        "intensity": pl.String,
        "trigger": pl.String,
        "wkt_step_index": pl.Int32,
    }
)

FILE_BODY_MEASUREMENTS = pl.Schema(
    {
        "ts": UTC_US,
        "weight_kg": pl.Float64,
        "body_fat_pct": pl.Float64,
        "body_water_pct": pl.Float64,
        "muscle_mass_kg": pl.Float64,
        "bone_mass_kg": pl.Float64,
        "bmi": pl.Float64,
        "user_profile_index": pl.Int32,  # several people on one scale
    }
)

#: Strava's privacy zones (address, radius, centre), kept for whoever masks positions later.
FILE_PRIVACY_ZONES = pl.Schema(
    {"address": pl.String, "radius_m": pl.Float64, "lat_deg": pl.Float64, "lon_deg": pl.Float64}
)

_IDS = {"activity_id": pl.String, "athlete_id": pl.String}

#: Warehouse frames (stable names: add columns freely, rename none).
RECORDS = pl.Schema({**_IDS, "ts": UTC_US, **RECORD_MEASURES})

ACTIVITIES = pl.Schema(
    {
        **_IDS,
        "source": pl.String,  # file format: fit, gpx, tcx
        **ACTIVITY_LABELS,
        "start_ts": UTC_US,
        "end_ts": UTC_US,
        "start_day": pl.Date,  # partition key: UTC date of start_ts
        "local_start_ts": pl.Datetime("us"),
        "local_day": pl.Date,
        "utc_offset_s": pl.Int32,
        "utc_offset_source": pl.String,
        "duration_s": pl.Float64,
        "moving_time_s": pl.Float64,
        "distance_m": pl.Float64,
        "elevation_gain_m": pl.Float64,
        "records": pl.Int64,
        "session": pl.Int32,
        "source_sha256": pl.String,
        "duplicate_of": pl.String,  # the canonical activity this one repeats (another file or source), else null
        **PLATFORM_FIELDS,
        "activity_type": pl.String,  # running | walking | hiking | cycling | swimming | other | unknown
        "activity_type_basis": pl.String,  # the file's sport, or the evidence it was told from, or why it could not be
    }
)

#: Per-activity frames carry their activity's athlete last (the column came after the others: migrated
#: homes and new ones have the same column order), so the warehouse writes and deletes them by athlete.
LAPS = pl.Schema(
    {"activity_id": pl.String, **{k: v for k, v in FILE_LAPS.items() if k != "session"}, "athlete_id": pl.String}
)

#: Values of FIT developer fields (Stryd, Connect IQ apps, running-dynamics pods), one row per value.
FILE_DEVELOPER_FIELDS = pl.Schema(
    {
        "session": pl.Int32,
        "ts": UTC_US,
        "developer_app": pl.String,  # the app's id (developer_data_id.application_id as a UUID), else "developer <n>"
        "field": pl.String,  # the field's name, as its field_description gives it
        "units": pl.String,
        "value": pl.Float64,
    }
)
DEVELOPER_FIELDS = pl.Schema(
    {
        "activity_id": pl.String,
        **{k: v for k, v in FILE_DEVELOPER_FIELDS.items() if k != "session"},
        "athlete_id": pl.String,
    }
)

BODY_MEASUREMENTS = pl.Schema(
    {"athlete_id": pl.String, **FILE_BODY_MEASUREMENTS, "source": pl.String, "source_sha256": pl.String}
)

#: The lake frame of an export's privacy zones (connectors/privacy.py masks with them when publishing).
EXPORT_PRIVACY_ZONES = pl.Schema({"athlete_id": pl.String, **FILE_PRIVACY_ZONES, "source_sha256": pl.String})

#: Zones positions are masked in (profiles and exports): one row per zone: whose it is, where, and how far around it positions are hidden.
PRIVACY_ZONES = pl.Schema(
    {"athlete_id": pl.String, "lat_deg": pl.Float64, "lon_deg": pl.Float64, "radius_m": pl.Float64, "source": pl.String}
)


#: Stable columns of the segments frame (energy adds kcal_net and kcal_gross).
SEGMENTS = pl.Schema(
    {
        "activity_id": pl.String,
        "athlete_id": pl.String,
        "segment_index": pl.Int32,
        "direction": pl.String,  # forward | backward | unknown
        "gait": pl.String,  # run | walk | unknown
        "start_ts": UTC_US,
        "end_ts": UTC_US,
        "duration_s": pl.Float64,
        "distance_m": pl.Float64,
        "mean_speed_mps": pl.Float64,
        "mean_cadence_spm": pl.Float64,
        "evidence": pl.String,  # facing, label, gait joined by '+', or 'none'
        "confidence": pl.Float64,  # 0..1, for the direction stated
        "model_version": pl.String,
    }
)

#: The warehouse `segments` table: detected segments with their time in motion, climb and energy.
SEGMENT_TABLE = pl.Schema(
    {
        **{k: v for k, v in SEGMENTS.items() if k != "model_version"},
        "moving_time_s": pl.Float64,  # speed >= 0.5 m/s, gaps <= 30 s (as activities.moving_time_s)
        "elevation_gain_m": pl.Float64,
        "kcal_net": pl.Float64,
        "kcal_gross": pl.Float64,
        "kcal_acsm": pl.Float64,
        "kcal_hr": pl.Float64,
        "energy_low_confidence": pl.Boolean,  # backward walking or downhill: no measured multiplier
        "model_version": pl.String,  # detection version + energy version
    }
)

#: The warehouse `activity_energy` table: one row per activity.
ACTIVITY_ENERGY = pl.Schema(
    {
        "activity_id": pl.String,
        "athlete_id": pl.String,
        "kcal_net": pl.Float64,
        "kcal_gross": pl.Float64,
        "kcal_backward": pl.Float64,  # net kcal on backward segments
        "kcal_acsm": pl.Float64,  # gross, ACSM equations
        "kcal_hr": pl.Float64,  # Keytel 2005, over the samples where heart rate is valid
        "hr_valid_s": pl.Float64,  # the time kcal_hr covers
        "distance_m": pl.Float64,
        "backward_distance_m": pl.Float64,
        "backward_s": pl.Float64,
        "kcal_net_per_kg_km": pl.Float64,
        "mean_abs_grade": pl.Float64,  # distance-weighted
        "mass_kg": pl.Float64,
        "mass_source": pl.String,
        "model_version": pl.String,
    }
)


#: The warehouse `activity_detection` table: why each activity's segments say what they say.
ACTIVITY_DETECTION = pl.Schema(
    {
        "activity_id": pl.String,
        "athlete_id": pl.String,
        "detection_status": pl.String,  # scored | scored_with_prior | not_on_foot | no_records | too_short | ...
        "baseline_basis": pl.String,  # own | blended | prior (scored activities), else null
        "baseline_runs": pl.Int32,  # the athlete's runs the baseline rests on (scored activities)
        "model_version": pl.String,
    }
)


#: The warehouse `gait_baselines` table: each athlete's forward gait, ln L = a + b·ln v.
BASELINES = pl.Schema(
    {
        "athlete_id": pl.String,
        "intercept": pl.Float64,  # a in ln L = a + b·ln v (L in m, v in m/s)
        "slope": pl.Float64,  # b
        "speed_min_mps": pl.Float64,  # coverage: speeds with enough inlier samples
        "speed_max_mps": pl.Float64,
        "runs": pl.UInt32,
        "samples": pl.UInt32,
        "residual_sd": pl.Float64,  # robust s.d. of ln L residuals (per-run speed-bin medians)
        "inlier_share": pl.Float64,  # share of training samples the robust fit kept
        "r_squared": pl.Float64,  # weighted, on inliers
        "intercept_sd": pl.Float64,  # uncertainty of the level a (ln L): 0 for an own fit, else the prior's blend
        "basis": pl.String,  # own (>= baseline_min_runs runs) | blended (prior moved towards fewer runs) | prior
        "model_version": pl.String,
        "inputs_sha256": pl.String,  # digest of the runs fit on (ids, names, sports): refit when it changes
    }
)


def empty(schema: pl.Schema) -> pl.DataFrame:
    """An empty frame with `schema`."""
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Cast `frame` to `schema`: missing columns become null, extra columns are dropped."""
    return frame.select(
        (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in schema.items()
    )


Status = Literal["ok", "partial"]


@dataclass(frozen=True)
class DecodedFile:
    """What a decoder made of one file: canonical frames plus how well it went."""

    format: str
    decoder: str
    decoder_version: str
    activities: pl.DataFrame = field(default_factory=lambda: empty(FILE_ACTIVITIES))
    records: pl.DataFrame = field(default_factory=lambda: empty(FILE_RECORDS))
    laps: pl.DataFrame = field(default_factory=lambda: empty(FILE_LAPS))
    developer_fields: pl.DataFrame = field(default_factory=lambda: empty(FILE_DEVELOPER_FIELDS))
    body_measurements: pl.DataFrame = field(default_factory=lambda: empty(FILE_BODY_MEASUREMENTS))
    privacy_zones: pl.DataFrame = field(default_factory=lambda: empty(FILE_PRIVACY_ZONES))
    status: Status = "ok"
    reason: str | None = None  # why the import is partial
    kind: str | None = None  # what the file says it is, when it does (a FIT file_id type: activity, settings, ...)
    notes: str | None = None  # how the decoder read what it had to read unusually (fallback, irregular fields)


class DecodeError(Exception):
    """A file that cannot be imported; the message is the ledger's reason."""


#: One row per (file content, path) the importer has seen.
LEDGER = pl.Schema(
    {
        "sha256": pl.String,
        "path": pl.String,
        "athlete_id": pl.String,
        "format": pl.String,
        "decoder": pl.String,
        "decoder_version": pl.String,
        "status": pl.String,  # ok | partial | failed | duplicate
        "reason": pl.String,  # why partial, failed or duplicate
        "notes": pl.String,  # what was cleaned or left unplaced in a file that decoded cleanly
        "records": pl.Int64,  # samples decoded, before any cleaning
        "activities": pl.Int32,
        "body_measurements": pl.Int32,
        "first_day": pl.Date,
        "last_day": pl.Date,
        "bytes": pl.Int64,
        "decode_s": pl.Float64,
        "imported_at": UTC_US,
        "lake_pack": pl.String,  # the lake pack holding the file's frames (warehouse.lake); null: none
        "published_snapshot": pl.Int64,  # the first warehouse snapshot readers saw the file's rows in; null: not yet
    }
)

#: Days whose activities were imported but not yet published (a run interrupted before publishing).
#: Days an import touched and publishing has not replaced yet, per athlete (a run publishes its athletes' own).
PENDING_DAYS = pl.Schema({"athlete_id": pl.String, "day": pl.Date})

#: One row per publish: the commit that adds it is the snapshot readers see (`warehouse.catalog.PUBLISHED`).
PUBLISHES = pl.Schema({"published_at": UTC_US, "files": pl.Int64})


#: Hex digits of a file's sha256 that start the ids of its activities.
_ID_HEX = 16


def activity_ids(sha256: pl.Expr) -> pl.Expr:
    """`<first 16 hex of the file's sha256>-<session>`: stable across re-imports."""
    return pl.concat_str(sha256.str.slice(0, _ID_HEX), pl.lit("-"), pl.col("session").cast(pl.String))


def activity_id_prefix(sha256: str) -> str:
    """What every `activity_ids` of the file `sha256` starts with."""
    return f"{sha256[:_ID_HEX]}-"


def in_time_order(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` sorted by activity and time: one comparison pass when it already is (a decoder's
    frame, or records a caller sorted earlier), a stable sort otherwise."""
    activity, ts = pl.col("activity_id"), pl.col("ts")
    step = (activity > activity.shift(1)) | ((activity == activity.shift(1)) & (ts >= ts.shift(1)))
    if frame.height < 2 or frame.select(step.slice(1).fill_null(False).all()).item():
        return frame
    return frame.sort("activity_id", "ts", maintain_order=True)  # stable: ties keep their order
