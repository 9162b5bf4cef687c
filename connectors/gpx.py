"""GPX files: one activity per track, one lap per track segment.

The XML is first checked by defusedxml (no DTDs, no entities) so a hostile file is refused before
gpxpy sees it.  Heart rate, cadence, temperature and power come from Garmin's TrackPointExtension
and common power extensions; GPX cadence holds strides/min for running (Garmin's convention).

gpxpy is the reference decoder.  The common case (GPX 1.1 in UTF-8, tracks of points with elevation,
time and extensions) is read straight from the tree defusedxml already built (`read_tracks`), several
times faster; anything else goes through gpxpy, and the ledger's `decoder` says which one read the
file.  tests/test_gpx_fast_path.py checks that both give identical frames on every corpus GPX file,
generated runs and mutants of them.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import defusedxml.ElementTree as safe_xml
import gpxpy
import gpxpy.gpx
import gpxpy.gpxfield
import gpxpy.parser
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

DECODER = "gpxpy"
DECODER_VERSION = version("gpxpy")
#: The fast path borrows gpxpy's time parsing and lap geometry, hence both versions.
FAST_DECODER = "retrostride-gpx"
FAST_DECODER_VERSION = f"{version('retrostride')}+gpxpy{DECODER_VERSION}"

#: (point rows, activity rows, lap rows) of one file, as both readers make them.
Tracks = tuple[list[dict], list[dict], list[dict]]

#: Extension element local names → canonical record column.
EXTENSION_FIELDS = {"hr": "heart_rate_bpm", "cad": "cadence_spm", "atemp": "temperature_c", "power": "power_w", "speed": "speed_mps"}
SPORT_NAMES = {"run": "running", "walk": "walking", "hike": "hiking", "ride": "cycling", "biking": "cycling", "swim": "swimming"}


def decode_gpx(path: Path, *, reference: bool = False) -> DecodedFile:
    """Decode a GPX file's tracks into canonical frames (`reference`: always through gpxpy)."""
    data = Path(path).read_bytes()
    root = _checked_tree(data)
    read = None if reference else read_tracks(data, root)
    if read is None:
        read, decoder, decoder_version = _read_with_gpxpy(_parse(data)), DECODER, DECODER_VERSION
    else:
        decoder, decoder_version = FAST_DECODER, FAST_DECODER_VERSION
    points, activities, laps = read
    records = _records(points, activities)
    return DecodedFile(
        format="gpx",
        decoder=decoder,
        decoder_version=decoder_version,
        activities=_activities(activities, records),
        records=records,
        laps=conform(pl.DataFrame(laps, schema_overrides=dict(FILE_LAPS), strict=False), FILE_LAPS) if laps else pl.DataFrame(schema=FILE_LAPS),
    )


def _read_with_gpxpy(gpx: gpxpy.gpx.GPX) -> Tracks:
    """Point rows, activity rows and lap rows of a document gpxpy parsed."""
    sport = _sport(gpx)
    points, laps, activities = [], [], []
    for session, track in enumerate(gpx.tracks):
        rows = [_point_row(session, p) for segment in track.segments for p in segment.points]
        if not rows:
            continue
        points.extend(rows)
        activities.append(activity_row(session, _sport(track) or sport, track.name or gpx.name,
                                       track.description or gpx.description, gpx.creator))
        laps.extend(segment_laps(session, track.segments))
    return points, activities, laps


def _checked_tree(data: bytes):
    """The document's root element, parsed by defusedxml: DTDs and entities refused, bad XML explained."""
    try:
        return safe_xml.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise DecodeError(f"GPX refused: {type(error).__name__} (DTDs and entities are not allowed)") from None
    except safe_xml.ParseError as error:
        line, column = getattr(error, "position", (None, None))
        raise DecodeError(f"GPX is not well-formed XML: error at line {line}, column {column}") from None
    except (LookupError, ValueError) as error:  # an unknown encoding declared, bytes it cannot decode
        raise DecodeError(f"GPX is not well-formed XML: {type(error).__name__}: {error}") from None


def _parse(data: bytes) -> gpxpy.gpx.GPX:
    """gpxpy's document (the bytes have passed `_checked_tree`)."""
    try:
        return gpxpy.parse(data.decode("utf-8-sig", errors="replace"))
    except gpxpy.gpx.GPXException as error:
        raise DecodeError(f"invalid GPX: {error}") from None
    except (ArithmeticError, AttributeError, LookupError, TypeError, ValueError) as error:  # gpxpy on odd values
        raise DecodeError(f"invalid GPX: {type(error).__name__}: {error}") from None


