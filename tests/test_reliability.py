"""Every bad file is explained and contained; absurd values are cleaned and noted; limits are settings."""

import os
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from retrostride.assets.settings import ConfigError, load_limits
from retrostride.connectors.fit import decode_fit
from retrostride.connectors.ingest.importer import ImportLimits, import_files
from retrostride.connectors.sources import SourceFile
from retrostride.connectors.validate import PLAUSIBLE, plausible_ranges, validate
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.schema import FILE_BODY_MEASUREMENTS, FILE_RECORDS, DecodedFile
from retrostride.warehouse.store import Warehouse
from tests.conftest import CORPORA

FIT = CORPORA / "fit" / "python-fitparse"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def faulty_fit_decoder(tmp_path, monkeypatch):
    """Decoder processes started from now on decode FIT files with tests/faulty_decoders.py: a
    `sitecustomize` on their PYTHONPATH swaps the decoder in each new interpreter (the importer's
    workers are spawned), so the real importer supervises a decoder that hangs or crashes."""
    hook = tmp_path / "faulty-hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import retrostride.connectors.formats as formats\n"
        "from tests.faulty_decoders import decode\n"
        "_real = formats.decoder_for\n"
        "def decoder_for(*args, **kwargs):\n"
        "    fmt, found = _real(*args, **kwargs)\n"
        "    return fmt, decode if fmt == 'fit' else found\n"
        "formats.decoder_for = decoder_for\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), str(ROOT)]))


def ledger(home: Path) -> dict[str, dict]:
    rows = Warehouse.embedded(home).query("SELECT * FROM import_ledger")
    return {Path(r["path"]).name: r for r in rows.iter_rows(named=True)}


SMALL_RUNS = [
    "garmin-fenix-5-run.fit",
    "garmin-fenix-5-walk.fit",
    "garmin-fenix-5-bike.fit",
    "garmin-edge-820-bike.fit",
    "2015-10-13-08-43-15.fit",
    "activity-settings.fit",
    "Activity.fit",
]


