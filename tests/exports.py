"""Builders of platform exports in their documented layouts, around generated activities.

Each builder returns what a user would expect to find after importing the export (names, counts,
weights), so tests can compare the warehouse against it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from retrostride.connectors.gpx import decode_gpx
from retrostride.pipelines.sample_export import generate_export
from tests.conftest import CORPORA

CORPUS_TCX = CORPORA / "tcx" / "python-tcxparser" / "test.tcx"

#: Strava's activities.csv headers, in file order (two "Distance" and two "Elapsed Time" columns).
STRAVA_HEADERS = {
    "en": [
        "Activity ID",
        "Activity Date",
        "Activity Name",
        "Activity Type",
        "Activity Description",
        "Elapsed Time",
        "Distance",
        "Max Heart Rate",
        "Relative Effort",
        "Commute",
        "Activity Gear",
        "Filename",
        "Athlete Weight",
        "Bike Weight",
        "Elapsed Time",
        "Moving Time",
        "Distance",
        "Calories",
    ],
    "de": [
        "Aktivitäts-ID",
        "Datum der Aktivität",
        "Name der Aktivität",
        "Aktivitätsart",
        "Beschreibung der Aktivität",
        "Verstrichene Zeit",
        "Distanz",
        "Max. Herzfrequenz",
        "Relative Leistung",
        "Pendeln",
        "Aktivitätsausrüstung",
        "Dateiname",
        "Gewicht des Athleten",
        "Fahrradgewicht",
        "Verstrichene Zeit",
        "Bewegungszeit",
        "Distanz",
        "Kalorien",
    ],
    # French: the id, date, name and file headers are from a real export, the rest translated here.
    "fr": [
        "ID de l'activité",
        "Date de l'activité",
        "Nom de l'activité",
        "Type d'activité",
        "Description de l'activité",
        "Temps écoulé",
        "Distance",
        "Fréquence cardiaque max.",
        "Effort relatif",
        "Trajet",
        "Équipement de l'activité",
        "Nom du fichier",
        "Poids de l'athlète",
        "Poids du vélo",
        "Temps écoulé",
        "Temps de déplacement",
        "Distance",
        "Calories",
    ],
    # Dutch: headers as real exports write them (the private-note column of newer exports left out).
    "nl": [
        "Activiteits-ID",
        "Datum van activiteit",
        "Naam activiteit",
        "Activiteitstype",
        "Beschrijving activiteit",
        "Verstreken tijd",
        "Afstand",
        "Max. hartslag",
        "Relatieve inspanning",
        "Woon-werkverkeer",
        "Uitrusting activiteit",
        "Bestandsnaam",
        "Gewicht atleet",
        "Fietsgewicht",
        "Verstreken tijd",
        "Beweegtijd",
        "Afstand",
        "Calorieën",
    ],
    # Languages whose headers the reader does not know: read by Strava's column order.
    "es": [
        "ID de la actividad",
        "Fecha de la actividad",
        "Nombre de la actividad",
        "Tipo de actividad",
        "Descripción de la actividad",
        "Tiempo transcurrido",
        "Distancia",
        "Frecuencia cardiaca máxima",
        "Esfuerzo relativo",
        "Desplazamiento",
        "Equipo de la actividad",
        "Nombre de archivo",
        "Peso del deportista",
        "Peso de la bicicleta",
        "Tiempo transcurrido",
        "Tiempo en movimiento",
        "Distancia",
        "Calorías",
    ],
    "pt": [
        "ID da atividade",
        "Data da atividade",
        "Nome da atividade",
        "Tipo da atividade",
        "Descrição da atividade",
        "Tempo decorrido",
        "Distância",
        "Frequência cardíaca máxima",
        "Esforço relativo",
        "Deslocamento",
        "Equipamento da atividade",
        "Nome do arquivo",
        "Peso do atleta",
        "Peso da bicicleta",
        "Tempo decorrido",
        "Tempo em movimento",
        "Distância",
        "Calorias",
    ],
    "ja": [
        "アクティビティID",
        "アクティビティの日付",
        "アクティビティ名",
        "アクティビティの種類",
        "アクティビティの説明",
        "経過時間",
        "距離",
        "最大心拍数",
        "相対的な運動強度",
        "通勤",
        "アクティビティのギア",
        "ファイル名",
        "アスリートの体重",
        "バイクの重量",
        "経過時間",
        "移動時間",
        "距離",
        "カロリー",
    ],
}
#: Month names as each language's export writes dates (German and Dutch as real exports do).
MONTH_NAMES = {
    "de": ["Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez."],
    "nl": ["jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"],
    "fr": ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."],
    "es": ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"],
    "pt": ["jan.", "fev.", "mar.", "abr.", "mai.", "jun.", "jul.", "ago.", "set.", "out.", "nov.", "dez."],
}
#: Activity types as each language writes them (those of unknown languages are kept as written).
TYPES = {
    "de": {"Run": "Lauf", "Walk": "Spaziergang"},
    "nl": {"Run": "Hardloopsessie", "Walk": "Wandelen"},
    "fr": {"Run": "Course à pied", "Walk": "Marche"},
    "es": {"Run": "Carrera", "Walk": "Caminata"},
    "pt": {"Run": "Corrida", "Walk": "Caminhada"},
    "ja": {"Run": "ラン", "Walk": "ウォーク"},
}
#: Languages whose headers connectors/strava.py knows by name.
NAMED_LANGUAGES = ("en", "de", "fr", "nl")


@dataclass
class BuiltExport:
    path: Path
    activities: (
        pl.DataFrame
    )  # what each activity should be called: file (None: manual), name, description, sport, calories
    weights: list[tuple[datetime, float]]  # (UTC time, kg) the export's body measurements should hold
    files: int  # activity files inside
    home: tuple[float, float] | None = None  # the centre of the export's privacy zone


def generated(root: Path, seed: int = 3, weeks: int = 2) -> tuple[Path, pl.DataFrame]:
    """One generated athlete's activity files (weight-scale files left out) and their truth."""
    truth = generate_export(root / "generated", seed=seed, athletes=1, weeks=weeks)
    return root / "generated", truth.activities.sort("start_ts")


