"""Hostile input is refused with a specific reason and a quarantine copy, and the batch goes on:
zip bombs, deep nesting, path traversal, absolute paths, symbolic links, huge files, XML entities."""

from __future__ import annotations

import io
import os
import shutil
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from retrostride.assets.settings import load_limits
from retrostride.connectors.ingest.importer import ImportLimits, import_files
from retrostride.connectors.limits import MIB, IntakeLimits
from retrostride.connectors.sources import expanded_sources
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.store import Warehouse
from tests.conftest import CORPORA

GOOD_FIT = CORPORA / "fit" / "python-fitparse" / "activity-small-fenix2-run.fit"
OTHER_FIT = CORPORA / "fit" / "python-fitparse" / "2013-02-06-12-11-14.fit"
GOOD_GPX = CORPORA / "gpx" / "gpxpy" / "around-visnjan-with-car.gpx"  # small: every batch has one good file
SMALL = IntakeLimits(
    max_file_bytes=2 * MIB,
    max_archive_bytes=4 * MIB,
    max_ratio=50,
    ratio_floor_bytes=256 * 1024,
    max_depth=3,
    max_members=50,
)


def zip_bytes(members: dict[str, bytes], **infos) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = infos.get(name) or zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def run_import(tmp_path: Path, files: dict[str, bytes], limits: IntakeLimits = SMALL) -> dict[str, dict]:
    """Import a drop folder holding `files` plus one good GPX file; ledger rows by path inside the drop."""
    drop = tmp_path / "drop"
    drop.mkdir(parents=True, exist_ok=True)
    shutil.copy(GOOD_GPX, drop / "good.gpx")
    for name, data in files.items():
        (drop / name).write_bytes(data)
    lake, warehouse = Lake(tmp_path / "home"), Warehouse.embedded(tmp_path / "home")
    with expanded_sources([drop], "eve", tmp_path / "staging", limits) as sources:
        import_files(
            sources, lake, warehouse, limits=ImportLimits(max_file_bytes=limits.max_file_bytes, archives=limits)
        )
    rows = warehouse.query("SELECT * FROM import_ledger").to_dicts()
    by_path = {row["path"].removeprefix(str(drop) + "/"): row for row in rows}
    assert by_path["good.gpx"]["status"] == "ok"  # the batch went on
    return by_path


def quarantined(tmp_path: Path, row: dict, name: str) -> Path:
    copy = tmp_path / "home" / "quarantine" / f"{row['sha256'][:12]}-{name}"
    assert copy.exists() or copy.is_symlink(), f"no quarantine copy {copy.name}"
    assert Path(f"{copy}.reason.txt").read_text().startswith(row["reason"])
    return copy


def test_a_zip_bomb_is_refused_by_its_compression_ratio(tmp_path):
    rows = run_import(tmp_path, {"bomb.zip": zip_bytes({"run.fit": b"\0" * (2 * MIB - 1)})})
    row = rows["bomb.zip!run.fit"]
    assert row["status"] == "failed" and row["reason"].startswith("refused: compression ratio over 50:1")
    assert quarantined(tmp_path, row, "run.fit").stat().st_size <= MIB  # only the start of the expansion is kept


def test_an_archive_past_its_total_size_is_refused_member_by_member(tmp_path):
    chunk = os.urandom(1_500_000)  # incompressible: ratio 1, each under the file limit
    rows = run_import(tmp_path, {"big.zip": zip_bytes({f"part{i}.fit": chunk for i in range(4)})})
    statuses = {name: rows[name]["reason"] or "" for name in rows if name.startswith("big.zip!")}
    assert len(statuses) == 4
    refused = [n for n, reason in statuses.items() if "archive expands past its total limit of 4194304 bytes" in reason]
    assert refused == ["big.zip!part2.fit", "big.zip!part3.fit"]
    quarantined(tmp_path, rows["big.zip!part2.fit"], "part2.fit")
    assert statuses["big.zip!part3.fit"].endswith("(member not read)")  # the archive is refused as a whole by then


def test_a_member_that_lies_about_its_size_is_measured_not_believed(tmp_path):
    data = bytearray(zip_bytes({"run.fit": b"\0" * (3 * MIB)}))
    struct.pack_into("<I", data, data.find(b"PK\x03\x04") + 22, 100)  # declared size: 100 bytes
    struct.pack_into("<I", data, data.find(b"PK\x01\x02") + 24, 100)
    row = run_import(tmp_path, {"liar.zip": bytes(data)})["liar.zip!run.fit"]
    assert row["status"] == "failed" and row["reason"].startswith(("refused:", "damaged archive member"))


def test_a_member_over_the_file_limit_is_refused(tmp_path):
    row = run_import(tmp_path, {"huge.zip": zip_bytes({"huge.gpx": os.urandom(3 * MIB)})})["huge.zip!huge.gpx"]
    assert row["reason"].startswith("refused: expands past the 2097152-byte file limit")


def test_a_huge_loose_file_is_refused_and_only_its_start_quarantined(tmp_path):
    rows = run_import(tmp_path, {"huge.fit": GOOD_FIT.read_bytes() + os.urandom(3 * MIB)})
    row = rows["huge.fit"]
    assert (
        row["status"] == "failed"
        and row["reason"].startswith("refused: file is")
        and "over the 2097152-byte limit" in row["reason"]
    )
    assert quarantined(tmp_path, row, "huge.fit").stat().st_size == MIB


