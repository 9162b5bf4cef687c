"""Import files into the lake and the ledger: hash, skip what is known, decode, keep, explain."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from retrostride.connectors.ingest.batch import Job, attach_labels, failed_job
from retrostride.connectors.ingest.ledger import (
    LEDGER_CHUNK,
    LEDGER_WRITE_BYTES,
    ImportSummary,
    Outcome,
    Progress,
    failed_outcome,
    flush,
    known_files,
    ledger_row,
    pending_days,
)
from retrostride.connectors.ingest.quarantine import Allowance, quarantine_copy
from retrostride.connectors.ingest.supervisor import supervised_decoding
from retrostride.connectors.limits import MIB, IntakeLimits
from retrostride.connectors.platform_labels import (
    PlatformLabels,
)
from retrostride.connectors.sources import SourceFile, file_refusal
from retrostride.connectors.validate import PLAUSIBLE, Range
from retrostride.warehouse.disk import disk_full_as
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.ledger_copies import ensure_ledger_copied
from retrostride.warehouse.packs import current_packs
from retrostride.warehouse.store import Warehouse


@dataclass(frozen=True)
class ImportLimits:
    """What one file may cost, and what its values may be (`retrostride.toml`, `[import]` and `[plausible]`)."""

    max_file_bytes: int = IntakeLimits.max_file_bytes
    decode_timeout_s: float = 600.0  # room for fitparse, the slowest decoder, on the largest files
    plausible: dict[str, Range] = field(default_factory=lambda: dict(PLAUSIBLE))
    archives: IntakeLimits = IntakeLimits()  # zip and gzip expansion (its max_file_bytes is the one above)
    max_quarantine_bytes: int = 256 * MIB  # copies of failed files one import may put in quarantine/

    @property
    def intake(self) -> IntakeLimits:
        """The limits archives are expanded under, with this file-size limit."""
        return replace(self.archives, max_file_bytes=self.max_file_bytes)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_files(
    files: Iterable[SourceFile],
    lake: Lake,
    warehouse: Warehouse,
    *,
    zones: dict[str, str] | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    latest_day: date | None = None,
    limits: ImportLimits = ImportLimits(),
) -> ImportSummary:
    """Import `files`; returns what happened to each and which days changed (or still wait to be published).

    A file's ledger `path` is its `origin` (`export.zip!member` for an archive member); a file
    refused while listing (symlink, zip bomb, path traversal, ...) is failed with that reason.
    """
    with disk_full_as(warehouse.path, LEDGER_WRITE_BYTES):
        warehouse.ensure_schema()
        ensure_ledger_copied(warehouse, lake)
    lake.sweep()
    packs = current_packs(warehouse)
    lake.drop_unreferenced(set(packs.values()))
    seen, originals = known_files(warehouse)
    summary = ImportSummary(pending=pending_days(warehouse))
    pending_rows: list[dict] = []
    labelled: list[tuple[Outcome, dict, PlatformLabels]] = []
    latest = latest_day or date.today().replace(year=date.today().year + 1)
    allowance = Allowance(limits.max_quarantine_bytes)

    def record(outcome: Outcome, row: dict | None) -> None:
        summary.outcomes.append(outcome)
        if row is not None and "_quarantine" in row:
            row = quarantine_copy(lake, row, allowance)
        if row is not None:
            pending_rows.append({**row, "_days": outcome.days})
            if row.get("lake_pack"):
                packs[row["sha256"]] = row["lake_pack"]
        if len(pending_rows) >= LEDGER_CHUNK:
            flush(warehouse, lake, pending_rows)
        if progress:
            progress(outcome)

    def new_files() -> Iterator[Job]:
        """Hash each file, settle the known, refused and duplicate ones here, and hand on the rest.
        Lazily: the workers decode the first files while later ones are still being hashed."""
        for source in files:
            path, origin = Path(source.path), source.ledger_path
            refusal = None if source.ignored else source.refusal or _refusal(path, limits.max_file_bytes)
            sha = None
            if refusal is None and not source.ignored:
                try:
                    sha = sha256_of(path)
                except OSError as error:  # gone or changed since it was listed
                    refusal = (
                        file_refusal(path) or f"refused: cannot be read ({(error.strerror or str(error)).lower()})"
                    )
            sha = sha or hashlib.sha256(origin.encode()).hexdigest()
            key = (sha, origin)
            if key in seen:
                record(Outcome(origin, source.athlete_id, "skipped", "already imported"), None)
                continue
            seen.add(key)
            if source.ignored:
                record(
                    Outcome(origin, source.athlete_id, "ignored", source.ignored),
                    ledger_row(sha, path, source.athlete_id, origin, status="ignored", reason=source.ignored),
                )
                continue
            original = originals.setdefault(sha, origin)
            if refusal is not None:
                record(*failed_outcome(path, sha, source.athlete_id, refusal, origin, sample_only=True))
                continue
            if original != origin:
                reason = f"same content as {original}"
                outcome = Outcome(origin, source.athlete_id, "duplicate", reason)
                row = ledger_row(sha, path, source.athlete_id, origin, status="duplicate", reason=reason)
                if source.labels is not None:  # an export's copy of a file imported before: its labels, once decoded
                    labelled.append((outcome, row, source.labels))
                else:
                    record(outcome, row)
                continue
            zone = (zones or {}).get(source.athlete_id)
            yield Job(
                str(path),
                sha,
                source.athlete_id,
                zone,
                str(lake.home),
                latest,
                limits.plausible,
                origin,
                source.kind,
                source.labels,
                source.modified_at,
            )

    for job, (outcome, detail) in supervised_decoding(new_files(), workers, limits.decode_timeout_s):
        if outcome is None:  # the worker died or hung: `detail` says how; explain it here
            outcome, detail = failed_job(job, detail)
        record(outcome, detail)
    for outcome, row, labels in labelled:
        sha = row["sha256"]
        days, note, pack = attach_labels(lake, sha, packs.get(sha, sha), labels, latest)
        record(replace(outcome, days=days), {**row, "notes": note, "lake_pack": pack})
    flush(warehouse, lake, pending_rows)
    return summary


def _refusal(path: Path, max_bytes: int) -> str | None:
    refusal = file_refusal(path)
    if refusal is not None:
        return refusal
    size = path.stat().st_size
    if size > max_bytes:
        return f"refused: file is {size} bytes, over the {max_bytes}-byte limit (max_file_mb in retrostride.toml)"
    return None
