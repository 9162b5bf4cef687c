"""GPX files: one activity per track, one lap per track segment.

The XML goes through defusedxml (no DTDs, no entities) so a hostile file is refused before gpxpy
sees it.  Heart rate, cadence, temperature and power come from Garmin's TrackPointExtension
and common power extensions; GPX cadence holds strides/min for running (Garmin's convention).

gpxpy is the reference decoder.  The common case (GPX 1.1 in UTF-8, tracks of points with elevation,
time and extensions) is streamed (`stream_tracks`): each point's element is read, turned into a
row and dropped, and rows become typed frames 50,000 at a time, so memory holds the frames, not the
document (peak RSS about 1x the file size instead of 21x); several times faster than gpxpy too.
Anything else goes through gpxpy, whole, and the ledger's `decoder` says which one read the file.  tests/test_gpx_fast_path.py checks that both give identical frames on every corpus GPX file,
generated runs and mutants of them.
"""

from __future__ import annotations

import codecs
import re
from array import array
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import gpxpy
import gpxpy.gpx
import gpxpy.gpxfield
import gpxpy.parser
import polars as pl

from retrostride.connectors.fit_canonical import FOOT_SPORTS
from retrostride.connectors.untrusted_xml import parse_untrusted_xml, untrusted_events
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

#: (point rows, activity rows, lap rows) of one file, as gpxpy's reading makes them.
Tracks = tuple[list[dict], list[dict], list[dict]]
#: (typed frames of the point rows, activity rows, lap rows), as the streaming reader makes them.
Streamed = tuple[list[pl.DataFrame], list[dict], list[dict]]

#: Extension element local names → canonical record column.
EXTENSION_FIELDS = {
    "hr": "heart_rate_bpm",
    "cad": "cadence_spm",
    "atemp": "temperature_c",
    "power": "power_w",
    "speed": "speed_mps",
}
SPORT_NAMES = {
    "run": "running",
    "walk": "walking",
    "hike": "hiking",
    "ride": "cycling",
    "biking": "cycling",
    "swim": "swimming",
}


