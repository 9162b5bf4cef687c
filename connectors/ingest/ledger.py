"""The import ledger: one row per file and what became of it, written in chunks with the days they touch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl

from retrostride.connectors.archives import QUARANTINE_SAMPLE_BYTES, safe_name
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.schema import LEDGER, PENDING_DAYS
from retrostride.warehouse.store import Warehouse, insert

#: Ledger rows written per transaction (each costs a commit); a killed import decodes at most these again.
LEDGER_CHUNK = 500


#: Failures caused by the machine rather than the file: the next run tries the file again
#: (an object the store would not hand over, e.g. access denied to one key, is one of them).
RETRIED = ("decoder timed out", "decoder process died", "refused: file is", "could not download")


@dataclass(frozen=True)
class Outcome:
    """What became of one file."""

    path: str
    athlete_id: str
    status: str  # ok | partial | failed | duplicate | skipped
    reason: str | None = None
    records: int = 0
    days: tuple[date, ...] = ()


@dataclass
class ImportSummary:
    """Counts and reasons for one batch, and the days whose partitions it changed."""

    outcomes: list[Outcome] = field(default_factory=list)
    #: days an earlier, interrupted run imported but did not publish
    pending: list[date] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def days(self) -> list[date]:
        return sorted({d for o in self.outcomes for d in o.days} | set(self.pending))

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in ("failed", "partial")]

    @property
    def records(self) -> int:
        return sum(o.records for o in self.outcomes if o.status in ("ok", "partial"))


Progress = Callable[[Outcome], None]


def failed_outcome(lake: Lake, path: Path, sha: str, athlete_id: str, reason: str, origin: str,
            sample_only: bool = False) -> tuple[Outcome, dict]:
    """A failed outcome and its ledger row, with a quarantine copy: a symbolic link as a link, and of
    a file refused before decoding (huge, a bomb's partial expansion) only its first bytes."""
    if path.is_file() or path.is_symlink():
        limit = QUARANTINE_SAMPLE_BYTES if sample_only else None
        lake.quarantine(path, sha, reason, name=safe_name(origin.rsplit("!", 1)[-1]), max_bytes=limit)
    row = ledger_row(sha, path, athlete_id, origin, status="failed", reason=reason)
    return Outcome(origin, athlete_id, "failed", reason), row


def unplaced_note(unplaced: list[datetime]) -> str:
    starts = ", ".join(str(s) for s in unplaced[:3])
    return f"{len(unplaced)} activity(ies) kept in the lake but not placed on a day (start: {starts})"


def ledger_row(sha: str, path: Path, athlete_id: str, origin: str, **values) -> dict:
    row = {"sha256": sha, "path": origin, "athlete_id": athlete_id, "imported_at": datetime.now(timezone.utc)}
    try:
        row["bytes"] = path.stat().st_size if not path.is_symlink() else None
    except OSError:
        row["bytes"] = None
    return {**row, **values}


def known_files(warehouse: Warehouse) -> tuple[set[tuple[str, str]], dict[str, str]]:
    """Every (sha256, path) in the ledger, and the first path each content was imported from.

    A file that failed for a reason of the machine's (`RETRIED`) counts as not seen: it is tried again.
    """
    rows = warehouse.query("SELECT sha256, path, status, reason FROM import_ledger ORDER BY imported_at").rows()
    originals: dict[str, str] = {}
    seen = set()
    for sha, path, status, reason in rows:
        if status == "failed" and (reason or "").startswith(RETRIED):
            continue
        seen.add((sha, path))
        if status != "duplicate":
            originals.setdefault(sha, path)
    return seen, originals


def pending_days(warehouse: Warehouse) -> list[date]:
    return warehouse.query("SELECT DISTINCT day FROM pending_days ORDER BY day")["day"].to_list()


def flush(warehouse: Warehouse, rows: list[dict]) -> None:
    """Write ledger rows and the days they touch in one transaction; a retried file's old row goes."""
    if not rows:
        return
    frame = pl.DataFrame([{c: r.get(c) for c in LEDGER} for r in rows], schema=LEDGER, strict=False)
    days = pl.DataFrame({"day": sorted({d for r in rows for d in r.get("_days", ())})}, schema=PENDING_DAYS)
    retried = " OR ".join("reason LIKE ?" for _ in RETRIED)

    def write(connection) -> None:
        connection.register("incoming_paths", frame.select("path"))
        connection.execute(
            f"DELETE FROM import_ledger WHERE status = 'failed' AND ({retried}) AND path IN (SELECT path FROM incoming_paths)",
            [f"{prefix}%" for prefix in RETRIED],
        )
        connection.unregister("incoming_paths")
        insert(connection, "import_ledger", frame)
        insert(connection, "pending_days", days)
    warehouse.write(write)
    rows.clear()
