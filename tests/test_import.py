"""Importing through Dagster: the ledger explains every file, the warehouse holds the rest, twice is once."""

import re
import shutil
import struct
from pathlib import Path

from retrostride.pipelines.runs import import_paths
from tests.conftest import CORPORA, corpus_files

FIT = CORPORA / "fit" / "python-fitparse"


def ledger(corpus, path: Path) -> dict:
    rows = corpus.warehouse.query("SELECT * FROM import_ledger WHERE path = ?", [str(path)])
    assert len(rows) == 1, f"{path} has {len(rows)} ledger rows"
    return rows.row(0, named=True)


def test_every_clean_file_is_imported_with_its_reference_sample_count(imported_corpus):
    for item in corpus_files(expect="ok"):
        if item.format not in ("fit", "gpx", "tcx"):
            continue
        row = ledger(imported_corpus, item.path)
        assert row["status"] in ("ok", "no_activity", "duplicate"), (item.path.name, row["reason"])
        if row["status"] != "duplicate":
            assert row["records"] == item.reference_records, item.path.name


def test_the_ledger_names_the_columnar_decoder_and_what_it_read_the_fit_sdk_way(imported_corpus):
    rows = [ledger(imported_corpus, item.path) for item in corpus_files("fit")]
    decoded = [row for row in rows if row["status"] in ("ok", "partial")]
    assert {row["decoder"] for row in decoded} == {"retrostride-columnar"}
    coros = next(row for row in rows if row["path"].endswith("coros-pace-2-cycling-misaligned-fields.fit"))
    assert (coros["status"], coros["records"]) == ("ok", 11272)  # fitparse would keep 1,785 and call it partial
    assert "read as uint8, as the FIT SDK does" in coros["notes"]


def test_a_file_the_columnar_decoder_cannot_read_is_decoded_by_fitparse_and_the_ledger_says_so(
    settings, instance, tmp_path
):
    from tests.test_fit_columnar import (
        FILE_ID,
        FILE_ID_DEF,
        FIT_2020,
        RECORD,
        RECORD_DEF,
        UINT16,
        UINT32,
        _data,
        _definition,
        _write,
    )

    records = [_data(1, struct.pack("<IB", FIT_2020 + i, 120)) for i in range(70)]
    odd = [
        _definition(2, RECORD, [(253, 4, UINT32), (3, 3, UINT16)]),
        _data(2, struct.pack("<I", FIT_2020 + 70) + bytes(3)),
    ]
    path = _write(tmp_path, [FILE_ID_DEF, FILE_ID, RECORD_DEF, *records, *odd])
    import_paths(settings, [path], athlete="alice", instance=instance)
    from retrostride.warehouse.store import Warehouse

    row = (
        Warehouse(settings.catalog)
        .query("SELECT decoder, status, records, notes FROM import_ledger")
        .row(0, named=True)
    )
    assert (row["decoder"], row["status"], row["records"]) == ("fitparse", "partial", 70)
    assert row["notes"].startswith("decoded by fitparse: the columnar decoder does not support field 3 of record")


def test_corrupt_files_are_rejected_with_a_reason_and_quarantined(imported_corpus):
    quarantine = imported_corpus.settings.home / "quarantine"
    for item in corpus_files(expect="error"):
        row = ledger(imported_corpus, item.path)
        assert row["status"] == "failed"
        assert row["reason"] and ("FIT" in row["reason"])
        copy = quarantine / f"{row['sha256'][:12]}-{item.path.name}"
        assert copy.read_bytes() == item.path.read_bytes()
        assert Path(f"{copy}.reason.txt").read_text().strip() == row["reason"]


def test_damaged_files_are_partial_with_a_reason_and_their_samples_published(imported_corpus):
    for item in corpus_files(expect="recoverable"):
        row = ledger(imported_corpus, item.path)
        if "FIT SDK" in (row["notes"] or ""):  # damaged for fitparse only: read whole, as the SDK does
            assert row["status"] == "ok"
        else:
            assert row["status"] == "partial" and "at byte" in row["reason"]
        published = imported_corpus.warehouse.query(
            "SELECT count(*) AS n FROM records r JOIN activities a USING (activity_id) WHERE a.source_sha256 = ?",
            [row["sha256"]],
        )["n"][0]
        cleaned = re.findall(r"ts: (\d+) sample\(s\) [^;]*(?:dropped|merged into it)", row["notes"] or "")
        assert published == row["records"] - sum(int(n) for n in cleaned)