# -- the fast path: gpxpy's reading of a GPX 1.1 document, from the tree defusedxml built -------------

GPX_11 = "http://www.topografix.com/GPX/1/1"
_NS = "{" + GPX_11 + "}"
#: gpxpy removes the first default namespace declaration from the text before parsing (its regex).
_GPXPY_DEFAULT_NS = re.compile(r"""\sxmlns=(['"])[^'"]+\1""")
#: What may come before that declaration for it to be the root's: an XML declaration, then `<gpx`.
_ROOT_START = re.compile(r"\A\s*(?:<\?xml[^<>]*\?>\s*)?<gpx(?:\s[^<>]*)?\Z")
_DECLARED_ENCODING = re.compile(rb"""\A(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*(['"])([^'"]*)\1""")
_GPX_11_BINDING = re.compile(r"""=\s*(['"])http://www\.topografix\.com/GPX/1/1\1""")
_NS_WITH_REFERENCE = re.compile(r"""xmlns[^=<>]*=\s*(['"])[^'"]*&""")
#: Children gpxpy converts (and may reject): their presence sends the file through gpxpy.
_CONVERTED_IN_ROOT = {"wpt", "rte"}
_CONVERTED_IN_METADATA = {"bounds"}
_CONVERTED_IN_TRACK = {"number"}
_CONVERTED_IN_POINT = {"magvar", "geoidheight", "fix", "sat", "hdop", "vdop", "pdop", "ageofdgpsdata", "dgpsid"}
_FAST_PATH_POSSIBLE = gpxpy.parser.library() == "STDLIB"  # gpxpy on lxml reads some documents differently


class _NotFast(Exception):
    """The document has something only gpxpy may decide about."""


def read_tracks(data: bytes, root) -> Tracks | None:
    """What `_read_with_gpxpy` makes of `data`, read from defusedxml's `root` of the same bytes; None
    when the document is one where that equivalence is not certain (then gpxpy reads it).

    gpxpy parses the UTF-8 text with its first `xmlns="..."` removed and finds GPX elements by their
    bare names.  For a UTF-8 document whose root alone binds the GPX 1.1 namespace, as its default,
    that is this tree with the namespace dropped from GPX element names; every value goes through
    the converter gpxpy would use.
    """
    if not _FAST_PATH_POSSIBLE or not _same_text_for_gpxpy(data) or root.tag != _NS + "gpx" or root.get("version") != "1.1":
        return None
    try:
        return _walk(root)
    except _NotFast:
        return None


def _same_text_for_gpxpy(data: bytes) -> bool:
    """Whether gpxpy's view of `data` is defusedxml's minus the root's default GPX 1.1 namespace."""
    declared = _DECLARED_ENCODING.match(data)
    if declared and declared.group(2).lower() != b"utf-8":
        return False
    try:
        text = data.decode("utf-8-sig")  # strict: gpxpy replaces what is not UTF-8
    except UnicodeDecodeError:
        return False
    first = _GPXPY_DEFAULT_NS.search(text)
    return bool(first and first.group(0).split("=", 1)[1][1:-1] == GPX_11 and _ROOT_START.match(text[: first.start()])
                and len(_GPX_11_BINDING.findall(text)) == 1 and not _NS_WITH_REFERENCE.search(text))


def _walk(root) -> Tracks:
    _check_children(root, _CONVERTED_IN_ROOT)
    metadata = _first(root, "metadata")
    if metadata is not None:
        _check_children(metadata, _CONVERTED_IN_METADATA)
    name, description, creator = _text(metadata, "name"), _text(metadata, "desc"), root.get("creator")
    points, laps, activities = [], [], []
    columns: dict[str, str | None] = {}  # extension tag → record column, as met
    for session, track in enumerate(e for e in root if e.tag == _NS + "trk"):
        _check_children(track, _CONVERTED_IN_TRACK)
        segments = []
        for segment in track:
            if segment.tag == _NS + "trkseg":
                _check_children(segment, set())
                segments.append([_point(p, columns) for p in segment if p.tag == _NS + "trkpt"])
        rows = [_row(session, point) for segment in segments for point in segment]
        if not rows:
            continue
        points.extend(rows)
        kind = _text(track, "type")
        sport = SPORT_NAMES.get(kind.strip().lower(), kind.strip().lower()) if kind else None
        activities.append(activity_row(session, sport or None, _text(track, "name") or name,
                                       _text(track, "desc") or description, creator))
        if len(segments) > 1:
            laps.extend(segment_laps(session, [_segment(s) for s in segments]))
    return points, activities, laps