def decode_gpx(path: Path, *, reference: bool = False) -> DecodedFile:
    """Decode a GPX file's tracks into canonical frames (`reference`: always through gpxpy)."""
    streamed = None if reference else stream_tracks(Path(path))
    if streamed is None:
        data = Path(path).read_bytes()
        parse_untrusted_xml(data, "GPX")  # refuses what defusedxml refuses before gpxpy sees it
        points, activities, laps = _read_with_gpxpy(_parse(data))
        chunks, decoder, decoder_version = [_typed(points)] if points else [], DECODER, DECODER_VERSION
    else:
        (chunks, activities, laps), decoder, decoder_version = streamed, FAST_DECODER, FAST_DECODER_VERSION
    records = _records(chunks, activities)
    return DecodedFile(
        format="gpx",
        decoder=decoder,
        decoder_version=decoder_version,
        activities=_activities(activities, records),
        records=records,
        laps=conform(pl.DataFrame(laps, schema_overrides=dict(FILE_LAPS), strict=False), FILE_LAPS)
        if laps
        else pl.DataFrame(schema=FILE_LAPS),
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
        activities.append(
            activity_row(
                session,
                _sport(track) or sport,
                track.name or gpx.name,
                track.description or gpx.description,
                gpx.creator,
            )
        )
        laps.extend(segment_laps(session, track.segments))
    return points, activities, laps


def _parse(data: bytes) -> gpxpy.gpx.GPX:
    """gpxpy's document (the bytes have passed `_checked_tree`)."""
    try:
        return gpxpy.parse(data.decode("utf-8-sig", errors="replace"))
    except gpxpy.gpx.GPXException as error:
        raise DecodeError(f"invalid GPX: {error}") from None
    except (ArithmeticError, AttributeError, LookupError, TypeError, ValueError):  # gpxpy on odd values
        raise DecodeError("invalid GPX: a value gpxpy cannot read (an odd number, time or structure)") from None


# -- the fast path: gpxpy's reading of a GPX 1.1 document, streamed through defusedxml ---------------

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
_ROOT_CONVERTED = {_NS + name for name in _CONVERTED_IN_ROOT}
_FAST_PATH_POSSIBLE = gpxpy.parser.library() == "STDLIB"  # gpxpy on lxml reads some documents differently
#: Points turned into a typed frame at a time, and the text read at a time while checking the document.
POINT_CHUNK = 50_000
TEXT_CHUNK = 8 << 20
#: How much text before a chunk edge is searched again, so a namespace pattern across the edge is found.
PATTERN_OVERLAP = 64 << 10


class _NotFast(Exception):
    """The document has something only gpxpy may decide about."""


def stream_tracks(path: Path) -> Streamed | None:
    """What `_read_with_gpxpy` makes of the file, read in one streaming pass (points in chunks of
    typed frames, each point's element dropped once read); None when the document is one where that
    equivalence is not certain (then gpxpy reads it).  Raises DecodeError for XML defusedxml refuses.

    gpxpy parses the UTF-8 text with its first `xmlns="..."` removed and finds GPX elements by their
    bare names.  For a UTF-8 document whose root alone binds the GPX 1.1 namespace, as its default,
    that is this document with the namespace dropped from GPX element names; every value goes
    through the converter gpxpy would use.
    """
    if not _FAST_PATH_POSSIBLE or not _same_text_for_gpxpy(path):
        return None
    try:
        return _stream(path)
    except _NotFast:
        return None


def _same_text_for_gpxpy(path: Path) -> bool:
    """Whether gpxpy's view of the file is defusedxml's minus the root's default GPX 1.1 namespace.
    Read in chunks: strict UTF-8 throughout, and the namespace patterns counted across chunk edges."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")  # strict: gpxpy replaces what is not UTF-8
    bindings, tail, first_chunk = 0, "", True
    with open(path, "rb") as handle:
        while True:
            block = handle.read(TEXT_CHUNK)
            if first_chunk:
                declared = _DECLARED_ENCODING.match(block)
                if declared and declared.group(2).lower() != b"utf-8":
                    return False
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError:
                return False
            if first_chunk:
                first = _GPXPY_DEFAULT_NS.search(text)
                if not (
                    first
                    and first.group(0).split("=", 1)[1][1:-1] == GPX_11
                    and _ROOT_START.match(text[: first.start()])
                ):
                    return False
                first_chunk = False
            window = tail + text
            bindings += sum(1 for m in _GPX_11_BINDING.finditer(window) if m.end() > len(tail))
            if bindings > 1 or any(m.end() > len(tail) for m in _NS_WITH_REFERENCE.finditer(window)):
                return False
            tail = window[-PATTERN_OVERLAP:]
            if not block:
                return bindings == 1


class _Segment:
    """A track segment's positions and its first and last times gpxpy can read, for its lap."""

    def __init__(self) -> None:
        self.latitudes, self.longitudes = array("d"), array("d")
        self.first: str | None = None
        self.last: str | None = None

    def add(self, point: tuple, ts: datetime | None) -> None:
        time, latitude, longitude = point[:3]
        self.latitudes.append(latitude)
        self.longitudes.append(longitude)
        if ts is not None or (
            time is not None and gpxpy.gpxfield.TIME_TYPE.from_string(time)
        ):  # gpxpy reads a time there
            self.first = self.first or time
            self.last = time

    def gpxpy_segment(self) -> gpxpy.gpx.GPXTrackSegment:
        """A gpxpy segment with these positions and time bounds (for `segment_laps`)."""
        return _segment(
            [
                (self.first, lat, lon, None, None)
                if i == 0
                else (self.last if i == len(self.latitudes) - 1 else None, lat, lon, None, None)
                for i, (lat, lon) in enumerate(zip(self.latitudes, self.longitudes, strict=True))
            ]
        )


def _stream(path: Path) -> Streamed:
    stack: list = []
    chunks: list[pl.DataFrame] = []
    chunk: list[dict] = []
    tracks: list[tuple] = []  # (session, sport, name, description) of tracks with points
    laps: list[dict] = []
    columns: dict[str, str | None] = {}  # extension tag → record column, as met
    creator = metadata = None
    session, segments, track_rows = -1, [], 0
    for event, element in untrusted_events(path, "GPX"):
        if event == "start":
            stack.append(element)
            depth = len(stack)
            if depth == 1 and (element.tag != _NS + "gpx" or element.get("version") != "1.1"):
                raise _NotFast
            if depth == 1:
                creator = element.get("creator")
            elif depth == 2 and (not element.tag.startswith("{") or element.tag in _ROOT_CONVERTED):
                raise _NotFast  # see _check_children
            elif depth == 2 and element.tag == _NS + "trk":
                session, segments, track_rows = session + 1, [], 0
            elif depth == 3 and element.tag == _NS + "trkseg" and stack[1].tag == _NS + "trk":
                segments.append(_Segment())
            continue
        stack.pop()
        depth = len(stack) + 1
        if (
            depth == 4
            and element.tag == _NS + "trkpt"
            and stack[2].tag == _NS + "trkseg"
            and stack[1].tag == _NS + "trk"
        ):
            point = _point(element, columns)
            row = _row(session, point)
            segments[-1].add(point, row["ts"])
            chunk.append(row)
            track_rows += 1
            stack[-1].remove(element)
            if len(chunk) == POINT_CHUNK:
                chunks.append(_typed(chunk))
                chunk = []
        elif depth == 3 and element.tag == _NS + "trkseg" and stack[1].tag == _NS + "trk":
            _check_children(element, set())
        elif depth == 2 and element.tag == _NS + "trk":
            _check_children(element, _CONVERTED_IN_TRACK)
            if track_rows:
                kind = _text(element, "type")
                sport = SPORT_NAMES.get(kind.strip().lower(), kind.strip().lower()) if kind else None
                tracks.append((session, sport or None, _text(element, "name"), _text(element, "desc")))
                if len(segments) > 1:
                    laps.extend(segment_laps(session, [s.gpxpy_segment() for s in segments]))
            stack[-1].remove(element)
        elif depth == 2 and element.tag == _NS + "metadata" and metadata is None:
            _check_children(element, _CONVERTED_IN_METADATA)
            metadata = element
    if chunk:
        chunks.append(_typed(chunk))
    name, description = _text(metadata, "name"), _text(metadata, "desc")
    activities = [
        activity_row(session, sport, track_name or name, track_description or description, creator)
        for session, sport, track_name, track_description in tracks
    ]
    return chunks, activities, laps


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
        name = tag[len(_NS) :]
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
    return (
        None if time is None else time.text,
        latitude,
        longitude,
        None if ele is None else _number(ele.text),
        values,
    )


def _row(session: int, point: tuple) -> dict:
    """`_point_row` of the point gpxpy would have made (GPX 1.1 points have no speed of their own)."""
    time, latitude, longitude, elevation, values = point
    row = {
        "session": session,
        "ts": _naive_utc(time),
        "lat_deg": latitude,
        "lon_deg": longitude,
        "altitude_m": elevation,
        "speed_mps": None,
    }
    row.update(values)
    return row


#: The usual GPX time, a whole second in UTC: read directly, to the value gpxpy's reading gives.
_UTC_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def _naive_utc(text: str | None) -> datetime | None:
    """`_utc_naive` of gpxpy's time for `text` (None where gpxpy gives none)."""
    if text is not None and _UTC_SECOND.fullmatch(text):
        try:
            return datetime(
                int(text[:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]), int(text[17:19])
            )
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
        if not child.tag.startswith("{") or (child.tag.startswith(_NS) and child.tag[len(_NS) :] in converted):
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
        return moment.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return None


def activity_row(
    session: int, sport: str | None, name: str | None, description: str | None, device: str | None
) -> dict:
    return {"session": session, "sport": sport, "name": name, "description": description, "device": device}


def segment_laps(session: int, segments: list[gpxpy.gpx.GPXTrackSegment]) -> list[dict]:
    """One lap per segment of a track that has several (gpxpy's time bounds and 2-D length)."""
    if len(segments) < 2:
        return []
    laps = []
    for index, segment in enumerate(segments):
        start, end = segment.get_time_bounds()
        laps.append(
            {"session": session, "lap_index": index, "start_ts": start, "end_ts": end, "distance_m": _length_m(segment)}
        )
    return laps


def _length_m(segment: gpxpy.gpx.GPXTrackSegment) -> float | None:
    """The segment's 2-D length; None when a position is off the globe (gpxpy's trigonometry fails)."""
    try:
        return segment.length_2d()
    except (ArithmeticError, ValueError):
        return None


def _typed(points: list[dict]) -> pl.DataFrame:
    """Point rows as a frame of typed columns (extension texts as numbers, unreadable ones null)."""
    raw = pl.DataFrame(points, infer_schema_length=None, strict=False)
    return raw.with_columns(
        pl.col("ts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        *(pl.col(c).cast(pl.Float64, strict=False) for c in raw.columns if c not in ("session", "ts")),
    )


def _records(chunks: list[pl.DataFrame], activities: list[dict]) -> pl.DataFrame:
    if not chunks:
        return pl.DataFrame(schema=FILE_RECORDS)
    frame = conform(pl.concat(chunks, how="diagonal_relaxed") if len(chunks) > 1 else chunks[0], FILE_RECORDS)
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