def strava_export(root: Path, language: str = "en", zipped: bool = True, weeks: int = 2, seed: int = 3) -> BuiltExport:
    """A Strava bulk export: activities.csv (with every trap), activities/ (FIT .gz, GPX, a real TCX),
    profile.csv, privacy_zones.csv, and a photo the importer must leave alone."""
    folder, truth = generated(root, seed=seed, weeks=weeks)
    members: dict[str, bytes] = {}
    rows, expected = [], []
    weight = [70.5, 70.5, 70.1, 70.1, 69.8, 69.8]
    for index, activity in enumerate(truth.iter_rows(named=True)):
        data = (folder / activity["file"]).read_bytes()
        number = 11_000 + 7 * index  # the file's number is not the activity id
        name = f"activities/{number}.{activity['format']}" + (".gz" if activity["format"] == "fit" else "")
        members[name] = gzip.compress(data, mtime=0) if name.endswith(".gz") else data
        title = "Rückwärts laufen, Intervalle" if activity["labelled"] else f"Lauf {index}"
        description = f'Zeile eins, mit Komma\nZeile "zwei" {index}'
        rows.append(
            _strava_row(
                language,
                9_000_000_000 + index,
                activity["start_ts"],
                title,
                "Run",
                description,
                name,
                weight[index % len(weight)],
                400.0 + index,
                activity["distance_m"],
            )
        )
        expected.append(
            {
                "file": name,
                "name": title,
                "description": description,
                "sport": "running",
                "calories_kcal": 400.0 + index,
            }
        )
    tcx_start = datetime(2012, 12, 26, 21, 29, 53, tzinfo=UTC)
    members["activities/11900.tcx"] = CORPUS_TCX.read_bytes()
    rows.append(
        _strava_row(
            language,
            8_000_000_001,
            tcx_start,
            "TCX evening run",
            "Run",
            "",
            "activities/11900.tcx",
            None,
            380.0,
            4688.0,
        )
    )
    expected.append(
        {
            "file": "activities/11900.tcx",
            "name": "TCX evening run",
            "description": "Aerobics",  # the file's own notes
            "sport": "running",
            "calories_kcal": 380.0,
        }
    )
    manual_start = datetime(2024, 1, 3, 17, 0, tzinfo=UTC)
    rows.append(
        _strava_row(
            language,
            8_000_000_002,
            manual_start,
            "Rückwärts auf dem Laufband",
            "Walk",
            "manual entry,\nno file",
            "",
            69.8,
            120.0,
            2000.0,
        )
    )
    expected.append(
        {
            "file": None,
            "name": "Rückwärts auf dem Laufband",
            "description": "manual entry,\nno file",
            "sport": "walking",
            "calories_kcal": 120.0,
        }
    )
    members["activities.csv"] = _csv(STRAVA_HEADERS[language], rows)
    members["profile.csv"] = _csv(
        ["Athlete ID", "Email Address", "First Name", "Last Name", "Sex", "Description", "Weight"],
        [["42", "a@example.org", "Alice", "Doe", "F", "runs backward", "69.5" if language in ("en", "ja") else "69,5"]],
    )
    home = _first_position(folder / truth.filter(pl.col("format") == "gpx")["file"][0])  # a run that starts at home
    members["privacy_zones.csv"] = _csv(
        ["Address", "Radius", "Latitude", "Longitude"], [["Home Street 1, Berlin", "200", *map(str, home)]]
    )
    members["media/photo.jpg"] = b"\xff\xd8\xff\xe0not really a jpeg"
    when = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)
    path = root / ("export_4242.zip" if zipped else "export_4242")
    _write_tree(path, members, zipped, when)
    readings = [(ts, weight[i % len(weight)]) for i, ts in enumerate(truth["start_ts"].to_list())]
    weights = _changes(sorted(readings + [(manual_start, 69.8)])) + [(when, 69.5)]
    return BuiltExport(path, pl.DataFrame(expected), weights, files=len(truth) + 1, home=home)


