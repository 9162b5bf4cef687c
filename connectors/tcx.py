"""TCX (Garmin Training Center) files through the standard library's XML behind defusedxml.

One activity per `<Activity>` (also each leg of a `<MultiSportSession>`), one lap per `<Lap>`, one record per `<Trackpoint>`.  The XML is parsed
with DTDs, entities and external references forbidden, so a hostile file is refused, not expanded.
Running cadence (`<Cadence>`, or `RunCadence` in Garmin's extension) is strides/min: doubled.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as safe_xml
import polars as pl
from defusedxml import DefusedXmlException

from retrostride.connectors.fit_canonical import FOOT_SPORTS
from retrostride.warehouse.motion import with_derived_motion
from retrostride.warehouse.schema import (
    FILE_ACTIVITIES,
    FILE_LAPS,
    FILE_RECORDS,
    UTC_US,
    DecodedFile,
    DecodeError,
    conform,
)

DECODER = "defusedxml"
DECODER_VERSION = version("defusedxml")
SPORT_NAMES = {"running": "running", "biking": "cycling", "walking": "walking", "other": "other"}

#: Trackpoint child paths (local names, any namespace) → canonical record column.
POINT_FIELDS = {
    "Time": "ts",
    "Position/LatitudeDegrees": "lat_deg",
    "Position/LongitudeDegrees": "lon_deg",
    "AltitudeMeters": "altitude_m",
    "DistanceMeters": "distance_m",
    "HeartRateBpm/Value": "heart_rate_bpm",
    "Cadence": "cadence_spm",
    "Extensions/TPX/RunCadence": "_run_cadence",
    "Extensions/TPX/Speed": "speed_mps",
    "Extensions/TPX/Watts": "power_w",
}


def decode_tcx(path: Path) -> DecodedFile:
    """Decode a TCX file's activities into canonical frames."""
    root = parse_untrusted_xml(Path(path).read_bytes(), "TCX")
    if _local(root.tag) != "TrainingCenterDatabase":
        raise DecodeError(f"invalid TCX: root element is <{_local(root.tag)}>, not <TrainingCenterDatabase>")
    activities, laps, points = [], [], []
    for session, activity in enumerate(_activity_elements(root)):
        sport = (activity.get("Sport") or "").strip().lower()
        activity_laps = _children(activity, "Lap")
        activities.append({
            "session": session,
            "sport": SPORT_NAMES.get(sport, sport or None),
            "description": _text(activity, "Notes"),
            "device": _text(activity, "Creator/Name"),
            "start_ts": _text(activity, "Id"),
            "calories_kcal": sum(float(c) for lap in activity_laps if (c := _text(lap, "Calories"))) if activity_laps else None,
        })
        for index, lap in enumerate(activity_laps):
            laps.append({"session": session, "lap_index": index, "start_ts": lap.get("StartTime"),
                         "distance_m": _text(lap, "DistanceMeters"), "intensity": _text(lap, "Intensity"),
                         "trigger": _text(lap, "TriggerMethod"), "_elapsed_s": _text(lap, "TotalTimeSeconds")})
            points.extend({"session": session, **{c: _text(p, f) for f, c in POINT_FIELDS.items()}}
                          for p in _children(lap, "Track/Trackpoint"))
    records = _records(points, activities)
    return DecodedFile(format="tcx", decoder=DECODER, decoder_version=DECODER_VERSION,
                       activities=_activities(activities, records), records=records, laps=_laps(laps))


def parse_untrusted_xml(data: bytes, what: str) -> Element:
    """The root element of `data`, refusing DTDs, entities and external references."""
    try:
        return safe_xml.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise DecodeError(f"{what} refused: {type(error).__name__} (DTDs and entities are not allowed)") from None
    except safe_xml.ParseError as error:
        line, column = getattr(error, "position", (None, None))
        raise DecodeError(f"{what} is not well-formed XML: error at line {line}, column {column}") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _activity_elements(root: Element) -> list[Element]:
    """Every `<Activity>` in document order: under `<Activities>`, and the legs of a
    `<MultiSportSession>` (`FirstSport`, each `NextSport`)."""
    return [e for holder in _children(root, "Activities") for e in holder.iter() if _local(e.tag) == "Activity"]


def _children(element: Element, path: str) -> list[Element]:
    """Descendants along `path` of local names, whatever their namespaces."""
    found = [element]
    for name in path.split("/"):
        found = [child for parent in found for child in parent if _local(child.tag) == name]
    return found


def _text(element: Element, path: str) -> str | None:
    found = _children(element, path)
    text = found[0].text if found else None
    return text.strip() if text and text.strip() else None


def _floats(frame: pl.DataFrame, exclude: tuple[str, ...]) -> list[pl.Expr]:
    return [pl.col(c).cast(pl.Float64, strict=False) for c in frame.columns if c not in exclude]


def _records(points: list[dict], activities: list[dict]) -> pl.DataFrame:
    if not points:
        return pl.DataFrame(schema=FILE_RECORDS)
    raw = pl.DataFrame(points, schema={"session": pl.Int32, **{c: pl.String for c in POINT_FIELDS.values()}})
    foot = [a["session"] for a in activities if a["sport"] is None or a["sport"] in FOOT_SPORTS]
    frame = raw.with_columns(pl.col("ts").str.to_datetime(time_unit="us", time_zone="UTC", strict=False), *_floats(raw, ("session", "ts")))
    cadence = pl.coalesce("_run_cadence", "cadence_spm")
    frame = frame.with_columns(pl.when(pl.col("session").is_in(foot)).then(cadence * 2.0).otherwise(pl.col("cadence_spm")).alias("cadence_spm"))
    return with_derived_motion(conform(frame, FILE_RECORDS))


def _activities(activities: list[dict], records: pl.DataFrame) -> pl.DataFrame:
    if not activities:
        return pl.DataFrame(schema=FILE_ACTIVITIES)
    bounds = records.group_by("session").agg(
        pl.col("ts").min().alias("_first"),
        (pl.col("ts").max() - pl.col("ts").min()).dt.total_microseconds().truediv(1e6).alias("total_elapsed_s"),
        pl.col("distance_m").max().alias("total_distance_m"),
    )
    frame = pl.DataFrame(activities, schema_overrides={"session": pl.Int32, "start_ts": pl.String}).join(bounds, on="session", how="left")
    frame = frame.with_columns(
        pl.coalesce(pl.col("start_ts").str.to_datetime(time_unit="us", time_zone="UTC", strict=False), "_first").alias("start_ts")
    )
    return conform(frame.with_columns(pl.col("start_ts").cast(UTC_US)), FILE_ACTIVITIES)


def _laps(laps: list[dict]) -> pl.DataFrame:
    if not laps:
        return pl.DataFrame(schema=FILE_LAPS)
    frame = pl.DataFrame(laps, schema={"session": pl.Int32, "lap_index": pl.Int32, "start_ts": pl.String, "distance_m": pl.String,
                                        "intensity": pl.String, "trigger": pl.String, "_elapsed_s": pl.String})
    start = pl.col("start_ts").str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    return conform(frame.with_columns(
        start.alias("start_ts"),
        (start + pl.duration(microseconds=(pl.col("_elapsed_s").cast(pl.Float64, strict=False) * 1e6).cast(pl.Int64))).alias("end_ts"),
        pl.col("distance_m").cast(pl.Float64, strict=False),
        pl.col("intensity").str.to_lowercase(), pl.col("trigger").str.to_lowercase(),
    ), FILE_LAPS)
