"""A damaged warehouse heals: imports refuse it with a sentence saying how, and `retrostride rebuild`
recreates it from the lake and the ledger copies kept there, with every row it had."""

from __future__ import annotations

import os
import shutil

import pytest

from benchmarks.checksum import table_checksums
from retrostride.pipelines.runs import import_paths, rebuild
from retrostride.warehouse.catalog import forget_engines
from retrostride.warehouse.rebuild import NoLedgerCopies
from retrostride.warehouse.store import Warehouse, WarehouseDamaged
from tests.conftest import CORPORA

FIT = CORPORA / "fit" / "python-fitparse"
GPX = CORPORA / "gpx" / "gpxpy" / "around-visnjan-with-car.gpx"


def test_a_truncated_warehouse_is_refused_with_a_remedy_and_rebuilt_with_every_row(settings, instance, tmp_path):
    drop = tmp_path / "drop" / "alice"
    drop.mkdir(parents=True)
    for name in ("activity-small-fenix2-run.fit", "garmin-fenix-5-run.fit"):
        shutil.copy(FIT / name, drop / name)
    shutil.copy(GPX, drop / "ride.gpx")
    (drop / "broken.fit").write_bytes(b"not a fit file")
    import_paths(settings, [drop.parent], instance=instance)
    warehouse = Warehouse(settings.catalog)
    before = table_checksums(warehouse)
    assert before["activities"][0] == 3 and before["import_ledger"][0] == 4

    catalog = settings.catalog.sqlite_file
    forget_engines(settings.catalog)  # as another process would find it: opened anew
    with open(catalog, "r+b") as handle:
        handle.truncate(os.path.getsize(catalog) // 3)
    with pytest.raises(
        WarehouseDamaged, match=r"cannot be opened .*; run `retrostride rebuild` to recreate it from the lake"
    ):
        import_paths(settings, [drop.parent], instance=instance)

    rebuilt, ranges = rebuild(settings, instance=instance)
    assert rebuilt.ledger_rows == 4 and rebuilt.kept_aside is not None and rebuilt.kept_aside.exists()
    after = table_checksums(warehouse)
    assert after == before  # every table, the ledger included
    assert warehouse.query("SELECT count(*) AS n FROM pending_days")["n"][0] == 0
    import_paths(settings, [drop.parent], instance=instance)  # and it goes on: nothing imported twice
    assert table_checksums(warehouse)["import_ledger"] == before["import_ledger"]


def test_a_deleted_warehouse_is_rebuilt_and_a_lake_without_ledger_copies_is_said_so(settings, instance, tmp_path):
    with pytest.raises(NoLedgerCopies, match="holds no copy of the ledger"):
        rebuild(settings, instance=instance)
    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(FIT / "activity-small-fenix2-run.fit", drop / "run.fit")
    import_paths(settings, [drop], instance=instance)
    before = table_checksums(Warehouse(settings.catalog))
    forget_engines(settings.catalog)
    settings.catalog.sqlite_file.unlink()
    rebuilt, _ = rebuild(settings, instance=instance)
    assert rebuilt.kept_aside is None and table_checksums(Warehouse(settings.catalog)) == before
