"""Platform exports import as they are: Strava and Garmin archives (and unpacked folders), TCX, .gz,
generic body-measurement CSVs; names, manual entries and weights land where users look for them."""

from __future__ import annotations

import gzip
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from retrostride.connectors.ingest.importer import import_files
from retrostride.connectors.sources import expanded_sources
from retrostride.connectors.tcx import decode_tcx
from retrostride.pipelines.runs import import_paths
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.packs import current_packs
from retrostride.warehouse.store import Warehouse
from tests.conftest import corpus_files, settings_for
from tests.exports import NAMED_LANGUAGES, STRAVA_HEADERS, _csv, _strava_row, garmin_export, generated, strava_export

TABLES = ["import_ledger", "activities", "records", "laps", "body_measurements"]


@pytest.fixture(scope="module")
def strava(tmp_path_factory):
    root = tmp_path_factory.mktemp("strava")
    export = strava_export(root)
    settings = settings_for(root)
    with dg.instance_for_test() as instance:
        import_paths(settings, [export.path], athlete="alice", instance=instance)
        yield export, settings, Warehouse(settings.catalog), instance


@pytest.fixture(scope="module")
def garmin(tmp_path_factory):
    root = tmp_path_factory.mktemp("garmin")
    export = garmin_export(root)
    settings = settings_for(root)
    with dg.instance_for_test() as instance:
        import_paths(settings, [export.path], athlete="bob", instance=instance)
    return export, Warehouse(settings.catalog)


def _labels(warehouse: Warehouse) -> pl.DataFrame:
    return warehouse.query(
        "SELECT name, description, sport, calories_kcal, records, platform FROM activities ORDER BY name"
    )


def test_a_strava_export_gives_every_file_and_manual_entry_its_name(strava):
    export, _, warehouse, _ = strava
    got = _labels(warehouse)
    expected = export.activities.sort("name")
    assert len(got) == export.files + 1 == len(expected)
    assert got["name"].to_list() == expected["name"].to_list()
    assert got["description"].to_list() == expected["description"].to_list()  # multi-line, quoted, with commas
    assert got["calories_kcal"].to_list() == expected["calories_kcal"].to_list()
    assert set(got["platform"]) == {"strava"}
    manual = got.filter(pl.col("name") == "Rückwärts auf dem Laufband").row(0, named=True)
    assert manual["records"] == 0 and manual["sport"] == "walking"
    tcx = got.filter(pl.col("name") == "TCX evening run").row(0, named=True)
    assert tcx["records"] == 384  # the real TCX file of the corpus, inside the export


def test_strava_weights_come_from_the_activities_and_the_profile(strava):
    export, _, warehouse, _ = strava
    got = warehouse.query("SELECT ts, weight_kg, source, athlete_id FROM body_measurements ORDER BY ts")
    assert [(ts, kg) for ts, kg in zip(got["ts"], got["weight_kg"])] == export.weights
    assert set(got["source"]) == {"strava"} and set(got["athlete_id"]) == {"alice"}


def test_strava_members_are_explained_one_by_one_and_the_rest_left_alone(strava):
    export, settings, warehouse, _ = strava
    ledger = warehouse.query("SELECT path, status, format FROM import_ledger ORDER BY path")
    names = [p.split("!", 1)[1] for p in ledger["path"]]
    assert all(p.startswith(f"{export.path}!") for p in ledger["path"])
    assert "media/photo.jpg" not in names
    assert {"activities.csv", "profile.csv", "privacy_zones.csv"} <= set(names)
    assert set(ledger["status"]) == {"ok"}
    assert (
        "activities/11000.fit.gz" in names
        and ledger.filter(pl.col("path").str.ends_with("11000.fit.gz"))["format"][0] == "fit"
    )
    zones_sha = warehouse.query("SELECT sha256 FROM import_ledger WHERE path LIKE '%privacy_zones.csv'")["sha256"][0]
    zones = Lake(settings.home).read_file(zones_sha, current_packs(warehouse)[zones_sha])["privacy_zones"]
    assert zones.select("address", "radius_m", "lat_deg", "lon_deg", "athlete_id").row(0) == (
        "Home Street 1, Berlin",
        200.0,
        *export.home,
        "alice",
    )