def copies(folder: Path, *names: str) -> list[SourceFile]:
    """Clean corpus files (each a different one) under the given names."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in zip(names, SMALL_RUNS, strict=False):
        shutil.copy(FIT / source, folder / name)
    return [SourceFile(folder / n, "ann") for n in names]


def test_a_hanging_or_crashing_decoder_costs_only_its_own_file(tmp_path, faulty_fit_decoder):
    home = tmp_path / "home"
    files = copies(tmp_path / "drop", "a.fit", "hang.fit", "b.fit", "segfault.fit", "c.fit", "exit.fit", "d.fit")
    summary = import_files(
        files, Lake(home), Warehouse.embedded(home), workers=2, limits=ImportLimits(decode_timeout_s=10)
    )  # roomy: a busy machine is slow to start workers
    rows = ledger(home)
    for name in ("a.fit", "b.fit", "c.fit", "d.fit"):
        assert rows[name]["status"] == "ok", rows[name]["reason"]
    assert rows["hang.fit"]["status"] == "failed" and rows["hang.fit"]["reason"].startswith(
        "decoder timed out after 10 s"
    )
    assert rows["segfault.fit"]["reason"].startswith("decoder process died (killed by SIGSEGV")
    assert rows["exit.fit"]["reason"].startswith("decoder process died (exit code 3")
    for name in ("hang.fit", "segfault.fit", "exit.fit"):
        assert (home / "quarantine" / f"{rows[name]['sha256'][:12]}-{name}").exists()
    assert summary.count("ok") == 4 and summary.count("failed") == 3


def test_a_decoder_bug_in_a_batch_fails_only_its_own_file(tmp_path, faulty_fit_decoder):
    """Files are checked in batches after decoding; frames that break that step fail their own file."""
    home = tmp_path / "home"
    files = copies(tmp_path / "drop", "a.fit", "badframes.fit", "b.fit")
    summary = import_files(files, Lake(home), Warehouse.embedded(home))
    rows = ledger(home)
    assert rows["a.fit"]["status"] == rows["b.fit"]["status"] == "ok"
    assert rows["badframes.fit"]["status"] == "failed" and rows["badframes.fit"]["reason"].startswith(
        "decoder crashed: an internal error"
    )
    assert (
        "Error" not in rows["badframes.fit"]["reason"] and "Error" in rows["badframes.fit"]["notes"]
    )  # the exception: in notes
    assert summary.count("ok") == 2 and summary.records == rows["a.fit"]["records"] + rows["b.fit"]["records"]


def test_files_that_failed_for_the_machine_are_tried_again(tmp_path, faulty_fit_decoder, monkeypatch):
    home = tmp_path / "home"
    files = copies(tmp_path / "drop", "hang.fit", "ok.fit")
    warehouse = Warehouse.embedded(home)
    import_files(files, Lake(home), warehouse, limits=ImportLimits(decode_timeout_s=10))
    monkeypatch.delenv("PYTHONPATH")  # the real decoder from now on
    renamed = tmp_path / "drop" / "hang.fit"
    again = import_files(files, Lake(home), warehouse, limits=ImportLimits(decode_timeout_s=60))  # fitparse this time
    assert {Path(o.path).name: o.status for o in again.outcomes} == {"hang.fit": "ok", "ok.fit": "skipped"}
    rows = warehouse.query("SELECT path, status FROM import_ledger ORDER BY path").rows()
    assert rows == [(str(renamed), "ok"), (str(tmp_path / "drop" / "ok.fit"), "ok")]  # one row per file, the new one


def test_a_file_over_the_size_limit_is_refused_with_a_reason_until_the_limit_allows_it(tmp_path):
    home = tmp_path / "home"
    files = copies(tmp_path / "drop", "big.fit")
    warehouse = Warehouse.embedded(home)
    import_files(files, Lake(home), warehouse, limits=ImportLimits(max_file_bytes=1000))
    row = ledger(home)["big.fit"]
    assert row["status"] == "failed" and "over the 1000-byte limit" in row["reason"]
    import_files(files, Lake(home), warehouse)
    assert ledger(home)["big.fit"]["status"] == "ok"


def test_limits_and_plausible_ranges_come_from_retrostride_toml(tmp_path):
    config = tmp_path / "retrostride.toml"
    assert load_limits(config) == ImportLimits()
    config.write_text("[import]\nmax_file_mb = 2\ndecode_timeout_s = 30\n[plausible]\nheart_rate_bpm = [30, 220]\n")
    limits = load_limits(config)
    assert limits.max_file_bytes == 2 * 2**20 and limits.decode_timeout_s == 30
    assert limits.plausible["heart_rate_bpm"] == (30.0, 220.0) and limits.plausible["lat_deg"] == PLAUSIBLE["lat_deg"]
    config.write_text("[plausible]\nheart_rate = [30, 220]\n")
    with pytest.raises(ConfigError, match="heart_rate: not a checked column"):
        load_limits(config)
    with pytest.raises(ValueError, match="above high"):
        plausible_ranges({"speed_mps": [5, 1]})


def _file(records: dict, body: dict | None = None) -> DecodedFile:
    n = len(next(iter(records.values())))
    frame = pl.DataFrame({"session": [0] * n, **records}).cast({"session": pl.Int32})
    frame = frame.with_columns(pl.col(c).cast(t) for c, t in FILE_RECORDS.items() if c in frame.columns)
    full = pl.DataFrame(schema=FILE_RECORDS).vstack(
        frame.select([pl.col(c) if c in frame.columns else pl.lit(None, t).alias(c) for c, t in FILE_RECORDS.items()])
    )
    bodies = pl.DataFrame(schema=FILE_BODY_MEASUREMENTS)
    if body:
        b = pl.DataFrame(body)
        bodies = bodies.vstack(
            b.select(
                [
                    pl.col(c).cast(t) if c in b.columns else pl.lit(None, t).alias(c)
                    for c, t in FILE_BODY_MEASUREMENTS.items()
                ]
            )
        )
    return DecodedFile("fit", "test", "0", records=full, body_measurements=bodies)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_absurd_values_are_nulled_and_counted_in_the_notes():
    decoded = _file(
        {
            "ts": [utc(2024, 5, 1, 10, 0, s) for s in range(5)],
            "lat_deg": [52.0, 400.0, 52.0, 52.0, float("nan")],
            "lon_deg": [13.0, 13.0, 13.0, 13.0, 13.0],
            "heart_rate_bpm": [140.0, 2000.0, 141.0, None, 142.0],
            "speed_mps": [3.0, 3.0, 200.0, 3.0, float("inf")],
            "distance_m": [0.0, 3.0, -6.0, 9.0, 12.0],
        }
    )
    cleaned, notes = validate(decoded, latest=date(2026, 12, 31))
    records = cleaned.records
    assert records["lat_deg"].to_list() == [52.0, None, 52.0, 52.0, None]
    assert records["lon_deg"].to_list() == [13.0, None, 13.0, 13.0, None]  # a position goes whole
    assert records["heart_rate_bpm"].to_list() == [140.0, None, 141.0, None, 142.0]
    assert records["speed_mps"].to_list() == [3.0, 3.0, None, 3.0, None]
    assert records["distance_m"].to_list() == [0.0, 3.0, None, 9.0, 12.0]
    assert set(notes) == {
        "lat_deg: 2 value(s) outside -90..90 nulled (with their lon_deg)",
        "heart_rate_bpm: 1 value(s) outside 25..250 nulled",
        "speed_mps: 2 value(s) outside 0..50 nulled",
        "distance_m: 1 value(s) outside 0..2e+06 nulled",
    }


def test_stray_dates_are_dropped_but_an_activity_wholly_out_of_range_is_kept_for_the_ledger_note():
    stray = _file({"ts": [utc(2024, 5, 1, 10), utc(2100, 1, 1), utc(2024, 5, 1, 10, 0, 1), utc(1970, 1, 1)]})
    cleaned, notes = validate(stray, latest=date(2026, 12, 31))
    assert cleaned.records["ts"].to_list() == [utc(2024, 5, 1, 10), utc(2024, 5, 1, 10, 0, 1)]
    assert notes == ["ts: 2 sample(s) dated outside 1990-01-01..2026-12-31 dropped"]
    reset = _file({"ts": [utc(1970, 1, 1, 0, 0, s) for s in range(3)]})
    cleaned, notes = validate(reset, latest=date(2026, 12, 31))
    assert cleaned.records.height == 3 and notes == []


def test_absurd_body_measurements_are_nulled_and_misdated_ones_dropped():
    decoded = _file(
        {"ts": [utc(2024, 5, 1)]},
        body={
            "ts": [utc(2024, 5, 1), utc(2024, 5, 2), utc(1970, 1, 1)],
            "weight_kg": [61.5, 6150.0, 60.0],
            "body_fat_pct": [22.0, 22.0, 130.0],
        },
    )
    cleaned, notes = validate(decoded, latest=date(2026, 12, 31))
    assert cleaned.body_measurements["weight_kg"].to_list() == [61.5, None]
    assert "body measurements: 1 dated outside 1990-01-01..2026-12-31 dropped" in notes
    assert "body measurement weight_kg: 1 value(s) outside 10..400 nulled" in notes


def test_the_corpus_is_left_almost_untouched_by_the_plausibility_step():
    """Real files hold real values: cleaning is the exception, and what it cleans is named."""
    decoded = decode_fit(FIT / "activity-small-fenix2-run.fit")
    cleaned, notes = validate(decoded)
    assert notes == [] and cleaned.records.equals(decoded.records)


def test_a_gpx_point_off_the_globe_is_nulled_without_bending_the_track(tmp_path):
    from retrostride.connectors.gpx import decode_gpx

    points = "".join(
        f'<trkpt lat="{lat}" lon="13.0"><time>2024-05-01T10:00:0{i}Z</time></trkpt>'
        for i, lat in enumerate(["52.0", "400.0", "52.00001", "52.00002"])
    )
    path = tmp_path / "run.gpx"
    path.write_text(
        f'<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>{points}</trkseg></trk></gpx>'
    )
    cleaned, notes = validate(decode_gpx(path), latest=date(2026, 12, 31))
    assert cleaned.records["lat_deg"].null_count() == 1
    assert cleaned.records["distance_m"].max() < 3.0  # 2.2 m, not a trip to latitude 400
    assert notes == ["lat_deg: 1 value(s) outside -90..90 nulled (with their lon_deg)"]


def test_two_imports_of_the_same_file_at_once_leave_one_ledger_row(tmp_path):
    """The second import read the ledger before the first committed: the first commit keeps its row."""
    home = tmp_path / "home"
    files = copies(tmp_path / "drop", "run.fit")
    warehouse = Warehouse.embedded(home)

    def listed_while_another_import_commits():
        import_files(files, Lake(home), warehouse)  # the other import, between this one's ledger read and its commit
        yield from files

    late = import_files(listed_while_another_import_commits(), Lake(home), warehouse)
    assert [o.status for o in late.outcomes] == ["ok"]  # it could not know: it decoded the file too
    rows = warehouse.query("SELECT path, status FROM import_ledger").rows()
    assert rows == [(str(tmp_path / "drop" / "run.fit"), "ok")]
