"""A full disk ends the import with one sentence naming the disk and the space needed, and leaves
nothing half-written: once there is room, the same import ends as an import that never ran short."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from retrostride.connectors.ingest.importer import import_files
from retrostride.connectors.sources import expanded_sources
from retrostride.warehouse.disk import DiskFull
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.store import Warehouse
from tests.conftest import CORPORA

BIG_FITS = [
    "activity-large-fenxi2-multisport.fit",
    "2019-02-17-062644-ELEMNT-297E-195-0.fit",
    "nick.fit",
    "garmin-edge-500-activity.fit",
    "coros-pace-2-cycling-misaligned-fields.fit",
]  # 2.8 MB


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs mounted at tmp_path/disk (skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def ledger_after_import(home: Path, drop: Path) -> list[tuple]:
    warehouse = Warehouse.embedded(home)
    with expanded_sources([drop], "eve", home / "staging") as sources:
        import_files(sources, Lake(home), warehouse)
    return warehouse.query("SELECT path, status, reason, records, activities FROM import_ledger ORDER BY path").rows()


def test_a_full_disk_stops_the_import_with_one_sentence_and_nothing_half_written(tmp_path, small_disk):
    drop = tmp_path / "drop"
    drop.mkdir()
    for name in BIG_FITS:
        shutil.copy(CORPORA / "fit" / "python-fitparse" / name, drop / name)
    home = small_disk / "home"
    with pytest.raises(DiskFull) as raised:
        ledger_after_import(home, drop)
    message = str(raised.value)
    assert (
        message.startswith(f"The disk at {small_disk} (holding ")
        and "MB free, about" in message
        and "\n" not in message
    )
    leftovers = [p for p in home.rglob(".*") if p.name not in (".", "..")]
    assert leftovers == []  # no temporary copy, no half-written pack
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    assert ledger_after_import(home, drop) == ledger_after_import(tmp_path / "clean", drop)