def garmin_export(root: Path, older_layout: bool = False, weeks: int = 2, seed: int = 5) -> BuiltExport:
    """A Garmin Connect data export: FIT and GPX files in nested UploadedFiles zips, activity summaries
    whose start times are 20 s off the files', and biometrics in grams."""
    folder, truth = generated(root, seed=seed, weeks=weeks)
    uploads = io.BytesIO()
    with zipfile.ZipFile(uploads, "w", zipfile.ZIP_DEFLATED) as inner:
        for index, activity in enumerate(truth.iter_rows(named=True)):
            suffix = activity["file"].rsplit(".", 1)[-1]
            inner.writestr(f"someone@example.org_{700_000 + index}.{suffix}", (folder / activity["file"]).read_bytes())
    summaries, expected = [], []
    for index, activity in enumerate(truth.iter_rows(named=True)):
        start_ms = int(activity["start_ts"].timestamp() * 1000) + 20_000  # summaries and files disagree by seconds
        name = "Backward hill repeats" if activity["labelled"] else f"Run {index}"
        summaries.append(
            {
                "activityId": 5_000_000 + index,
                "name": name,
                "activityType": "running",
                "sportType": "RUNNING",
                "beginTimestamp": start_ms,
                "startTimeGmt": start_ms,
                "duration": 1_800_000.0,
                "distance": 500_000.0,
                "calories": 300.0 + index,
                "description": f"note {index}",
            }
        )
        expected.append(
            {
                "file": activity["file"],
                "name": name,
                "description": f"note {index}",
                "sport": "running",
                "calories_kcal": 300.0 + index,
            }
        )
    summaries.append({"activityId": 1, "name": "Unmatched", "activityType": "running", "beginTimestamp": 0})
    weights = [(datetime(2024, 1, 1, 7, 0, tzinfo=UTC), 71_200.0), (datetime(2024, 1, 5, 7, 0, tzinfo=UTC), 70_900.0)]
    biometrics = [
        {
            "weight": {
                "weight": grams,
                "timestampGMT": ts.strftime("%Y-%m-%dT%H:%M:%S.0"),
                "sourceType": "INDEX_SCALE",
            },
            "metaData": {"calendarDate": ts.strftime("%Y-%m-%dT00:00:00.0")},
        }
        for ts, grams in weights
    ]
    fitness = "DI_CONNECT/DI-Connect-Fitness"
    uploaded = fitness if older_layout else "DI_CONNECT/DI-Connect-Uploaded-Files"
    members = {
        f"{uploaded}/UploadedFiles_0-_Part1.zip": uploads.getvalue(),
        f"{fitness}/someone@example.org_0_summarizedActivities.json": json.dumps(
            [{"summarizedActivitiesExport": summaries}]
        ).encode(),
        "DI_CONNECT/DI-Connect-Wellness/12345_userBioMetrics.json": json.dumps(biometrics).encode(),
        "DI_CONNECT/DI-Connect-User/user_profile.json": b'{"userName": "someone"}',
    }
    path = root / "garmin-export.zip"
    _write_tree(path, members, True, datetime(2024, 2, 1, tzinfo=UTC))
    return BuiltExport(path, pl.DataFrame(expected), [(ts, grams / 1000) for ts, grams in weights], files=len(truth))