def test_published_tables_agree_with_the_ledger(imported_corpus):
    wh = imported_corpus.warehouse
    placed = wh.query("SELECT sum(records) AS n FROM activities")["n"][0]
    assert wh.query("SELECT count(*) AS n FROM records")["n"][0] == placed
    orphans = wh.query(
        "SELECT count(*) AS n FROM records WHERE activity_id NOT IN (SELECT activity_id FROM activities)"
    )
    assert orphans["n"][0] == 0
    assert wh.query("SELECT count(*) AS n FROM activities WHERE athlete_id <> 'corpus'")["n"][0] == 0
    assert wh.query("SELECT count(*) AS n FROM body_measurements")["n"][0] >= 4  # the two weight-scale files


def test_files_outside_the_calendar_are_kept_but_explained(imported_corpus):
    row = ledger(imported_corpus, next(f.path for f in corpus_files("gpx") if f.path.name == "Mojstrovka.gpx"))
    assert row["status"] == "ok" and "not placed on a day" in row["notes"]


def test_reimporting_changes_nothing(imported_corpus, instance):
    wh = imported_corpus.warehouse
    tables = ["import_ledger", "activities", "records", "laps", "body_measurements"]
    before = {t: wh.query(f"SELECT * FROM {t} ORDER BY ALL").drop("imported_at", strict=False) for t in tables}
    files = [f.path for f in corpus_files() if f.format in ("fit", "gpx", "tcx")]
    ranges = import_paths(imported_corpus.settings, files, athlete="corpus", instance=instance)
    assert ranges == []
    for table in tables:
        after = wh.query(f"SELECT * FROM {table} ORDER BY ALL").drop("imported_at", strict=False)
        assert after.equals(before[table]), table


def test_a_copy_under_another_name_is_a_duplicate(settings, instance, tmp_path):
    original = FIT / "activity-small-fenix2-run.fit"
    inbox = tmp_path / "drop" / "alice"
    inbox.mkdir(parents=True)
    shutil.copy(original, inbox / "run.fit")
    shutil.copy(original, inbox / "same-run-renamed.fit")
    import_paths(settings, [tmp_path / "drop"], instance=instance)
    from retrostride.warehouse.store import Warehouse

    wh = Warehouse(settings.catalog)
    statuses = wh.query("SELECT status, athlete_id FROM import_ledger ORDER BY path")
    assert statuses["status"].to_list() == ["ok", "duplicate"]
    assert statuses["athlete_id"].unique().to_list() == ["alice"]  # the inbox folder names the athlete
    assert wh.query("SELECT count(*) AS n FROM activities")["n"][0] == 1


def test_a_bad_file_does_not_stop_its_batch(settings, instance, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "empty.fit").write_bytes(b"")
    (drop / "notes.txt").write_text("hello")
    (drop / "half.fit").write_bytes((FIT / "activity-small-fenix2-run.fit").read_bytes()[:5000])
    shutil.copy(FIT / "garmin-fenix-5-run.fit", drop / "good.fit")
    import_paths(settings, [drop], instance=instance)
    from retrostride.warehouse.store import Warehouse

    rows = Warehouse(settings.catalog).query("SELECT path, status, reason FROM import_ledger")
    by_name = {Path(p).name: (s, r) for p, s, r in rows.iter_rows()}
    assert by_name["good.fit"][0] == "ok"
    assert by_name["empty.fit"] == ("failed", "empty file (0 bytes)")
    assert by_name["notes.txt"][0] == "failed" and "unsupported format" in by_name["notes.txt"][1]
    assert by_name["half.fit"][0] in ("failed", "partial") and "truncated" in by_name["half.fit"][1]


def test_the_definitions_load_and_show_the_asset_graph():
    from retrostride.pipelines.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"source_files", "activities", "records", "laps", "body_measurements", "mileage_weekly"} <= keys
    assert {"import_files", "publish", "marts"} <= {j.name for j in defs.resolve_all_job_defs()}


def test_pure_modules_never_import_dagster():
    root = Path(__file__).resolve().parents[1]
    pure = [*root.glob("connectors/**/*.py"), *root.glob("warehouse/**/*.py"), *root.glob("assets/transforms/**/*.py")]
    offenders = [str(p.relative_to(root)) for p in pure if "import dagster" in p.read_text()]
    assert offenders == []
