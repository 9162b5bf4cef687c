"""The lake keeps decoded frames in packs (one per decoder batch); the ledger says which pack holds
each file's current rows, so a file decoded again, relabelled or kept from before packs is published once."""

from __future__ import annotations

import os
import shutil
import time
from datetime import date
from pathlib import Path

import polars as pl

from retrostride.connectors.ingest.importer import import_files
from retrostride.connectors.sources import SourceFile
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.packs import current_packs
from retrostride.warehouse.publish import publish_days
from retrostride.warehouse.store import Warehouse
from tests.conftest import CORPORA

FIT = CORPORA / "fit" / "python-fitparse"
RUNS = [FIT / "20170518-191602-1740899583.fit", FIT / "garmin-fenix-5-run.fit", FIT / "garmin-fenix-5-walk.fit"]
TABLES = ("activities", "records", "laps", "developer_fields")


def _import(home: Path, paths: list[Path]) -> tuple[Lake, Warehouse]:
    lake, warehouse = Lake(home), Warehouse.embedded(home)
    import_files([SourceFile(path=p, athlete_id="ann") for p in paths], lake, warehouse, workers=1)
    publish_days(warehouse, lake, date(2000, 1, 1), date(2030, 1, 1))
    return lake, warehouse


def _published(warehouse: Warehouse) -> dict[str, int]:
    return {table: warehouse.query(f"SELECT count(*) AS n FROM {table}")["n"][0] for table in TABLES}


def _age(folder: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(folder, (old, old))


def test_one_decoder_batch_is_one_pack_named_in_the_ledger(tmp_path):
    lake, warehouse = _import(tmp_path, RUNS)
    packs = current_packs(warehouse)
    assert len(packs) == 3 and len(set(packs.values())) == 1
    [pack] = set(packs.values())
    assert sorted(p.name for p in lake.pack_dir(pack).iterdir()) == [
        "activities.parquet",
        "developer_fields.parquet",  # the first run's records carry developer fields
        "laps.parquet",
        "records.parquet",
    ]
    ledger = warehouse.query("SELECT sha256, records FROM import_ledger")
    for sha, records in ledger.iter_rows():
        assert len(lake.read_file(sha, pack)["records"]) == records  # each file's own rows, none of the others'
    assert _published(warehouse)["records"] == ledger["records"].sum()


def test_a_file_decoded_again_after_a_killed_import_is_published_once(tmp_path):
    lake, warehouse = _import(tmp_path, RUNS)
    before = _published(warehouse)
    [pack] = set(current_packs(warehouse).values())
    # killed before its ledger row was written: the pack stays, the next run decodes the file again
    with warehouse.transaction() as connection:
        connection.execute("DELETE FROM import_ledger WHERE path = ?", [str(RUNS[1])])
    _import(tmp_path, RUNS)
    packs = current_packs(warehouse)
    assert len(set(packs.values())) == 2 and lake.pack_dir(pack).exists()  # the old pack still holds the others
    assert _published(warehouse) == before  # the file's rows in the old pack are not read


def test_packs_no_current_rows_are_in_go_once_old(tmp_path):
    lake, warehouse = _import(tmp_path, RUNS[:1])
    [kept] = set(current_packs(warehouse).values())
    orphan = lake.pack_dir(
        lake.write_pack({"records": lake.read_file(*next(iter(current_packs(warehouse).items())))["records"]})
    )
    fresh = lake.pack_dir(
        lake.write_pack({"laps": lake.read_file(*next(iter(current_packs(warehouse).items())))["laps"]})
    )
    _age(orphan, 7200)
    _age(lake.pack_dir(kept), 7200)
    _import(tmp_path, RUNS[1:2])
    assert not orphan.exists()  # a leftover of a killed import
    assert fresh.exists()  # may be an import running now, whose ledger rows are not written yet
    assert lake.pack_dir(kept).exists()
    assert _published(warehouse)["records"] == warehouse.query("SELECT sum(records) AS n FROM import_ledger")["n"][0]


def test_a_home_from_before_packs_still_publishes(tmp_path):
    lake, warehouse = _import(tmp_path, RUNS)
    before = _published(warehouse)
    [pack] = set(current_packs(warehouse).values())
    for sha in current_packs(warehouse):  # the old layout: a folder per file, named by its sha256
        target = lake.pack_dir(sha)
        target.mkdir(parents=True)
        for name, frame in lake.read_file(sha, pack).items():
            frame.write_parquet(target / f"{name}.parquet")
    shutil.rmtree(lake.pack_dir(pack))
    with warehouse.transaction() as connection:
        connection.execute("UPDATE import_ledger SET lake_pack = NULL")
    with warehouse.transaction() as connection:
        for table in TABLES:
            connection.execute(f"DELETE FROM {table}")
    publish_days(warehouse, lake, date(2000, 1, 1), date(2030, 1, 1))
    assert _published(warehouse) == before


def test_a_batch_without_rows_writes_no_pack(tmp_path):
    lake = Lake(tmp_path)
    assert lake.write_pack({"records": pl.DataFrame(), "laps": pl.DataFrame()}) is None
    assert not lake.decoded_root.exists()


def test_masked_publishing_reads_whole_packs_a_few_at_a_time():
    from retrostride.warehouse.publish import _chunks

    files = pl.DataFrame({"path": ["a", "a", "b", "c", "c", "c"], "sha256": ["1", "2", "3", "4", "5", "6"]})
    chunks = [chunk["sha256"].to_list() for chunk in _chunks(files, 3)]
    assert chunks == [["1", "2", "3"], ["4", "5", "6"]]
    assert [chunk["sha256"].to_list() for chunk in _chunks(files, 1)] == [["1", "2"], ["3"], ["4", "5", "6"]]


def test_leftovers_of_a_killed_import_are_swept_once_old(tmp_path):
    lake = Lake(tmp_path)
    staging = lake.decoded_root / "ab" / ".abcdef"  # a pack being written
    staging.mkdir(parents=True)
    (staging / "records.parquet").write_bytes(b"half")
    copy = lake.home / "raw" / "ab" / ".abcdef.fit.0123"  # a raw copy being written
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"half")
    recent = lake.decoded_root / "cd" / ".cdef"
    recent.mkdir(parents=True)
    _age(staging, 7200)
    _age(copy, 7200)
    assert lake.sweep() == 2
    assert not staging.exists() and not copy.exists() and recent.exists()
