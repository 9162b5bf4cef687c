"""Garmin Connect's data export: activity summaries and body weights from its JSON files.

The FIT files (`DI-Connect-Uploaded-Files/UploadedFiles_*.zip`, nested zips) go through the ordinary
decoders.  `*_summarizedActivities.json` names the activities: its rows are matched to FIT sessions
by start time, since the files are not named after activity ids.  Weights come from
`*userBioMetrics*.json` / `user_biometrics.json` (grams, `timestampGMT`).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from retrostride.warehouse.schema import FILE_BODY_MEASUREMENTS, UTC_US, DecodedFile, DecodeError, conform

DECODER = "garmin-json"
DECODER_VERSION = "1"

#: Garmin activity type keys → canonical sport (anything else is kept as Garmin spells it).
SPORTS = {
    "running": "running",
    "street_running": "running",
    "trail_running": "running",
    "treadmill_running": "running",
    "track_running": "running",
    "indoor_running": "running",
    "walking": "walking",
    "casual_walking": "walking",
    "speed_walking": "walking",
    "hiking": "hiking",
    "cycling": "cycling",
    "road_biking": "cycling",
    "mountain_biking": "cycling",
    "lap_swimming": "swimming",
    "open_water_swimming": "swimming",
}

SUMMARY_ROWS = pl.Schema(
    {
        "platform_activity_id": pl.String,
        "start_ts": UTC_US,
        "name": pl.String,
        "description": pl.String,
        "sport": pl.String,
        "calories_kcal": pl.Float64,
    }
)


def read_json(path: Path, what: str) -> object:
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DecodeError(f"{what} is not valid JSON: {error}") from None


def read_summaries(path: Path) -> pl.DataFrame:
    """The activities of a `*_summarizedActivities.json` file (SUMMARY_ROWS), by UTC start time."""
    payload = read_json(path, "Garmin summarized activities")
    chunks = payload if isinstance(payload, list) else [payload]
    rows = [
        row
        for chunk in chunks
        if isinstance(chunk, dict)
        for row in chunk.get("summarizedActivitiesExport") or []
        if isinstance(row, dict)
    ]
    if not rows:
        return pl.DataFrame(schema=SUMMARY_ROWS)
    frame = pl.DataFrame(
        [
            {
                "platform_activity_id": str(r["activityId"]) if r.get("activityId") is not None else None,
                "start_ms": r.get("beginTimestamp") or r.get("startTimeGmt"),
                "name": r.get("name"),
                "description": r.get("description"),
                "sport": (r.get("activityType") or r.get("sportType") or None),
                "calories_kcal": r.get("calories"),
            }
            for r in rows
        ],
        schema_overrides={"start_ms": pl.Float64, "calories_kcal": pl.Float64},
        strict=False,
    )
    return conform(
        frame.with_columns(
            pl.from_epoch(pl.col("start_ms").cast(pl.Int64), time_unit="ms")
            .dt.replace_time_zone("UTC")
            .alias("start_ts"),
            pl.col("sport").str.to_lowercase().replace(SPORTS),
        ),
        SUMMARY_ROWS,
    )


def decode_biometrics(path: Path) -> DecodedFile:
    """Weights (and body fat, where present) from a Garmin biometrics file, as body measurements."""
    payload = read_json(path, "Garmin biometrics")
    rows = [_weight_row(entry) for entry in _dicts(payload)]
    rows = [r for r in rows if r is not None]
    frame = pl.DataFrame(
        rows, schema={"when": pl.String, "grams": pl.Float64, "body_fat_pct": pl.Float64}, strict=False
    )
    when = pl.col("when")
    ts = pl.coalesce(
        when.str.to_datetime(time_unit="us", time_zone="UTC", strict=False),
        pl.from_epoch(when.cast(pl.Int64, strict=False), time_unit="ms").dt.replace_time_zone("UTC"),
    )
    frame = frame.select(ts.alias("ts"), (pl.col("grams") / 1000.0).alias("weight_kg"), "body_fat_pct")
    frame = frame.filter(pl.col("ts").is_not_null(), pl.col("weight_kg") > 0).unique(["ts"], keep="first").sort("ts")
    return DecodedFile(
        format="garmin",
        decoder=DECODER,
        decoder_version=DECODER_VERSION,
        body_measurements=conform(frame, FILE_BODY_MEASUREMENTS),
    )


def _dicts(node: object):
    """Every JSON object in `node`, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _dicts(value)


def _weight_row(entry: dict) -> dict | None:
    """A weight reading if `entry` is one: a numeric `weight` (grams) beside `timestampGMT`."""
    weight = entry.get("weight")
    when = entry.get("timestampGMT") or entry.get("timestampGmt") or entry.get("timestamp")
    if not isinstance(weight, (int, float)) or when is None:
        return None
    fat = entry.get("bodyFat")
    return {"when": str(when), "grams": float(weight), "body_fat_pct": fat if isinstance(fat, (int, float)) else None}
