"""Odd entries in a folder and amplifying archives: each gets its own ledger row with a reason, the
rest of the batch imports, nothing hangs, and what an import leaves on disk stays bounded."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import pytest

from retrostride.connectors.ingest.importer import ImportLimits, import_files
from retrostride.connectors.limits import MIB, IntakeLimits
from retrostride.connectors.sources import expanded_sources, list_source_files
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.store import Warehouse
from tests.test_hostile_input import GOOD_GPX, OTHER_FIT, SMALL, run_import, zip_bytes

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging for ever (a FIFO opened for reading blocks until a writer comes)."""

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: something blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_fifo_and_a_socket_get_a_row_each_and_the_batch_imports(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    os.mkfifo(drop / "pipe.fit")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(drop / "socket.gpx"))
    try:
        with deadline(120):
            rows = run_import(tmp_path, {"run.fit": OTHER_FIT.read_bytes()})
            listed = list(list_source_files([drop / "pipe.fit"]))  # named on its own, as a sensor's run does
    finally:
        server.close()
    assert rows["pipe.fit"]["reason"] == "refused: not a regular file (a FIFO)"
    assert rows["socket.gpx"]["reason"] == "refused: not a regular file (a socket)"
    assert {rows[n]["status"] for n in ("pipe.fit", "socket.gpx")} == {"failed"}
    assert rows["run.fit"]["status"] == "ok"
    assert [s.refusal for s in listed] == ["refused: not a regular file (a FIFO)"]


def test_the_inbox_sensor_lists_a_fifo_without_opening_it(tmp_path):
    from retrostride.assets.settings import WatchedSource
    from retrostride.pipelines.planning import SourceCursor, plan_import
    from retrostride.pipelines.sensors import _content_hash, list_stats

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.mkfifo(inbox / "pipe.fit")
    shutil.copy(GOOD_GPX, inbox / "run.gpx")
    source = WatchedSource(name="inbox", root=inbox, athlete=None)
    with deadline(60):
        first = list_stats(source)
        _, cursor = plan_import(SourceCursor(), first, _content_hash)
        plan, _ = plan_import(cursor, list_stats(source), _content_hash)
    assert set(plan.files) == {str(inbox / "pipe.fit"), str(inbox / "run.gpx")}  # the FIFO is imported, as a refusal


