"""The file side of RETROSTRIDE_HOME: raw copies, decoded Parquet, quarantine.

Decoded frames are content-addressed: `lake/decoded/<sha[:2]>/<sha>/<frame>.parquet`, written to a
temporary folder and renamed into place, so a reader sees a file's frames completely or not at all.
An empty frame is not written (a weight-scale file has no records.parquet): every write costs ~1 ms.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl

FRAMES = ("activities", "records", "laps", "body_measurements", "privacy_zones")  # privacy zones: Strava's
#: Staging folders and temporary copies older than this are leftovers of a killed import.
STALE_S = 3600.0


@dataclass(frozen=True)
class Lake:
    """Paths and atomic writes under one home folder."""

    home: Path

    @property
    def decoded_root(self) -> Path:
        return self.home / "lake" / "decoded"

    def decoded_dir(self, sha256: str) -> Path:
        return self.decoded_root / sha256[:2] / sha256

    def raw_path(self, sha256: str, fmt: str) -> Path:
        return self.home / "raw" / sha256[:2] / f"{sha256}.{fmt}"

    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    def has_decoded(self, sha256: str) -> bool:
        return self.decoded_dir(sha256).is_dir()

    def write_decoded(self, sha256: str, frames: dict[str, pl.DataFrame]) -> None:
        """Write one file's frames atomically (replacing an older decode of the same bytes)."""
        final = self.decoded_dir(sha256)
        staging = final.with_name(f".{sha256}.{uuid.uuid4().hex}")
        staging.mkdir(parents=True)
        for name in FRAMES:
            if name in frames and len(frames[name]):  # lz4: ~30 % cheaper to write than zstd, and faster to read
                frames[name].write_parquet(staging / f"{name}.parquet", statistics=True, compression="lz4")
        if final.exists():
            retired = final.with_name(f".{sha256}.old.{uuid.uuid4().hex}")
            final.rename(retired)
            staging.rename(final)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(final)

    def replace_frame(self, sha256: str, name: str, frame: pl.DataFrame) -> None:
        """Replace one frame of a decoded file atomically (platform labels reaching an activity that
        was imported before its export); the temporary copy is hidden where `sweep` finds leftovers."""
        final = self.decoded_dir(sha256) / f"{name}.parquet"
        temporary = final.parent.with_name(f".{sha256}.{name}.{uuid.uuid4().hex}")
        frame.write_parquet(temporary, statistics=True, compression="lz4")
        os.replace(temporary, final)

    def decoded_paths(self, sha256s: list[str], frame: str) -> list[str]:
        """The Parquet files holding one frame of several decoded files (files without it have none)."""
        paths = (self.decoded_dir(s) / f"{frame}.parquet" for s in sha256s)
        return [str(p) for p in paths if p.exists()]

    def sweep(self, older_than_s: float = STALE_S) -> int:
        """Remove staging folders and temporary copies that a killed process left (hidden `.name.<uuid>`);
        recent ones may belong to an import running now and stay.  Returns how many went."""
        cutoff = time.time() - older_than_s
        roots = [self.decoded_root, self.home / "raw", self.quarantine_dir()]
        removed = 0
        for root in (r for r in roots if r.exists()):
            for leftover in [*root.glob(".*"), *root.glob("*/.*")]:
                try:
                    if leftover.lstat().st_mtime >= cutoff:
                        continue
                    if leftover.is_dir() and not leftover.is_symlink():
                        shutil.rmtree(leftover, ignore_errors=True)
                    else:
                        leftover.unlink(missing_ok=True)
                    removed += 1
                except OSError:
                    continue
        return removed

    def read_decoded(self, sha256s: list[str], frame: str) -> pl.DataFrame | None:
        """One frame of several files, concatenated; None when none of them has it."""
        paths = [self.decoded_dir(s) / f"{frame}.parquet" for s in sha256s]
        paths = [str(p) for p in paths if p.exists()]
        return pl.read_parquet(paths) if paths else None

    def keep_raw(self, source: Path, sha256: str, fmt: str) -> Path:
        """A content-addressed copy of the original bytes (kept once)."""
        target = self.raw_path(sha256, fmt)
        if not target.exists():
            _atomic_copy(source, target)
        return target

    def quarantine(self, source: Path, sha256: str, reason: str, name: str | None = None, max_bytes: int | None = None) -> Path:
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
        target.with_name(target.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
        return target


def _head(source: Path, count: int) -> bytes:
    with open(source, "rb") as handle:
        return handle.read(count)


def _atomic_write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    temporary.write_bytes(data)
    os.replace(temporary, target)


def _atomic_copy(source: Path, target: Path, follow_symlinks: bool = True) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    shutil.copy2(source, temporary, follow_symlinks=follow_symlinks)
    os.replace(temporary, target)
