"""The import ledger: one row per file and what became of it, written in chunks with the days they touch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from retrostride.connectors.limits import MIB
from retrostride.warehouse.disk import disk_full_as
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.ledger_copies import RETRIED, write_ledger, write_ledger_copy
from retrostride.warehouse.schema import LEDGER, PENDING_DAYS
from retrostride.warehouse.store import Warehouse, insert

#: Ledger rows written per transaction (each costs a commit); a killed import decodes at most these again.
LEDGER_CHUNK = 500
#: Room a ledger write may need (DuckDB's write-ahead log and a new block), for a full disk's message.
LEDGER_WRITE_BYTES = 4 * MIB


@dataclass(frozen=True)
class Outcome:
    """What became of one file."""

    path: str
    athlete_id: str
    status: str  # ok | partial | no_activity | failed | duplicate | ignored | skipped
    reason: str | None = None
    records: int = 0
    days: tuple[date, ...] = ()


@dataclass
class ImportSummary:
    """Counts and reasons for one batch, and the days whose partitions it changed."""

    outcomes: list[Outcome] = field(default_factory=list)
    #: (athlete, day) an earlier, interrupted run imported but did not publish (athlete None: from
    #: before pending days had athletes, every athlete's)
    pending: list[tuple[str | None, date]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def athletes(self) -> list[str] | None:
        """The athletes of the batch's files; None (every athlete) for a batch of no files."""
        return sorted({o.athlete_id for o in self.outcomes}) or None

    @property
    def athlete_days(self) -> dict[str | None, list[date]]:
        """The days to publish, per athlete: those this batch changed, and those left pending for the
        batch's athletes (for every athlete when the batch had no files: `retrostride rebuild`).
        Runs for different athletes so never publish, and never conflict over, each other's rows."""
        athletes = {o.athlete_id for o in self.outcomes}
        days: dict[str | None, set[date]] = {}
        for outcome in self.outcomes:
            days.setdefault(outcome.athlete_id, set()).update(outcome.days)
        for athlete, day in self.pending:
            if not athletes or athlete in athletes or athlete is None:
                days.setdefault(athlete, set()).add(day)
        return {athlete: sorted(found) for athlete, found in days.items() if found}

    @property
    def days(self) -> list[date]:
        return sorted({d for found in self.athlete_days.values() for d in found})

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in ("failed", "partial")]

    @property
    def records(self) -> int:
        return sum(o.records for o in self.outcomes if o.status in ("ok", "partial"))


Progress = Callable[[Outcome], None]


def failed_outcome(
    path: Path, sha: str, athlete_id: str, reason: str, origin: str, sample_only: bool = False, fmt: str | None = None
) -> tuple[Outcome, dict]:
    """A failed outcome and its ledger row, which asks for a quarantine copy (made by the importer,
    `quarantine.quarantine_copy`): of a file refused before decoding (huge, a bomb's partial
    expansion) only its first bytes."""
    row = ledger_row(
        sha, path, athlete_id, origin, status="failed", reason=reason, format=fmt, _quarantine=(str(path), sample_only)
    )
    return Outcome(origin, athlete_id, "failed", reason), row


def unplaced_note(unplaced: list[datetime]) -> str:
    starts = ", ".join(str(s) for s in unplaced[:3])
    return f"{len(unplaced)} activity(ies) kept in the lake but not placed on a day (start: {starts})"


def ledger_row(sha: str, path: Path, athlete_id: str, origin: str, **values) -> dict:
    row = {"sha256": sha, "path": origin, "athlete_id": athlete_id, "imported_at": datetime.now(UTC)}
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
        if _tried_again(status, reason):
            continue
        seen.add((sha, path))
        if status != "duplicate":
            originals.setdefault(sha, path)
    return seen, originals


def pending_days(warehouse: Warehouse) -> list[tuple[str | None, date]]:
    """(athlete, day) not published yet."""
    return warehouse.query("SELECT DISTINCT athlete_id, day FROM pending_days ORDER BY ALL").rows()


def flush(warehouse: Warehouse, lake: Lake, rows: list[dict]) -> None:
    """Write ledger rows and the days they touch in one transaction, and their copy in the lake; a
    retried file's old row goes."""
    if not rows:
        return
    frame = pl.DataFrame([{c: r.get(c) for c in LEDGER} for r in rows], schema=LEDGER, strict=False)
    days = pl.DataFrame(
        sorted({(r["athlete_id"], d) for r in rows for d in r.get("_days", ())}), schema=PENDING_DAYS, orient="row"
    )

    def write(connection) -> None:
        write_ledger(connection, _not_recorded_since(connection, frame))
        insert(connection, "pending_days", days)

    with disk_full_as(warehouse.path, LEDGER_WRITE_BYTES):
        write_ledger_copy(lake, frame)  # before the commit: a ledger row is never missing from the copies
        warehouse.write(write)
    rows.clear()


def _tried_again(status: str, reason: str | None) -> bool:
    return status == "failed" and (reason or "").startswith(RETRIED)


def _not_recorded_since(connection, frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` without the files another import recorded after this one read the ledger: when two
    imports take the same file at once, the first to commit keeps its row."""
    connection.register("incoming_files", frame.select("sha256", "path"))
    try:
        recorded = connection.execute(
            "SELECT sha256, path, status, reason FROM import_ledger JOIN incoming_files USING (sha256, path)"
        ).fetchall()
    finally:
        connection.unregister("incoming_files")
    taken = [(sha, path) for sha, path, status, reason in recorded if not _tried_again(status, reason)]
    if not taken:
        return frame
    return frame.join(pl.DataFrame(taken, schema=["sha256", "path"], orient="row"), on=["sha256", "path"], how="anti")