def test_strava_privacy_zones_hide_the_positions_inside_them(strava):
    export, _, warehouse, _ = strava
    lat, lon = export.home
    near = warehouse.query(f"""
        SELECT count(*) FILTER (WHERE lat_deg IS NULL) AS hidden, count(*) FILTER (WHERE lat_deg IS NOT NULL
               AND 6371008.8 * 2 * asin(sqrt(pow(sin(radians(lat_deg - {lat}) / 2), 2) + cos(radians({lat}))
               * cos(radians(lat_deg)) * pow(sin(radians(lon_deg - {lon}) / 2), 2))) < 190) AS shown
        FROM records""").row(0, named=True)
    assert near["hidden"] > 0 and near["shown"] == 0


def test_the_detector_reads_strava_names_as_label_evidence(strava):
    _, _, warehouse, _ = strava
    labelled = warehouse.query(
        "SELECT count(*) AS n FROM segments s JOIN activities a USING (activity_id) "
        "WHERE a.name = 'Rückwärts laufen, Intervalle' AND s.evidence LIKE '%label%'"
    )["n"][0]
    assert labelled > 0


def test_reimporting_a_strava_export_changes_nothing(strava):
    export, settings, warehouse, instance = strava
    before = {t: warehouse.query(f"SELECT * FROM {t} ORDER BY ALL").drop("imported_at", strict=False) for t in TABLES}
    assert import_paths(settings, [export.path], athlete="alice", instance=instance) == []
    for table in TABLES:
        assert (
            warehouse.query(f"SELECT * FROM {table} ORDER BY ALL")
            .drop("imported_at", strict=False)
            .equals(before[table])
        ), table
    assert not any((settings.home / "staging").iterdir())  # expanded members are cleaned up


def _import_directly(tmp_path: Path, paths: list[Path], athlete: str = "carol", **limits) -> tuple[Warehouse, Lake]:
    lake, warehouse = Lake(tmp_path / "home"), Warehouse.embedded(tmp_path / "home")
    with expanded_sources(paths, athlete, tmp_path / "staging") as files:
        import_files(files, lake, warehouse)
    return warehouse, lake


def _lake_frame(warehouse: Warehouse, lake: Lake, frame: str) -> pl.DataFrame:
    frames = [lake.read_file(sha, pack).get(frame) for sha, pack in current_packs(warehouse).items()]
    return pl.concat([f for f in frames if f is not None], how="diagonal_relaxed")


@pytest.mark.parametrize("language", ["de", "fr", "nl", "es", "pt", "ja"])
def test_an_unpacked_strava_export_in_any_language_reads_like_the_english_zip(tmp_path, language):
    """Known headers are read by name, unknown ones (es, pt, ja) by Strava's column order; dates in
    each language's month names."""
    export = strava_export(tmp_path, language=language, zipped=False, weeks=1)
    warehouse, lake = _import_directly(tmp_path, [export.path])
    activities = _lake_frame(warehouse, lake, "activities").sort("name")
    expected = export.activities.sort("name")
    assert activities["name"].to_list() == expected["name"].to_list()
    assert activities["description"].to_list() == expected["description"].to_list()
    assert activities["platform_activity_id"].null_count() == 0
    manual = activities.filter(pl.col("records") == 0)
    if language in NAMED_LANGUAGES:
        assert activities["calories_kcal"].to_list() == expected["calories_kcal"].to_list()
    else:  # Calories' place in the table varies between exports: only its name tells it
        assert manual["calories_kcal"].to_list() == [None]
    if language in ("de", "nl"):  # activity types known in these languages
        assert manual["sport"].to_list() == ["walking"]
    assert manual["start_ts"].to_list() == [datetime(2024, 1, 3, 17, 0, tzinfo=UTC)]
    assert manual["distance_m"].to_list() == [2000.0] and manual["duration_s"].to_list() == [1800.0]
    weights = _lake_frame(warehouse, lake, "body_measurements").sort("ts")
    assert list(zip(weights["ts"], weights["weight_kg"])) == export.weights
    paths = warehouse.query("SELECT path FROM import_ledger")["path"].to_list()
    assert all(p.startswith(str(export.path) + "/") for p in paths) and not any("media" in p for p in paths)


