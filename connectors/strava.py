"""Strava's bulk export: `activities.csv`, `profile.csv` and `privacy_zones.csv`.

The activity files themselves (`activities/*.fit|gpx|tcx[.gz]`) go through the ordinary decoders;
this module reads the tables around them.  Rows are joined to files on `Filename` (the file's number
is not the activity id).  Headers come in the account's language: known
ones are read by name, any other language by Strava's column order, checked against each column's
content (`locate_columns`); dates in any language's month names.  The table repeats some names (two
"Distance" columns: the first in km or miles, the second in metres).  "Activity Date" is UTC.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

from retrostride.connectors.tabular import number, pick, read_text_table, text, timestamp
from retrostride.warehouse.schema import (
    FILE_ACTIVITIES,
    FILE_BODY_MEASUREMENTS,
    FILE_PRIVACY_ZONES,
    DecodedFile,
    DecodeError,
    conform,
)

DECODER = "strava-csv"
DECODER_VERSION = "1"

#: Canonical name → headers in the languages found in real exports (English, German; French and
#: Dutch in part).  Any other language is read by position (`locate_columns`).
ACTIVITY_COLUMNS = {
    "activity_id": ("Activity ID", "Aktivitäts-ID", "ID de l'activité", "Activiteits-ID"),
    "date": ("Activity Date", "Aktivitätsdatum", "Datum der Aktivität", "Date de l'activité", "Datum van activiteit"),
    "name": ("Activity Name", "Aktivitätsname", "Name der Aktivität", "Nom de l'activité", "Naam activiteit"),
    "type": ("Activity Type", "Aktivitätsart", "Aktivitätstyp", "Activiteitstype"),
    "description": ("Activity Description", "Aktivitätsbeschreibung", "Beschreibung der Aktivität"),
    "elapsed_s": ("Elapsed Time", "Verstrichene Zeit", "Gesamtzeit", "Verstreken tijd"),
    "moving_s": ("Moving Time", "Bewegungszeit", "Beweegtijd"),
    "distance": ("Distance", "Distanz", "Strecke", "Afstand"),
    "distance_m": (
        "Distance_duplicated_0",
        "Distanz_duplicated_0",
        "Strecke_duplicated_0",
        "Afstand_duplicated_0",
    ),
    "file": ("Filename", "Dateiname", "Nom du fichier", "Bestandsnaam"),
    "weight_kg": ("Athlete Weight", "Athletengewicht", "Gewicht des Athleten", "Sportlergewicht"),
    "calories": ("Calories", "Kalorien", "Calorieën"),
}
#: Where each column stands in every language's activities.csv: the first seven from the start, the
#: others from Filename (older exports have one column less before it).
POSITIONS = {"activity_id": 0, "date": 1, "name": 2, "type": 3, "description": 4, "elapsed_s": 5, "distance": 6}
AFTER_FILE = {"weight_kg": 1, "moving_s": 4, "distance_m": 5}
#: What an activity file's name looks like in the Filename column.
FILE_NAME = r"^activities/[^/]+\.(fit|gpx|tcx)(\.gz)?$"
PROFILE_COLUMNS = {"weight_kg": ("Weight", "Gewicht")}
ZONE_COLUMNS = {
    "address": ("Address", "Adresse"),
    "radius_m": ("Radius", "Radius (m)"),
    "lat_deg": ("Latitude", "Lat", "Breitengrad"),
    "lon_deg": ("Longitude", "Lng", "Lon", "Längengrad"),
}
#: Strava activity types (English, German, Dutch) → canonical sport; others are kept as written (and
#: the activity's file, or what it holds, tells the sport).
SPORTS = {
    "run": "running",
    "trail run": "running",
    "virtual run": "running",
    "lauf": "running",
    "laufen": "running",
    "traillauf": "running",
    "walk": "walking",
    "spaziergang": "walking",
    "gehen": "walking",
    "hike": "hiking",
    "wanderung": "hiking",
    "wandern": "hiking",
    "ride": "cycling",
    "radfahrt": "cycling",
    "swim": "swimming",
    "schwimmen": "swimming",
    "hardloopsessie": "running",
    "wandelen": "walking",
    "fietsrit": "cycling",
    "virtuele fietsrit": "cycling",
    "zwemmen": "swimming",
}

#: What activities.csv says about each activity (the `labels` side of the join on files).
ACTIVITY_ROWS = pl.Schema(
    {
        "platform_activity_id": pl.String,
        "start_ts": pl.Datetime("us", "UTC"),
        "name": pl.String,
        "description": pl.String,
        "sport": pl.String,
        "calories_kcal": pl.Float64,
        "weight_kg": pl.Float64,
        "file": pl.String,
        "total_elapsed_s": pl.Float64,
        "total_timer_s": pl.Float64,
        "total_distance_m": pl.Float64,
    }
)


def is_activities_table(path: Path) -> bool:
    """Whether a loose file's header names Strava's activity id and date columns (in an export, the
    file's place says what it is, in any language)."""
    with open(path, "rb") as handle:
        header = handle.readline(4096).decode("utf-8-sig", errors="replace").lower()
    return any(a.lower() in header for a in ACTIVITY_COLUMNS["activity_id"]) and any(
        a.lower() in header for a in ACTIVITY_COLUMNS["date"]
    )


def read_activities(path: Path) -> pl.DataFrame:
    """activities.csv as one row per activity (ACTIVITY_ROWS); `file` is null for manual entries."""
    table = read_text_table(path, "Strava activities.csv")
    col = locate_columns(table).get
    distance = pl.coalesce(number(col("distance_m")), number(col("distance")) * 1000.0)  # the first one is km
    rows = table.select(
        text(col("activity_id")).alias("platform_activity_id"),
        timestamp(col("date")).alias("start_ts"),
        text(col("name")).alias("name"),
        text(col("description")).alias("description"),
        text(col("type")).str.to_lowercase().replace(SPORTS).alias("sport"),
        number(col("calories")).alias("calories_kcal"),
        number(col("weight_kg")).alias("weight_kg"),
        text(col("file")).alias("file"),
        number(col("elapsed_s")).alias("total_elapsed_s"),
        number(col("moving_s")).alias("total_timer_s"),
        distance.alias("total_distance_m"),
    )
    return conform(rows.filter(pl.col("platform_activity_id").is_not_null()), ACTIVITY_ROWS)


def locate_columns(table: pl.DataFrame) -> dict[str, str]:
    """Canonical name → column of activities.csv: by its header where the language is known (as
    before: a bad cell is null, not a bad table), else by its position, where the column's content
    must agree (ids are integers, dates read as dates, file
    names look like `activities/<n>.fit.gz`, times and distances are numbers).  Raises DecodeError
    when the ids and dates are found neither way."""
    found = pick(table.columns, ACTIVITY_COLUMNS)
    columns = table.columns
    in_order = len(columns) > 1 and _fits(table, "activity_id", columns[0]) and _fits(table, "date", columns[1])
    for key, index in POSITIONS.items():
        if in_order and key not in found and index < len(columns) and _fits(table, key, columns[index]):
            found[key] = columns[index]
    if "file" not in found:
        named = [c for c in columns[len(POSITIONS) :] if _filled(table, c) and _fits(table, "file", c)]
        found.update({"file": named[0]} if named else {})
    if in_order and "file" in found:
        at = columns.index(found["file"])
        for key, offset in AFTER_FILE.items():
            if key not in found and at + offset < len(columns) and _fits(table, key, columns[at + offset]):
                found[key] = columns[at + offset]
    if "activity_id" not in found or "date" not in found:
        raise DecodeError(
            "Strava activities.csv: no column holds activity ids and dates, by name or in Strava's column "
            f"order (headers: {', '.join(columns[:6])}, …)"
        )
    return found


def _fits(table: pl.DataFrame, key: str, column: str) -> bool:
    """Whether every filled cell of `column` reads as what `key` holds (text columns always do)."""
    cells = text(column)
    filled = table.select(cells.is_not_null().sum()).item()
    if key == "activity_id":
        check = cells.str.contains(r"^\d+$")
    elif key == "date":
        check = timestamp(column).is_not_null()
    elif key == "file":
        check = cells.str.contains(FILE_NAME)
    elif key in ("elapsed_s", "moving_s", "distance", "distance_m", "weight_kg", "calories"):
        check = number(column).is_not_null()
    else:
        return True
    return table.select(check.fill_null(False).sum()).item() == filled and (
        filled > 0 or key not in ("activity_id", "date")
    )


def _filled(table: pl.DataFrame, column: str) -> bool:
    return table.select(text(column).is_not_null().any()).item()


def decode_activities(path: Path) -> DecodedFile:
    """Manual entries (rows without a file) as activities without records, and the athlete's weight
    wherever it changes from one activity to the next, as body measurements."""
    rows = read_activities(path).with_row_index("session")
    manual = rows.filter(pl.col("file").is_null()).with_columns(
        pl.col("session").cast(pl.Int32), pl.lit("strava").alias("platform"), pl.lit("manual entry").alias("device")
    )
    weights = (
        rows.filter(pl.col("weight_kg") > 0, pl.col("start_ts").is_not_null())
        .sort("start_ts")
        .filter(pl.col("weight_kg") != pl.col("weight_kg").shift(1).fill_null(-1.0))
        .select(pl.col("start_ts").alias("ts"), "weight_kg")
    )
    return DecodedFile(
        format="strava",
        decoder=DECODER,
        decoder_version=DECODER_VERSION,
        activities=conform(manual, FILE_ACTIVITIES),
        body_measurements=conform(weights, FILE_BODY_MEASUREMENTS),
    )


def decode_profile(path: Path, recorded_at: datetime | None) -> DecodedFile:
    """profile.csv's weight, as measured when the export was made (`recorded_at`, UTC)."""
    table = read_text_table(path, "Strava profile.csv")
    found = pick(table.columns, PROFILE_COLUMNS)
    if recorded_at is None:
        raise DecodeError("Strava profile.csv: no date for its weight (the export's time is unknown)")
    weights = table.select(number(found.get("weight_kg")).alias("weight_kg")).filter(pl.col("weight_kg") > 0)
    weights = weights.with_columns(pl.lit(recorded_at).cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("ts"))
    return DecodedFile(
        format="strava",
        decoder=DECODER,
        decoder_version=DECODER_VERSION,
        body_measurements=conform(weights.head(1), FILE_BODY_MEASUREMENTS),
    )


def read_account(path: Path) -> str | None:
    """The athlete id profile.csv holds (its first column in every language), or None."""
    table = read_text_table(path, "Strava profile.csv")
    if not table.height or not table.columns:
        return None
    account = table.select(text(table.columns[0])).item(0, 0)
    return account if account and account.isdigit() else None


def decode_privacy_zones(path: Path) -> DecodedFile:
    """privacy_zones.csv: address, radius and centre of each zone, kept for masking positions later."""
    table = read_text_table(path, "Strava privacy_zones.csv")
    found = pick(table.columns, ZONE_COLUMNS)
    zones = table.select(
        text(found.get("address")).alias("address"),
        number(found.get("radius_m")).alias("radius_m"),
        number(found.get("lat_deg")).alias("lat_deg"),
        number(found.get("lon_deg")).alias("lon_deg"),
    )
    return DecodedFile(
        format="strava",
        decoder=DECODER,
        decoder_version=DECODER_VERSION,
        privacy_zones=conform(zones, FILE_PRIVACY_ZONES),
    )
