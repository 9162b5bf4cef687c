"""TCX (Garmin Training Center) files through the standard library's XML behind defusedxml.

One activity per `<Activity>` (also each leg of a `<MultiSportSession>`), one lap per `<Lap>`, one record per `<Trackpoint>`.  The XML is
streamed with DTDs, entities and external references forbidden, so a hostile file is refused, not
expanded: each trackpoint is read and dropped, its values kept 50,000 at a time as typed frames, so
memory holds the frames, not the document.  Running cadence (`<Cadence>`, or `RunCadence` in
Garmin's extension) is strides/min: doubled.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from xml.etree.ElementTree import Element

import polars as pl

from retrostride.connectors.fit_canonical import FOOT_SPORTS
from retrostride.connectors.untrusted_xml import untrusted_events
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


#: Trackpoints turned into a typed frame at a time.
POINT_CHUNK = 50_000


def decode_tcx(path: Path) -> DecodedFile:
    """Decode a TCX file's activities into canonical frames, streaming through it."""
    activities, laps, chunks, points = [], [], [], []
    path_names: list[str] = []  # local names of the open elements below the root
    parents: list[Element] = []
    for event, element in untrusted_events(Path(path), "TCX"):
        if event == "start":
            if not parents and _local(element.tag) != "TrainingCenterDatabase":
                raise DecodeError(f"invalid TCX: root element is <{_local(element.tag)}>, not <TrainingCenterDatabase>")
            if parents:
                path_names.append(_local(element.tag))
            parents.append(element)
            continue
        parents.pop()
        name = path_names.pop() if path_names else None
        if (
            name == "Trackpoint"
            and path_names[:1] == ["Activities"]
            and path_names[-3:] == ["Activity", "Lap", "Track"]
        ):
            points.append({"session": len(activities), **{c: _text(element, f) for f, c in POINT_FIELDS.items()}})
            parents[-1].remove(element)
            if len(points) == POINT_CHUNK:
                chunks.append(_typed(points))
                points = []
        elif (
            name == "Activity" and path_names[:1] == ["Activities"] and "Activity" not in path_names
        ):  # a multisport leg too
            session = len(activities)
            activities.append(_activity_row(session, element))
            laps.extend(_lap_row(session, index, lap) for index, lap in enumerate(_children(element, "Lap")))
            parents[-1].remove(element)
    if points:
        chunks.append(_typed(points))
    records = _records(chunks, activities)
    return DecodedFile(
        format="tcx",
        decoder=DECODER,
        decoder_version=DECODER_VERSION,
        activities=_activities(activities, records),
        records=records,
        laps=_laps(laps),
    )


def _activity_row(session: int, activity: Element) -> dict:
    sport = (activity.get("Sport") or "").strip().lower()
    activity_laps = _children(activity, "Lap")
    return {
        "session": session,
        "sport": SPORT_NAMES.get(sport, sport or None),
        "description": _text(activity, "Notes"),
        "device": _text(activity, "Creator/Name"),
        "start_ts": _text(activity, "Id"),
        "calories_kcal": sum(float(c) for lap in activity_laps if (c := _text(lap, "Calories")))
        if activity_laps
        else None,
    }


def _lap_row(session: int, index: int, lap: Element) -> dict:
    return {
        "session": session,
        "lap_index": index,
        "start_ts": lap.get("StartTime"),
        "distance_m": _text(lap, "DistanceMeters"),
        "intensity": _text(lap, "Intensity"),
        "trigger": _text(lap, "TriggerMethod"),
        "_elapsed_s": _text(lap, "TotalTimeSeconds"),
    }


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


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


def _typed(points: list[dict]) -> pl.DataFrame:
    """Trackpoint rows as a frame of typed columns (unreadable values null)."""
    raw = pl.DataFrame(points, schema={"session": pl.Int32, **{c: pl.String for c in POINT_FIELDS.values()}})
    return raw.with_columns(
        pl.col("ts").str.to_datetime(time_unit="us", time_zone="UTC", strict=False), *_floats(raw, ("session", "ts"))
    )


def _records(chunks: list[pl.DataFrame], activities: list[dict]) -> pl.DataFrame:
    if not chunks:
        return pl.DataFrame(schema=FILE_RECORDS)
    frame = pl.concat(chunks) if len(chunks) > 1 else chunks[0]
    foot = [a["session"] for a in activities if a["sport"] is None or a["sport"] in FOOT_SPORTS]
    cadence = pl.coalesce("_run_cadence", "cadence_spm")
    frame = frame.with_columns(
        pl.when(pl.col("session").is_in(foot)).then(cadence * 2.0).otherwise(pl.col("cadence_spm")).alias("cadence_spm")
    )
    return with_derived_motion(conform(frame, FILE_RECORDS))


def _activities(activities: list[dict], records: pl.DataFrame) -> pl.DataFrame:
    if not activities:
        return pl.DataFrame(schema=FILE_ACTIVITIES)
    bounds = records.group_by("session").agg(
        pl.col("ts").min().alias("_first"),
        (pl.col("ts").max() - pl.col("ts").min()).dt.total_microseconds().truediv(1e6).alias("total_elapsed_s"),
        pl.col("distance_m").max().alias("total_distance_m"),
    )
    frame = pl.DataFrame(activities, schema_overrides={"session": pl.Int32, "start_ts": pl.String}).join(
        bounds, on="session", how="left"
    )
    frame = frame.with_columns(
        pl.coalesce(pl.col("start_ts").str.to_datetime(time_unit="us", time_zone="UTC", strict=False), "_first").alias(
            "start_ts"
        )
    )
    return conform(frame.with_columns(pl.col("start_ts").cast(UTC_US)), FILE_ACTIVITIES)


def _laps(laps: list[dict]) -> pl.DataFrame:
    if not laps:
        return pl.DataFrame(schema=FILE_LAPS)
    frame = pl.DataFrame(
        laps,
        schema={
            "session": pl.Int32,
            "lap_index": pl.Int32,
            "start_ts": pl.String,
            "distance_m": pl.String,
            "intensity": pl.String,
            "trigger": pl.String,
            "_elapsed_s": pl.String,
        },
    )
    start = pl.col("start_ts").str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    return conform(
        frame.with_columns(
            start.alias("start_ts"),
            (
                start
                + pl.duration(microseconds=(pl.col("_elapsed_s").cast(pl.Float64, strict=False) * 1e6).cast(pl.Int64))
            ).alias("end_ts"),
            pl.col("distance_m").cast(pl.Float64, strict=False),
            pl.col("intensity").str.to_lowercase(),
            pl.col("trigger").str.to_lowercase(),
        ),
        FILE_LAPS,
    )