def test_archives_nested_too_deep_are_refused(tmp_path):
    nested = OTHER_FIT.read_bytes()
    for level in range(4):
        nested = zip_bytes({f"level{level}.zip" if level else "deep.fit": nested})
    rows = run_import(tmp_path, {"deep.zip": nested})
    [row] = [r for name, r in rows.items() if name.startswith("deep.zip!")]
    assert row["path"].endswith("deep.zip!level3.zip!level2.zip!level1.zip")
    assert row["reason"] == "refused: zip nested more than 3 levels deep"
    two_deep = run_import(
        tmp_path / "ok", {"two.zip": zip_bytes({"inner.zip": zip_bytes({"run.fit": OTHER_FIT.read_bytes()})})}
    )
    assert two_deep["two.zip!inner.zip!run.fit"]["status"] == "ok"


@pytest.mark.parametrize(
    "name, reason",
    [
        ("../../escaped.fit", "refused: path traversal ('..') in archive member name"),
        ("/etc/cron.d/escaped.fit", "refused: absolute path in archive member name"),
        ("C:\\Windows\\escaped.fit", "refused: absolute path in archive member name"),
    ],
)
def test_members_that_point_outside_the_archive_are_refused(tmp_path, name, reason):
    rows = run_import(
        tmp_path, {"evil.zip": zip_bytes({name: GOOD_FIT.read_bytes(), "fine.fit": OTHER_FIT.read_bytes()})}
    )
    row = rows[f"evil.zip!{name}"]
    assert (row["status"], row["reason"]) == ("failed", reason)
    assert quarantined(tmp_path, row, Path(name.replace("\\", "/")).name).read_bytes() == GOOD_FIT.read_bytes()
    assert rows["evil.zip!fine.fit"]["status"] == "ok"  # the archive went on
    assert not (tmp_path.parent / "escaped.fit").exists() and not Path("/etc/cron.d/escaped.fit").exists()


def test_a_symbolic_link_inside_an_archive_is_refused(tmp_path):
    link = zipfile.ZipInfo("run.fit")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    row = run_import(tmp_path, {"links.zip": zip_bytes({"run.fit": b"/etc/passwd"}, **{"run.fit": link})})[
        "links.zip!run.fit"
    ]
    assert row["reason"] == "refused: symbolic link inside the archive (only regular files are imported)"
    assert quarantined(tmp_path, row, "run.fit").read_bytes() == b"/etc/passwd"


def test_symbolic_links_in_folders_are_refused_visibly(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(GOOD_FIT, outside / "secret.fit")
    drop = tmp_path / "drop"
    drop.mkdir()
    os.symlink(outside / "secret.fit", drop / "linked.fit")
    os.symlink(outside, drop / "linked-folder")
    rows = run_import(tmp_path, {})
    for name in ("linked.fit", "linked-folder"):
        assert rows[name]["status"] == "failed" and rows[name]["reason"].startswith("refused: symbolic link to ")
        assert quarantined(tmp_path, rows[name], name).is_symlink()  # the link itself, never what it points to
    assert not any("secret.fit" in path for path in rows)


@pytest.mark.parametrize(
    "suffix, root",
    [
        ("gpx", '<gpx version="1.1" creator="x">&lol9;</gpx>'),
        ("tcx", "<TrainingCenterDatabase>&lol9;</TrainingCenterDatabase>"),
    ],
)
def test_xml_entity_expansion_is_refused(tmp_path, suffix, root):
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10)
    )
    bomb = f'<?xml version="1.0"?>\n<!DOCTYPE lolz [{entities}]>\n{root}'.encode()
    external = f'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n{root.replace("&lol9;", "&xxe;")}'.encode()
    rows = run_import(tmp_path, {f"laughs.{suffix}": bomb, f"external.{suffix}": external})
    for name in (f"laughs.{suffix}", f"external.{suffix}"):
        assert rows[name]["status"] == "failed"
        assert "refused" in rows[name]["reason"] and "DTDs and entities are not allowed" in rows[name]["reason"]
        quarantined(tmp_path, rows[name], name)


def test_an_archive_with_too_many_entries_or_a_damaged_one_is_refused_whole(tmp_path):
    many = zip_bytes({f"f{i}.fit": b"x" for i in range(60)})
    rows = run_import(tmp_path, {"many.zip": many, "broken.zip": b"PK\x03\x04" + os.urandom(200)})
    assert rows["many.zip"]["reason"] == "refused: archive has 60 entries, over the 50-entry limit"
    assert rows["broken.zip"]["reason"].startswith("damaged zip archive")
    quarantined(tmp_path, rows["broken.zip"], "broken.zip")


def test_refusals_are_not_repeated_when_the_same_drop_is_imported_again(tmp_path):
    files = {"bomb.zip": zip_bytes({"run.fit": b"\0" * (2 * MIB - 1)})}
    run_import(tmp_path, files)
    rows = run_import(tmp_path, files)
    assert len([r for r in rows.values() if r["status"] == "failed"]) == 1


def test_archive_limits_are_configured_in_retrostride_toml(tmp_path):
    config = tmp_path / "retrostride.toml"
    config.write_text(
        "[import]\nmax_file_mb = 64\nmax_archive_mb = 1024\nmax_compression_ratio = 20\n"
        "max_archive_depth = 2\nmax_archive_entries = 500\n"
    )
    assert load_limits(config).intake == IntakeLimits(
        max_file_bytes=64 * MIB, max_archive_bytes=1024 * MIB, max_ratio=20.0, max_depth=2, max_members=500
    )
    assert load_limits(tmp_path / "absent.toml").intake == IntakeLimits()
