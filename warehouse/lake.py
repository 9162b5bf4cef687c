"""The file side of RETROSTRIDE_HOME: raw copies, decoded Parquet, quarantine.

Decoded frames live in packs, one per decoder batch (up to 32 files): `lake/decoded/<id[:2]>/<id>/
<frame>.parquet`, written to a temporary folder and renamed into place, so a reader sees a pack
completely or not at all.  Writing a Parquet file has a fixed cost whatever its size, so a pack instead
of a folder per file saves decoder CPU per file, and publishing opens far fewer files (README).

Every row says which file it came from: `source_sha256`, or an `activity_id` made from it
(`connectors.frames.activity_ids`).  The ledger's `lake_pack` names the pack holding a file's current
rows (`warehouse.packs`): a file decoded again (after a killed import) or given labels lands in a new
pack, and its rows in the old one are no longer read.  A home from before packs has a folder per
file named by its sha256: a pack of one.  Packs no file's current rows are in go after an hour.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from retrostride.warehouse.schema import activity_id_prefix

FRAMES = (
    "activities",
    "records",
    "laps",
    "developer_fields",
    "body_measurements",
    "privacy_zones",
)  # privacy zones: Strava's
#: Staging folders and temporary copies older than this are leftovers of a killed import.
STALE_S = 3600.0


def rows_of_file(sha256: str, columns: Iterable[str]) -> pl.Expr:
    """The rows of a frame with these columns that came from the file `sha256`."""
    if "source_sha256" in columns:
        return pl.col("source_sha256") == sha256
    return pl.col("activity_id").str.starts_with(activity_id_prefix(sha256))


@dataclass(frozen=True)
class Lake:
    """Paths and atomic writes under one home folder."""

    home: Path

    @property
    def decoded_root(self) -> Path:
        return self.home / "lake" / "decoded"

    def pack_dir(self, pack: str) -> Path:
        return self.decoded_root / pack[:2] / pack

    def raw_path(self, sha256: str, fmt: str) -> Path:
        return self.home / "raw" / sha256[:2] / f"{sha256}.{fmt}"

    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def ledger_dir(self) -> Path:
        """Copies of the ledger's rows (`warehouse.ledger_copies`)."""
        return self.home / "lake" / "ledger"

    def write_pack(self, frames: dict[str, pl.DataFrame]) -> str | None:
        """Write the frames of several files as a new pack, atomically; its id (None: no rows at all).
        An empty frame is not written."""
        kept = {name: frames[name] for name in FRAMES if name in frames and len(frames[name])}
        if not kept:
            return None
        pack = uuid.uuid4().hex
        final = self.pack_dir(pack)
        staging = final.with_name(f".{pack}")
        staging.mkdir(parents=True)
        try:
            for name, frame in kept.items():  # lz4: cheaper to write than zstd, and faster to read
                frame.write_parquet(staging / f"{name}.parquet", statistics=True, compression="lz4")
            staging.rename(final)
        except BaseException:  # a full disk, a kill: nothing half-written stays
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return pack

    def frame_path(self, pack: str, frame: str) -> Path | None:
        """The Parquet file of one frame of a pack (None: the pack has no rows of it)."""
        path = self.pack_dir(pack) / f"{frame}.parquet"
        return path if path.exists() else None

    def read_file(self, sha256: str, pack: str) -> dict[str, pl.DataFrame]:
        """The frames of one file, from the pack holding its current rows (frames without rows left out)."""
        frames = {}
        for name in FRAMES:
            path = self.frame_path(pack, name)
            if path is not None:
                frame = pl.read_parquet(path)
                frame = frame.filter(rows_of_file(sha256, frame.columns))
                if len(frame):
                    frames[name] = frame
        return frames

    def drop_unreferenced(self, current: set[str], older_than_s: float = STALE_S) -> int:
        """Remove packs holding no file's current rows (`current`: the packs that do); recent ones
        may belong to an import whose ledger rows are not written yet, and stay.  Returns how many went."""
        folders = self.decoded_root.glob("*/*") if self.decoded_root.exists() else []
        return _remove_older([f for f in folders if not f.name.startswith(".") and f.name not in current], older_than_s)

    def sweep(self, older_than_s: float = STALE_S) -> int:
        """Remove staging folders and temporary copies that a killed process left (hidden `.name`);
        recent ones may belong to an import running now and stay.  Returns how many went."""
        roots = [
            r for r in (self.decoded_root, self.ledger_dir, self.home / "raw", self.quarantine_dir()) if r.exists()
        ]
        return _remove_older(
            [leftover for root in roots for leftover in [*root.glob(".*"), *root.glob("*/.*")]], older_than_s
        )

    def keep_raw(self, source: Path, sha256: str, fmt: str) -> Path:
        """A content-addressed copy of the original bytes (kept once)."""
        target = self.raw_path(sha256, fmt)
        if not target.exists():
            _atomic_copy(source, target)
        return target

    def quarantine(
        self, source: Path, sha256: str, reason: str, name: str | None = None, max_bytes: int | None = None
    ) -> Path:
        """Copy a rejected file aside (a symbolic link as a link; at most `max_bytes` of a regular
        file) with its reason next to it."""
        folder = self.quarantine_dir()
        target = folder / f"{sha256[:12]}-{name or source.name}"
        size = source.lstat().st_size
        if max_bytes is not None and not source.is_symlink() and size > max_bytes:
            reason += f" [quarantine keeps the first {max_bytes} of {size} bytes]"
            if not target.exists():
                _atomic_write(target, _head(source, max_bytes))
        elif not target.exists() and not target.is_symlink():
            _atomic_copy(source, target, follow_symlinks=False)
        _atomic_write(target.with_name(target.name + ".reason.txt"), (reason + "\n").encode())
        return target


def _remove_older(paths: list[Path], older_than_s: float) -> int:
    """Remove those of `paths` (folders, files, links) last changed more than `older_than_s` ago; how many went."""
    cutoff = time.time() - older_than_s
    removed = 0
    for path in paths:
        try:
            if path.lstat().st_mtime >= cutoff:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
        except OSError:
            continue
    return removed


def _head(source: Path, count: int) -> bytes:
    with open(source, "rb") as handle:
        return handle.read(count)


def _atomic_write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _atomic_copy(source: Path, target: Path, follow_symlinks: bool = True) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    try:
        shutil.copy2(source, temporary, follow_symlinks=follow_symlinks)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