def _first_position(gpx: Path) -> tuple[float, float]:
    first = decode_gpx(gpx).records.row(0, named=True)
    return first["lat_deg"], first["lon_deg"]


def _strava_row(
    language, activity_id, start, name, kind, description, filename, weight, calories, distance_m
) -> list[str]:
    comma = language != "en" and language != "ja"
    number = lambda v: "" if v is None else f"{v:.1f}".replace(".", "," if comma else ".")  # noqa: E731
    return [
        str(activity_id),
        strava_date(language, start),
        name,
        TYPES.get(language, {}).get(kind, kind),
        description,
        "1800",
        number(distance_m / 1000),
        "170",
        "40",
        "false",
        "",
        filename,
        number(weight),
        "",
        "1800.0",
        "1750.0",
        number(distance_m),
        number(calories),
    ]


def strava_date(language: str, start: datetime) -> str:
    """An activity's date as Strava's export writes it in `language` (UTC)."""
    clock = f"{start:%H:%M:%S}"
    if language == "en":
        return f"{start:%b} {start.day}, {start.year}, {start.hour % 12 or 12}:{start:%M:%S} {'AM' if start.hour < 12 else 'PM'}"
    if language == "ja":
        return f"{start.year}/{start.month:02d}/{start.day:02d} {start.hour}:{start:%M:%S}"
    month = MONTH_NAMES[language][start.month - 1]
    if language == "de":
        return f"{start.day}. {month} {start.year}, {clock}"
    if language == "pt":
        return f"{start.day} de {month} de {start.year} {clock}"
    return f"{start.day} {month} {start.year}, {clock}"


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    return out.getvalue().encode("utf-8")


def _write_tree(path: Path, members: dict[str, bytes], zipped: bool, when: datetime) -> None:
    if zipped:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in members.items():
                archive.writestr(
                    zipfile.ZipInfo(name, date_time=when.timetuple()[:6]), data, compress_type=zipfile.ZIP_DEFLATED
                )
        return
    import os

    for name, data in members.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        os.utime(target, (when.timestamp(), when.timestamp()))


def _changes(weights: list[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """The readings where the weight differs from the one before (what Strava's per-activity weight says)."""
    kept, last = [], None
    for ts, kg in weights:
        if kg is not None and kg != last:
            kept.append((ts, kg))
            last = kg
    return kept
