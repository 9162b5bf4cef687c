"""Quarantine copies of failed files, made by the importer within an allowance per import.

A worker only asks for a copy (its ledger row carries `_quarantine`); the importer makes it, so one
import's copies are counted in one place: an archive of a thousand refused members cannot fill the
disk with their samples.  Past the allowance a row gets a note instead of a copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from retrostride.connectors.archives import QUARANTINE_SAMPLE_BYTES, safe_name
from retrostride.warehouse.disk import disk_full_as
from retrostride.warehouse.lake import Lake


@dataclass
class Allowance:
    """Bytes of quarantine copies one import may still write."""

    remaining: int


def quarantine_copy(lake: Lake, row: dict, allowance: Allowance) -> dict:
    """Copy a failed file aside as its row asks (a symbolic link as a link; of a file refused before
    decoding only its first bytes); the row without the request, with a note when no copy was made."""
    row = dict(row)
    path, sample_only = row.pop("_quarantine")
    path = Path(path)
    if not (path.is_file() or path.is_symlink()):
        return row
    size = 0 if path.is_symlink() else path.stat().st_size
    kept = min(size, QUARANTINE_SAMPLE_BYTES) if sample_only else size
    if kept > allowance.remaining:
        return _noted(
            row, f"no quarantine copy: this import's quarantine allowance is used up ({allowance.remaining} bytes left)"
        )
    try:
        with disk_full_as(lake.quarantine_dir(), kept):
            lake.quarantine(
                path,
                row["sha256"],
                row["reason"],
                name=safe_name(row["path"].rsplit("!", 1)[-1]),
                max_bytes=QUARANTINE_SAMPLE_BYTES if sample_only else None,
            )
    except PermissionError:
        return _noted(row, "no quarantine copy: the file cannot be read")
    allowance.remaining -= kept
    return row


def _noted(row: dict, note: str) -> dict:
    return {**row, "notes": "; ".join(filter(None, [row.get("notes"), note]))}
