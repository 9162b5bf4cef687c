"""A full disk, said in one sentence: which disk, how much is free, about how much more is needed.

Every write under RETROSTRIDE_HOME and the staging folder is atomic (a temporary name renamed into
place, a DuckDB transaction), so an import that runs out of space stops with `DiskFull` and leaves
nothing half-written: the next import, once there is room, goes on where this one stopped.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: How DuckDB and the C library say it when they meet ENOSPC.
NO_SPACE = os.strerror(errno.ENOSPC)


class DiskFull(Exception):
    """The disk under `path` has no room for a write of about `needed` bytes."""

    def __init__(self, path: Path | str, needed: int):
        self.path, self.needed = str(path), needed
        mount, free = mount_point(Path(path)), _free(Path(path))
        super().__init__(
            f"The disk at {mount} (holding {path}) is full: {_mb(free)} free, about {_mb(needed)} more needed; "
            "nothing was half-written: free some space and run the import again."
        )

    def __reduce__(self):  # raised in a decoder process, re-raised in the importer
        return DiskFull, (self.path, self.needed)


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` (an OSError, a DuckDB error, ...) says the disk is full."""
    return getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or NO_SPACE in str(error)


@contextmanager
def disk_full_as(path: Path | str, needed: int) -> Iterator[None]:
    """Turn a write's "no space left" error into DiskFull naming `path` and about `needed` bytes."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as error:
        if is_disk_full(error):
            raise DiskFull(path, needed) from None
        raise


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding `path` (or its nearest existing parent)."""
    path = _existing(path).resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _free(path: Path) -> int:
    try:
        return shutil.disk_usage(_existing(path)).free
    except OSError:
        return 0


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"