def test_a_strava_table_in_an_unknown_language_and_order_is_explained_and_its_files_still_import(tmp_path):
    export = strava_export(tmp_path, language="es", zipped=False, weeks=1)
    table = pl.read_csv(export.path / "activities.csv", infer_schema=False)
    reordered = table.select(table.columns[2], table.columns[0], *table.columns[3:], table.columns[1])
    reordered.write_csv(export.path / "activities.csv")
    warehouse, _ = _import_directly(tmp_path, [export.path])
    ledger = warehouse.query("SELECT path, status, reason, activities FROM import_ledger")
    table_row = ledger.filter(pl.col("path").str.ends_with("activities.csv")).row(0, named=True)
    assert table_row["status"] == "failed"
    assert table_row["reason"].startswith("Strava activities.csv: no column holds activity ids and dates")
    files = ledger.filter(pl.col("path").str.contains("/activities/"))
    assert files.height == export.files and set(files["status"]) == {"ok"}


def test_a_garmin_export_names_its_fit_files_by_start_time(garmin):
    export, warehouse = garmin
    got = _labels(warehouse)
    expected = export.activities.sort("name")
    assert len(got) == export.files
    assert got["name"].to_list() == expected["name"].to_list()
    assert got["calories_kcal"].to_list() == expected["calories_kcal"].to_list()
    assert set(got["platform"]) == {"garmin"}
    ids = warehouse.query("SELECT platform_activity_id FROM activities")["platform_activity_id"]
    assert ids.null_count() == 0 and "1" not in ids.to_list()  # the summary without a file matches nothing


def test_garmin_weights_are_grams_turned_into_kilograms(garmin):
    export, warehouse = garmin
    got = warehouse.query("SELECT ts, weight_kg, source FROM body_measurements ORDER BY ts")
    assert list(zip(got["ts"], got["weight_kg"])) == export.weights
    assert set(got["source"]) == {"garmin"}
    ledger = warehouse.query("SELECT path FROM import_ledger")["path"].to_list()
    assert sum("UploadedFiles_0-_Part1.zip!" in p for p in ledger) == export.files  # nested zip members, one row each
    assert not any("user_profile.json" in p or "summarizedActivities" in p for p in ledger)


def test_an_older_garmin_export_keeps_its_fit_files_under_fitness(tmp_path):
    export = garmin_export(tmp_path, older_layout=True, weeks=1)
    warehouse, lake = _import_directly(tmp_path, [export.path])
    activities = _lake_frame(warehouse, lake, "activities").sort("name")
    assert activities["name"].to_list() == export.activities.sort("name")["name"].to_list()


def test_real_tcx_files_decode_with_their_reference_sample_counts():
    files = corpus_files("tcx")
    assert files, "no TCX files in the corpus manifest"
    for item in files:
        decoded = decode_tcx(item.path)
        assert len(decoded.records) == item.reference_records, item.path.name
        assert decoded.records["ts"].null_count() == 0 and decoded.records["lat_deg"].null_count() < len(
            decoded.records
        )
    hr = decode_tcx(next(f.path for f in files if f.path.name == "test.tcx")).records["heart_rate_bpm"]
    assert (
        hr.null_count() < len(hr)
        and decode_tcx(next(f.path for f in files if f.path.name == "no_hr.tcx")).records["heart_rate_bpm"].null_count()
        == 384
    )


