"""GPX 1.1 activities written with gpxpy, with Garmin's TrackPointExtension v1 (hr, cad, atemp).

As in Garmin's own exports, `gpxtpx:cad` holds **strides/min** (half the steps/min) for running
and walking.  Times are UTC; positions are rounded to 1e-7° (~1 cm), elevation to 0.1 m.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import gpxpy.gpx
import polars as pl

from .plans import SessionPlan
from .signals import EARTH_RADIUS_M

TPX_NS = "http://www.garmin.com/xmlschemas/TrackPointExtension/v1"
CREATOR = "Garmin Connect"


def track_points(samples: pl.DataFrame) -> pl.DataFrame:
    """The samples as GPX track points: the exact values the file will hold."""
    return samples.select(
        "ts",
        lat=pl.col("lat_deg").round(7),
        lon=pl.col("lon_deg").round(7),
        ele=pl.col("altitude_m").round(1),
        hr=pl.col("heart_rate_bpm").cast(pl.Int32),
        cad=(pl.col("cadence_spm") / 2.0).round().cast(pl.Int32),
        atemp=pl.col("temperature_c").cast(pl.Int32),
    )


def track_length_m(points: pl.DataFrame) -> float:
    """Haversine length of the track (R = 6 371 000 m; gpxpy's own uses 6 378 137 m)."""
    rad = math.pi / 180.0
    lat, lon = pl.col("lat") * rad, pl.col("lon") * rad
    a = ((lat - lat.shift()) / 2).sin().pow(2) + lat.cos() * lat.shift().cos() * ((lon - lon.shift()) / 2).sin().pow(2)
    legs = points.select((2 * EARTH_RADIUS_M * a.sqrt().arcsin()).alias("leg"))
    return float(legs["leg"].sum())


def write_activity(path: Path, plan: SessionPlan, points: pl.DataFrame) -> None:
    """One track, one segment; the track name is the activity's name ("Backward intervals" when labelled)."""
    gpx = gpxpy.gpx.GPX()
    gpx.creator = CREATOR
    gpx.nsmap["gpxtpx"] = TPX_NS
    gpx.time = plan.start_utc
    track = gpxpy.gpx.GPXTrack(name=plan.name)
    track.type = plan.sport
    segment = gpxpy.gpx.GPXTrackSegment()
    track.segments.append(segment)
    gpx.tracks.append(track)
    for row in points.iter_rows(named=True):
        point = gpxpy.gpx.GPXTrackPoint(row["lat"], row["lon"], elevation=row["ele"], time=row["ts"])
        extension = ET.Element(f"{{{TPX_NS}}}TrackPointExtension")
        for tag in ("atemp", "hr", "cad"):
            if row[tag] is not None:
                ET.SubElement(extension, f"{{{TPX_NS}}}{tag}").text = str(row[tag])
        point.extensions.append(extension)
        segment.points.append(point)
    path.write_text(gpx.to_xml(version="1.1"), encoding="utf-8")
