"""Zip and gzip containers opened defensively: members are copied out under limits, never trusted.

Sizes are counted on the bytes actually decompressed (a member's declared size can lie), against
a per-member limit, a per-archive total shared with everything nested inside, and a compression
ratio: per member, and over the whole archive (many small members of 1,000:1 each are a bomb too).
Once an archive is refused as a whole, its remaining members are refused unread.  A zip whose
entries overlap (David Fifield's "better zip bomb": many entries reading the same compressed bytes)
is refused up front, from its central directory alone.  Member names are only reported, never used as paths: staged copies get generated names, so
`../../etc/passwd` or `/abs/path` cannot land outside the staging folder; such members are refused.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from retrostride.connectors.limits import IntakeLimits
from retrostride.warehouse.disk import DiskFull, is_disk_full

CHUNK = 1 << 20
#: A refused member's quarantine copy keeps at most its first bytes.
QUARANTINE_SAMPLE_BYTES = 1 << 20
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
GZIP_MAGIC = b"\x1f\x8b"


class Refused(Exception):
    """A container or member that is not read any further, with the ledger's reason and whatever
    part of it was staged (for the quarantine copy)."""

    def __init__(self, reason: str, partial: Path | None = None):
        super().__init__(reason)
        self.reason, self.partial = reason, partial


@dataclass
class Budget:
    """Decompressed bytes one top-level archive (with everything nested in it) may still produce; the
    bytes it started from on disk and has produced so far (the archive's compression ratio); and the
    reason the archive was refused as a whole, once it was."""

    remaining: int
    packed: int = 0
    expanded: int = 0
    refused: str | None = None
    produced: set[Path] = field(default_factory=set)  # staged copies this expansion decompressed

    def opening(self, container: Path) -> None:
        """Count a container about to be expanded in the archive's packed bytes, unless this expansion
        produced it (a nested archive's bytes are already counted as expanded ones)."""
        if container not in self.produced:
            self.packed += container.stat().st_size


class Staging:
    """A folder for staged copies, each under a fresh generated name."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.count = 0

    def new_path(self, name: str) -> Path:
        self.count += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"{self.count:06d}-{safe_name(name)}"


def safe_name(name: str) -> str:
    """The last part of a member name, reduced to characters safe in any file name."""
    base = PurePosixPath(name.replace("\\", "/")).name
    return re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[-80:] or "member"


def is_zip(head: bytes) -> bool:
    return head.startswith(ZIP_MAGIC) or head.startswith(EMPTY_ZIP_MAGIC)


def is_gzip(head: bytes) -> bool:
    return head.startswith(GZIP_MAGIC)


def copy_bounded(source: BinaryIO, target: Path, *, packed_bytes: int, limits: IntakeLimits, budget: Budget) -> None:
    """Copy a decompressing stream to `target`, refusing it once it passes a limit.

    On refusal the target keeps only its first QUARANTINE_SAMPLE_BYTES (for the quarantine copy).
    """
    if budget.refused is not None:
        raise Refused(f"{budget.refused} (member not read)")
    written = 0
    try:
        with open(target, "wb") as out:
            while block := source.read(CHUNK):
                written += len(block)
                out.write(block)
                _check(written, packed_bytes, limits, budget)
    except Refused:
        os.truncate(target, min(written, QUARANTINE_SAMPLE_BYTES))
        raise
    except OSError as error:
        if is_disk_full(error):
            target.unlink(missing_ok=True)
            raise DiskFull(target.parent, written + CHUNK) from None
        raise
    finally:
        budget.remaining -= written
        budget.expanded += written
        budget.produced.add(target)


def _check(written: int, packed: int, limits: IntakeLimits, budget: Budget) -> None:
    if written > limits.max_file_bytes:
        raise Refused(f"refused: expands past the {limits.max_file_bytes}-byte file limit")
    if written > budget.remaining:
        budget.refused = (
            f"refused: archive expands past its total limit of {limits.max_archive_bytes} bytes (possible zip bomb)"
        )
        raise Refused(budget.refused)
    if written > limits.ratio_floor_bytes and written > limits.max_ratio * max(packed, 1):
        raise Refused(
            f"refused: compression ratio over {limits.max_ratio:g}:1 "
            f"({packed} bytes expand past {written}; possible zip bomb)"
        )
    expanded = budget.expanded + written
    if expanded > limits.ratio_floor_bytes and expanded > limits.max_ratio * max(budget.packed, 1):
        budget.refused = (
            f"refused: archive compression ratio over {limits.max_ratio:g}:1 "
            f"({budget.packed} bytes expand past {expanded}; possible zip bomb)"
        )
        raise Refused(budget.refused)


def gunzip(path: Path, staging: Staging, name: str, limits: IntakeLimits, budget: Budget) -> Path:
    """The decompressed content of a gzip file, staged; Refused when damaged or over a limit."""
    target = staging.new_path(name.removesuffix(".gz"))
    try:
        with gzip.open(path, "rb") as stream:
            copy_bounded(stream, target, packed_bytes=path.stat().st_size, limits=limits, budget=budget)
    except Refused as refusal:
        raise Refused(f"{refusal.reason} (gzip)", target) from None
    except (OSError, EOFError, zlib.error) as error:
        raise Refused(f"damaged gzip file: {damage(error)}", target) from None
    return target


#: The fixed part of a zip's local file header, before the member's name and extra field.
LOCAL_HEADER_BYTES = 30


def overlapping_entries(infos: list[zipfile.ZipInfo], central_directory: int) -> str | None:
    """Why a zip's entries overlap, or None: each entry's header and compressed data must end before
    the next entry (by offset) begins, and the last before the central directory.  A lower bound of
    each entry's extent is used (fixed header + compressed size), so a sound zip is never refused."""
    ordered = sorted(infos, key=lambda info: info.header_offset)
    ends = [*(info.header_offset for info in ordered[1:]), central_directory]
    for info, end in zip(ordered, ends, strict=True):
        if info.header_offset + LOCAL_HEADER_BYTES + info.compress_size > end:
            return (
                f"refused: overlapping entries in the archive ({info.filename!r} reaches into the next "
                "entry; a zip bomb of shared compressed data)"
            )
    return None


def damage(error: BaseException) -> str:
    """What a decompression error says about the bytes, in words (no exception text in the ledger)."""
    if isinstance(error, EOFError):
        return "it ends before its compressed data does (truncated)"
    if isinstance(error, zlib.error):
        return "its compressed data is corrupt"
    if isinstance(error, NotImplementedError):
        return "compressed with a method that is not supported"
    if isinstance(error, RuntimeError):
        return "encrypted or unreadable"
    message = str(error).splitlines()[0] if str(error) else "unreadable"
    return (
        message[0].lower() + message[1:] if isinstance(error, zipfile.BadZipFile) or "CRC" in message else "unreadable"
    )


@dataclass(frozen=True)
class Member:
    """One file inside a zip: its name there, and when it was last modified (UTC, as the zip says)."""

    info: zipfile.ZipInfo

    @property
    def name(self) -> str:
        return self.info.filename

    @property
    def modified_at(self) -> datetime | None:
        try:
            return datetime(*self.info.date_time, tzinfo=UTC)
        except ValueError:
            return None


class ZipArchive:
    """An open zip file whose members are read under limits."""

    def __init__(self, path: Path, limits: IntakeLimits, budget: Budget):
        self.path, self.limits, self.budget = path, limits, budget
        try:
            self.zip = zipfile.ZipFile(path)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
            raise Refused(f"damaged zip archive: {error}") from None
        if len(infos) > limits.max_members:
            self.zip.close()
            raise Refused(f"refused: archive has {len(infos)} entries, over the {limits.max_members}-entry limit")
        overlap = overlapping_entries(infos, self.zip.start_dir)
        if overlap is not None:
            self.zip.close()
            raise Refused(overlap)
        self.members = [Member(i) for i in infos if not i.is_dir()]

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> ZipArchive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def refusal(self, member: Member) -> str | None:
        """Why a member's name or kind is refused before reading it, or None."""
        name = member.name
        mode = member.info.external_attr >> 16
        if stat.S_ISLNK(mode):
            return "refused: symbolic link inside the archive (only regular files are imported)"
        if "\x00" in name:
            return "refused: member name contains a NUL byte"
        posix = name.replace("\\", "/")
        if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
            return "refused: absolute path in archive member name"
        if ".." in PurePosixPath(posix).parts:
            return "refused: path traversal ('..') in archive member name"
        if member.info.flag_bits & 0x1:
            return "refused: encrypted archive member"
        return None

    def stage(self, member: Member, staging: Staging) -> Path:
        """Copy a member out under the limits; Refused (with the partial copy) when it breaks one."""
        target = staging.new_path(member.name)
        try:
            with self.zip.open(member.info) as stream:
                copy_bounded(
                    stream, target, packed_bytes=member.info.compress_size, limits=self.limits, budget=self.budget
                )
        except Refused as refusal:
            raise Refused(refusal.reason, target) from None
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, RuntimeError) as error:
            raise Refused(f"damaged archive member: {damage(error)}", target) from None
        return target