def test_a_gzipped_file_of_any_format_imports_like_the_file(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    sources = {
        f.path.suffix: f.path
        for f in corpus_files()
        if f.expect == "ok" and f.path.name in ("test.tcx", "garmin-fenix-5-run.fit")
    }
    gpx = next(f for f in corpus_files("gpx", "ok") if f.reference_records and f.reference_records > 10)
    sources[".gpx"] = gpx.path
    for suffix, path in sources.items():
        (drop / f"run{suffix}.gz").write_bytes(gzip.compress(path.read_bytes()))
    warehouse, _ = _import_directly(tmp_path, [drop])
    ledger = warehouse.query("SELECT path, format, status, records FROM import_ledger ORDER BY path")
    assert ledger["status"].to_list() == ["ok"] * 3
    assert sorted(ledger["format"]) == ["fit", "gpx", "tcx"]
    expected = {
        f"run{s}.gz": next(f.reference_records for f in corpus_files() if f.path == p) for s, p in sources.items()
    }
    assert {Path(p).name: n for p, n in zip(ledger["path"], ledger["records"])} == expected


def test_a_body_measurement_csv_from_a_spreadsheet_gives_weights_and_body_fat(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "scale.csv").write_text(
        "Date,Weight (kg),Body Fat (%)\n2024-01-02,71.3,24.5\n2024-01-09 07:15,70.9,\nnot a date,70,\n"
    )
    (drop / "waage.csv").write_text("Datum;Gewicht;Körperfett\n16.01.2024;70,4;23,9\n", encoding="utf-8")
    (drop / "pounds.csv").write_text("date,weight_lb\n2024-01-20,154.0\n")
    warehouse, lake = _import_directly(tmp_path, [drop])
    assert set(warehouse.query("SELECT status FROM import_ledger")["status"]) == {"ok"}
    got = _lake_frame(warehouse, lake, "body_measurements").sort("ts")
    assert [str(ts)[:16] for ts in got["ts"]] == [
        "2024-01-02 00:00",
        "2024-01-09 07:15",
        "2024-01-16 00:00",
        "2024-01-20 00:00",
    ]
    assert got["weight_kg"].round(2).to_list() == [71.3, 70.9, 70.4, 69.85]
    assert got["body_fat_pct"].to_list()[:3] == [24.5, None, 23.9]
    assert set(got["source"]) == {"csv"}


def test_unreadable_export_tables_are_explained_and_the_activity_files_still_import(tmp_path):
    gpx = next(f.path for f in corpus_files("gpx", "ok") if f.path.name == "around-visnjan-with-car.gpx")
    strava_zip, garmin_zip = tmp_path / "export_1.zip", tmp_path / "garmin.zip"
    with zipfile.ZipFile(strava_zip, "w") as archive:
        archive.writestr("activities.csv", "Name,Something\nfoo,bar\n")
        archive.writestr("activities/1.gpx", gpx.read_bytes())
    with zipfile.ZipFile(garmin_zip, "w") as archive:
        archive.writestr("DI_CONNECT/DI-Connect-Fitness/x_0_summarizedActivities.json", "[{not json")
        archive.writestr("DI_CONNECT/DI-Connect-Wellness/1_userBioMetrics.json", '[{"weight": {"weight": 70000.0}}]')
    warehouse, _ = _import_directly(tmp_path, [strava_zip, garmin_zip])
    rows = {
        p.split("!", 1)[1]: (s, r)
        for p, s, r in warehouse.query("SELECT path, status, reason FROM import_ledger").iter_rows()
    }
    assert rows["activities/1.gpx"] == ("ok", None)
    assert (
        rows["activities.csv"][0] == "failed" and "no column holds activity ids and dates" in rows["activities.csv"][1]
    )
    summaries = rows["DI_CONNECT/DI-Connect-Fitness/x_0_summarizedActivities.json"]
    assert summaries[0] == "failed" and summaries[1].startswith("Garmin summarized activities is not valid JSON")
    assert (
        rows["DI_CONNECT/DI-Connect-Wellness/1_userBioMetrics.json"][0] == "ok"
    )  # a reading without a date is skipped, not fatal


@pytest.fixture(scope="module")
def watch_runs_and_an_export(tmp_path_factory) -> tuple[Path, Path, str, int]:
    """A watch's folder of FIT and GPX runs (enough forward runs for a gait baseline), and a Strava
    export holding the bytes of one of them, a run with unlabelled backward stretches, under a name
    that says it was backward intervals."""
    root = tmp_path_factory.mktemp("loose-then-export")
    folder, truth = generated(root, seed=7, weeks=2)
    run = truth.filter(pl.col("format") == "fit", pl.col("has_backward"), ~pl.col("labelled")).row(0, named=True)
    fit = folder / run["file"]
    row = _strava_row(
        "en",
        9_100_000_001,
        run["start_ts"],
        "Backward intervals",
        "Run",
        "8 x 200 m backward",
        "activities/777.fit",
        70.0,
        512.0,
        run["distance_m"],
    )
    export = root / "export_77.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr("activities.csv", _csv(STRAVA_HEADERS["en"], [row]))
        archive.writestr("activities/777.fit", fit.read_bytes())
    return folder, export, fit.name, len(truth)


def _import_in_order(root: Path, paths: list[Path]) -> Warehouse:
    settings = settings_for(root)
    with dg.instance_for_test() as instance:
        for path in paths:
            import_paths(settings, [path], athlete="alice", instance=instance)
    return Warehouse(settings.catalog)


def test_an_export_names_the_activity_of_its_file_imported_loose_before(watch_runs_and_an_export, tmp_path):
    watch, export, name, runs = watch_runs_and_an_export
    loose_first = _import_in_order(tmp_path / "a", [watch, export])
    ledger = loose_first.query("SELECT path, status, notes FROM import_ledger")
    copy = ledger.filter(pl.col("path").str.ends_with("!activities/777.fit")).row(0, named=True)
    assert copy["status"] == "duplicate" and copy["notes"].startswith("strava labels attached")
    sha = loose_first.query(f"SELECT sha256 FROM import_ledger WHERE path LIKE '%/{name}'")["sha256"][0]
    activity = loose_first.query(
        "SELECT activity_id, name, description, calories_kcal, platform, platform_activity_id FROM activities WHERE source_sha256 = ?",
        [sha],
    )
    assert activity.select(pl.exclude("activity_id")).rows() == [
        ("Backward intervals", "8 x 200 m backward", 512.0, "strava", "9100000001")
    ]
    total = loose_first.query("SELECT count(*) AS n FROM activities")["n"][0]
    assert total == runs  # no second activity for the export's copy
    evidence = loose_first.query(
        "SELECT count(*) AS n FROM segments WHERE activity_id = ? AND evidence LIKE '%label%'",
        [activity["activity_id"][0]],
    )["n"][0]
    assert evidence > 0  # the detector read the export's name once the month was published again

    export_first = _import_in_order(tmp_path / "b", [export, watch])
    for table, order in (
        ("activities", "activity_id"),
        ("segments", "activity_id, start_ts"),
        ("activity_energy", "activity_id"),
    ):
        a = loose_first.query(f"SELECT * FROM {table} ORDER BY {order}")
        b = export_first.query(f"SELECT * FROM {table} ORDER BY {order}")
        assert_frame_equal(
            a, b, rel_tol=1e-9, abs_tol=1e-9
        )  # float sums vary in their last bits (Polars adds in parallel)


MARTS = ["mileage_daily", "mileage_weekly", "backward_streaks", "outcomes_6wk"]


def test_a_strava_and_a_garmin_export_of_the_same_runs_give_the_same_marts_in_either_order(tmp_path):
    strava = strava_export(tmp_path / "strava", seed=3, weeks=3)
    garmin = garmin_export(tmp_path / "garmin", seed=3, weeks=3)
    homes = {
        order: _import_in_order(tmp_path / order, paths)
        for order, paths in {
            "strava first": [strava.path, garmin.path],
            "garmin first": [garmin.path, strava.path],
        }.items()
    }
    for warehouse in homes.values():
        ledger = dict(warehouse.query("SELECT status, count(*) AS n FROM import_ledger GROUP BY 1").iter_rows())
        assert ledger["duplicate"] == garmin.files  # the same bytes in both exports, decoded once
        canonical = warehouse.query("SELECT count(*) AS n FROM activities WHERE duplicate_of IS NULL")["n"][0]
        assert canonical == garmin.files + 2  # Strava adds its real TCX run and a manual entry
    first, second = homes.values()
    for mart in MARTS:
        a = first.query(f"SELECT * FROM {mart} ORDER BY ALL")
        b = second.query(f"SELECT * FROM {mart} ORDER BY ALL")
        assert len(a) > 0, mart
        assert_frame_equal(a, b, rel_tol=1e-9, abs_tol=1e-9)
