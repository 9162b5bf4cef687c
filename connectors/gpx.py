"""GPX files through gpxpy: one activity per track, one lap per track segment.

The XML is first checked by defusedxml (no DTDs, no entities) so a hostile file is refused before
gpxpy sees it.  Heart rate, cadence, temperature and power come from Garmin's TrackPointExtension
and common power extensions; GPX cadence holds strides/min for running (Garmin's convention).
"""

from __future__ import annotations

from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import defusedxml.ElementTree as safe_xml
import gpxpy
import gpxpy.gpx
import polars as pl
from defusedxml import DefusedXmlException

from connectors.fit_canonical import FOOT_SPORTS
from connectors.motion import with_derived_motion
from connectors.schema import FILE_ACTIVITIES, FILE_LAPS, FILE_RECORDS, UTC_US, DecodedFile, DecodeError, conform

DECODER = "gpxpy"
DECODER_VERSION = version("gpxpy")

#: Extension element local names → canonical record column.
EXTENSION_FIELDS = {"hr": "heart_rate_bpm", "cad": "cadence_spm", "atemp": "temperature_c", "power": "power_w", "speed": "speed_mps"}
SPORT_NAMES = {"run": "running", "walk": "walking", "hike": "hiking", "ride": "cycling", "biking": "cycling", "swim": "swimming"}


def decode_gpx(path: Path) -> DecodedFile:
    """Decode a GPX file's tracks into canonical frames."""
    gpx = _parse(Path(path).read_bytes())
    sport = _sport(gpx)
    points, laps, activities = [], [], []
    for session, track in enumerate(gpx.tracks):
        rows = [_point_row(session, p) for segment in track.segments for p in segment.points]
        if not rows:
            continue
        points.extend(rows)
        activities.append({"session": session, "sport": _sport(track) or sport, "name": track.name or gpx.name,
                           "description": track.description or gpx.description, "device": gpx.creator})
        laps.extend(_segment_laps(session, track))
    records = _records(points, activities)
    return DecodedFile(
        format="gpx",
        decoder=DECODER,
        decoder_version=DECODER_VERSION,
        activities=_activities(activities, records),
        records=records,
        laps=conform(pl.DataFrame(laps, schema_overrides=dict(FILE_LAPS), strict=False), FILE_LAPS) if laps else pl.DataFrame(schema=FILE_LAPS),
    )


def _parse(data: bytes) -> gpxpy.gpx.GPX:
    try:
        safe_xml.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise DecodeError(f"GPX refused: {type(error).__name__} (DTDs and entities are not allowed)") from None
    except safe_xml.ParseError as error:
        line, column = getattr(error, "position", (None, None))
        raise DecodeError(f"GPX is not well-formed XML: error at line {line}, column {column}") from None
    except (LookupError, ValueError) as error:  # an unknown encoding declared, bytes it cannot decode
        raise DecodeError(f"GPX is not well-formed XML: {type(error).__name__}: {error}") from None
    try:
        return gpxpy.parse(data.decode("utf-8-sig", errors="replace"))
    except gpxpy.gpx.GPXException as error:
        raise DecodeError(f"invalid GPX: {error}") from None
    except (ArithmeticError, AttributeError, LookupError, TypeError, ValueError) as error:  # gpxpy on odd values
        raise DecodeError(f"invalid GPX: {type(error).__name__}: {error}") from None


def _sport(item) -> str | None:
    kind = (getattr(item, "type", None) or "").strip().lower()
    return SPORT_NAMES.get(kind, kind) or None


def _point_row(session: int, point: gpxpy.gpx.GPXTrackPoint) -> dict:
    row = {
        "session": session,
        "ts": _utc_naive(point.time),
        "lat_deg": point.latitude,
        "lon_deg": point.longitude,
        "altitude_m": point.elevation,
        "speed_mps": point.speed,
    }
    for extension in point.extensions:
        for element in extension.iter():
            column = EXTENSION_FIELDS.get(element.tag.rsplit("}", 1)[-1].lower())
            if column and element.text and element.text.strip():
                row[column] = element.text.strip()
    return row


def _utc_naive(moment: datetime | None) -> datetime | None:
    """A point's time as naive UTC; None when its offset is impossible (e.g. +25:00) or out of range."""
    if moment is None or moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return None


def _segment_laps(session: int, track: gpxpy.gpx.GPXTrack) -> list[dict]:
    if len(track.segments) < 2:
        return []
    laps = []
    for index, segment in enumerate(track.segments):
        start, end = segment.get_time_bounds()
        laps.append({"session": session, "lap_index": index, "start_ts": start, "end_ts": end,
                     "distance_m": _length_m(segment)})
    return laps


def _length_m(segment: gpxpy.gpx.GPXTrackSegment) -> float | None:
    """The segment's 2-D length; None when a position is off the globe (gpxpy's trigonometry fails)."""
    try:
        return segment.length_2d()
    except (ArithmeticError, ValueError):
        return None


def _records(points: list[dict], activities: list[dict]) -> pl.DataFrame:
    if not points:
        return pl.DataFrame(schema=FILE_RECORDS)
    raw = pl.DataFrame(points, infer_schema_length=None, strict=False)
    frame = raw.with_columns(
        pl.col("ts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        *(pl.col(c).cast(pl.Float64, strict=False) for c in raw.columns if c not in ("session", "ts")),
    )
    frame = conform(frame, FILE_RECORDS)
    foot = [a["session"] for a in activities if a["sport"] is None or a["sport"] in FOOT_SPORTS]
    frame = frame.with_columns(
        pl.when(pl.col("session").is_in(foot)).then(pl.col("cadence_spm") * 2.0).alias("cadence_spm")
    )
    return with_derived_motion(frame)


def _activities(activities: list[dict], records: pl.DataFrame) -> pl.DataFrame:
    if not activities:
        return pl.DataFrame(schema=FILE_ACTIVITIES)
    bounds = records.group_by("session").agg(
        pl.col("ts").min().alias("start_ts"),
        (pl.col("ts").max() - pl.col("ts").min()).dt.total_microseconds().truediv(1e6).alias("total_elapsed_s"),
        pl.col("distance_m").max().alias("total_distance_m"),
    )
    frame = pl.DataFrame(activities, schema_overrides={"session": pl.Int32}).join(bounds, on="session", how="left")
    return conform(frame.with_columns(pl.col("start_ts").cast(UTC_US)), FILE_ACTIVITIES)