def test_a_name_that_is_not_utf8_or_holds_control_characters_is_escaped_and_imported(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(OTHER_FIT, os.fsencode(drop) + b"/run\xff\xfe.fit")
    shutil.copy(GOOD_GPX, drop / "line\nbreak\x1b[31m.gpx")
    rows = run_import(tmp_path, {})
    assert rows["run\\xff\\xfe.fit"]["status"] == "ok"
    assert rows["line\\x0abreak\\x1b[31m.gpx"]["status"] == "duplicate"  # same bytes as good.gpx
    assert all(row["path"].isprintable() for row in rows.values())
    assert len(run_import(tmp_path, {})) == 3  # imported again: nothing new, the escaped names match


def test_an_unreadable_file_is_refused_and_the_batch_imports(tmp_path):
    """Tests run as root, who reads everything: the import runs in a child without the capabilities
    that let root ignore file permissions (setpriv), so a mode-000 file is really unreadable."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(GOOD_GPX, drop / "good.gpx")
    (drop / "secret.fit").write_bytes(OTHER_FIT.read_bytes())
    (drop / "secret.fit").chmod(0)
    script = f"from tests.test_odd_files import import_drop; import_drop({str(tmp_path)!r})"
    command = [
        "setpriv",
        "--inh-caps=-all",
        "--bounding-set=-dac_override,-dac_read_search",
        sys.executable,
        "-c",
        script,
    ]
    probe = subprocess.run(
        [
            "setpriv",
            "--inh-caps=-all",
            "--bounding-set=-dac_override,-dac_read_search",
            sys.executable,
            "-c",
            f"open({str(drop / 'secret.fit')!r})",
        ],
        capture_output=True,
    )
    if b"PermissionError" not in probe.stderr:
        pytest.skip(f"cannot drop the capability to read any file here: {probe.stderr[-200:]!r}")
    subprocess.run(command, cwd=ROOT, check=True, timeout=300)
    rows = {
        r["path"].rsplit("/", 1)[-1]: r
        for r in Warehouse.embedded(tmp_path / "home").query("SELECT * FROM import_ledger").to_dicts()
    }
    assert rows["secret.fit"]["status"] == "failed"
    assert rows["secret.fit"]["reason"] == "refused: permission denied (the importer may not read this file)"
    assert rows["good.gpx"]["status"] == "ok"


def import_drop(tmp: str) -> None:
    """Import `<tmp>/drop` into `<tmp>/home` (run in a child process by the test above)."""
    tmp_path = Path(tmp)
    lake, warehouse = Lake(tmp_path / "home"), Warehouse.embedded(tmp_path / "home")
    with expanded_sources([tmp_path / "drop"], "eve", tmp_path / "staging", SMALL) as sources:
        import_files(sources, lake, warehouse)


def test_hidden_archive_members_get_a_row_and_a_count(tmp_path):
    files = {
        "export.zip": zip_bytes(
            {
                ".hidden.fit": OTHER_FIT.read_bytes(),
                "__MACOSX/._run.fit": b"\0\5\26\7",
                "run.fit": OTHER_FIT.read_bytes(),
            }
        )
    }
    rows = run_import(tmp_path, files)
    for name in ("export.zip!.hidden.fit", "export.zip!__MACOSX/._run.fit"):
        assert rows[name]["status"] == "ignored" and rows[name]["reason"].startswith("ignored: hidden archive member")
    assert rows["export.zip!run.fit"]["status"] == "ok"
    assert len(run_import(tmp_path, files)) == 4  # not repeated by a second import


def test_compression_ratio_counts_over_the_whole_archive(tmp_path):
    """Many members just under the per-member floor, each 1,000:1: refused once the archive as a whole
    passes the ratio, the rest refused unread; quarantine keeps little."""
    members = {f"part{i:03d}.fit": b"\0" * (SMALL.ratio_floor_bytes - 1) for i in range(40)}
    limits = IntakeLimits(**{**SMALL.__dict__, "max_archive_bytes": 64 * MIB})
    rows = run_import(tmp_path, {"many.zip": zip_bytes(members)}, limits)
    reasons = [rows[f"many.zip!{name}"]["reason"] or "" for name in members]
    assert sum("archive compression ratio over 50:1" in r for r in reasons) == 40 - sum(
        not r.startswith("refused") for r in reasons
    )
    assert sum(r.endswith("(member not read)") for r in reasons) >= 30
    assert quarantine_bytes(tmp_path) < 4 * SMALL.ratio_floor_bytes  # 40 of them were 10 MiB


def quarantine_bytes(tmp_path: Path) -> int:
    return sum(p.stat().st_size for p in (tmp_path / "home" / "quarantine").rglob("*") if p.is_file())


def overlapping_zip(kernel: bytes, entries: int) -> bytes:
    """A zip whose entries all read one shared deflate stream (David Fifield's "better zip bomb"): each
    entry's data quotes the next entry's local header in a stored block, then runs into its data."""
    packed = zlib.compressobj(9, zlib.DEFLATED, -15)
    kernel_stream = packed.compress(kernel) + packed.flush()
    names = [f"{i:04d}.fit".encode() for i in range(entries)]

    def local_header(name: bytes, crc: int, size: int, unpacked: int) -> bytes:
        return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, size, unpacked, len(name), 0) + name

    # sizes from the end: the last entry is the kernel alone; each earlier one adds a quoted header
    headers, sizes, contents = [b""] * entries, [0] * entries, [b""] * entries
    following, following_content = kernel_stream, kernel
    for i in reversed(range(entries)):
        sizes[i], contents[i] = len(following), following_content
        headers[i] = local_header(names[i], zlib.crc32(contents[i]), sizes[i], len(contents[i]))
        if i:
            quote = b"\x00" + struct.pack("<HH", len(headers[i]), len(headers[i]) ^ 0xFFFF)
            following, following_content = quote + headers[i] + following, headers[i] + following_content
    body = headers[0] + following
    offsets, position = [], 0
    for i in range(entries):
        offsets.append(position)
        position += len(headers[i]) + (5 if i + 1 < entries else 0)
    central = b"".join(
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            8,
            0,
            0,
            zlib.crc32(contents[i]),
            sizes[i],
            len(contents[i]),
            len(names[i]),
            0,
            0,
            0,
            0,
            0,
            offsets[i],
        )
        + names[i]
        for i in range(entries)
    )
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries, entries, len(central), len(body), 0)
    return body + central + end


def test_an_overlapping_entry_zip_is_refused_up_front_with_one_row(tmp_path):
    bomb = overlapping_zip(b"\0" * (4 * MIB), 30)
    with zipfile.ZipFile(__import__("io").BytesIO(bomb)) as archive:  # the construction is what it claims
        assert archive.read("0029.fit") == b"\0" * (4 * MIB) and len(archive.read("0000.fit")) > 4 * MIB
    limits = IntakeLimits(
        **{**SMALL.__dict__, "max_file_bytes": 8 * MIB, "max_archive_bytes": 512 * MIB, "max_ratio": 10_000}
    )
    for _ in range(2):
        rows = run_import(tmp_path, {"bomb.zip": bomb}, limits)
    ledger = Warehouse.embedded(tmp_path / "home").query("SELECT path, reason FROM import_ledger").to_dicts()
    bomb_rows = [r for r in ledger if "bomb.zip" in r["path"]]
    assert len(bomb_rows) == 1 and bomb_rows[0]["path"].endswith("bomb.zip")
    assert bomb_rows[0]["reason"].startswith("refused: overlapping entries in the archive")
    assert len(rows) == 2


def test_quarantine_bytes_are_capped_per_import(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir(parents=True)
    shutil.copy(GOOD_GPX, drop / "good.gpx")
    for i in range(6):
        (drop / f"junk{i}.fit").write_bytes(os.urandom(300_000))  # unsupported format: quarantined whole
    lake, warehouse = Lake(tmp_path / "home"), Warehouse.embedded(tmp_path / "home")
    with expanded_sources([drop], "eve", tmp_path / "staging", SMALL) as sources:
        import_files(sources, lake, warehouse, limits=ImportLimits(max_quarantine_bytes=1_000_000))
    rows = warehouse.query("SELECT path, status, notes FROM import_ledger WHERE status = 'failed'").to_dicts()
    assert len(rows) == 6 and quarantine_bytes(tmp_path) <= 1_000_000 + 6 * 200  # copies, and their reasons
    uncopied = [
        r for r in rows if (r["notes"] or "").startswith("no quarantine copy: this import's quarantine allowance")
    ]
    assert len(uncopied) == 3