def _point(element, columns: dict[str, str | None]) -> tuple:
    """(time text, latitude, longitude, elevation, extension values) of a `trkpt`, in one pass over its
    children: the first of each, as gpxpy's `find`; values converted as gpxpy does."""
    latitude, longitude = _number(element.get("lat"), mandatory=True), _number(element.get("lon"), mandatory=True)
    found: dict[str, object] = {}
    for child in element:
        tag = child.tag
        if not tag.startswith(_NS):
            if not tag.startswith("{"):
                raise _NotFast  # see _check_children
            continue
        name = tag[len(_NS):]
        if name in _CONVERTED_IN_POINT:
            raise _NotFast
        if name in ("ele", "time", "extensions") and name not in found:
            found[name] = child
    time, ele, extensions = found.get("time"), found.get("ele"), found.get("extensions")
    values: dict[str, str] = {}
    if extensions is not None:
        for extension in extensions:
            for item in extension.iter():
                if item.tag not in columns:
                    columns[item.tag] = EXTENSION_FIELDS.get(item.tag.rsplit("}", 1)[-1].lower())
                column = columns[item.tag]
                if column and item.text and item.text.strip():
                    values[column] = item.text.strip()
    return (None if time is None else time.text, latitude, longitude,
            None if ele is None else _number(ele.text), values)


def _row(session: int, point: tuple) -> dict:
    """`_point_row` of the point gpxpy would have made (GPX 1.1 points have no speed of their own)."""
    time, latitude, longitude, elevation, values = point
    row = {"session": session, "ts": _naive_utc(time), "lat_deg": latitude, "lon_deg": longitude,
           "altitude_m": elevation, "speed_mps": None}
    row.update(values)
    return row


#: The usual GPX time, a whole second in UTC: read directly, to the value gpxpy's reading gives.
_UTC_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def _naive_utc(text: str | None) -> datetime | None:
    """`_utc_naive` of gpxpy's time for `text` (None where gpxpy gives none)."""
    if text is not None and _UTC_SECOND.fullmatch(text):
        try:
            return datetime(int(text[:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]), int(text[17:19]))
        except ValueError:  # e.g. month 13: gpxpy's reading fails too
            return None
    return _utc_naive(gpxpy.gpxfield.TIME_TYPE.from_string(text))


def _segment(points: list[tuple]) -> gpxpy.gpx.GPXTrackSegment:
    """A gpxpy segment of these points, for its time bounds and length (attributes set as gpxpy's parser does)."""
    segment = gpxpy.gpx.GPXTrackSegment()
    for time, latitude, longitude, elevation, _ in points:
        point = gpxpy.gpx.GPXTrackPoint()
        point.latitude, point.longitude, point.elevation = latitude, longitude, elevation
        point.time = gpxpy.gpxfield.TIME_TYPE.from_string(time)
        segment.points.append(point)
    return segment


def _check_children(element, converted: set[str]) -> None:
    """End the fast path if `element` has a GPX child gpxpy converts (and may reject), or a child in no
    namespace at all: gpxpy would take that for a GPX element where this tree does not."""
    for child in element:
        if not child.tag.startswith("{") or (child.tag.startswith(_NS) and child.tag[len(_NS):] in converted):
            raise _NotFast


def _first(element, name: str):
    """The first GPX child called `name` (gpxpy's `find`), or None."""
    if element is None:
        return None
    for child in element:
        if child.tag == _NS + name:
            return child
    return None


def _text(element, name: str) -> str | None:
    child = _first(element, name)
    return None if child is None else child.text


def _number(text: str | None, mandatory: bool = False) -> float | None:
    """gpxpy's float conversion; where gpxpy would reject the file, gpxpy shall."""
    if text is None:
        if mandatory:
            raise _NotFast
        return None
    try:
        return float(text.strip())
    except ValueError:
        raise _NotFast from None


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


def activity_row(session: int, sport: str | None, name: str | None, description: str | None, device: str | None) -> dict:
    return {"session": session, "sport": sport, "name": name, "description": description, "device": device}


def segment_laps(session: int, segments: list[gpxpy.gpx.GPXTrackSegment]) -> list[dict]:
    """One lap per segment of a track that has several (gpxpy's time bounds and 2-D length)."""
    if len(segments) < 2:
        return []
    laps = []
    for index, segment in enumerate(segments):
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
