"""Import files into the lake and the ledger: hash, skip what is known, decode, keep, explain.

No Dagster here: the `source_files` asset and the CLI both call `import_files`.  Every file ends as
exactly one outcome (ok, partial, failed, duplicate, or skipped as already imported); a bad file
never stops the batch.  The ledger row is written after the file's frames are in the lake, so a
crash at any point leaves at worst a decoded file that the next run decodes again.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl

from connectors.frames import placeable, warehouse_frames
from connectors.formats import decoder_for
from connectors.schema import LEDGER, DecodeError
from connectors.sources import SourceFile
from warehouse.lake import Lake
from warehouse.store import Warehouse, insert

#: Activities must start inside this window to be placed on a day (FIT's epoch is 1989-12-31).
EARLIEST_DAY = date(1990, 1, 1)
MAX_FILE_BYTES = 512 * 1024 * 1024
LEDGER_CHUNK = 100


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

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def days(self) -> list[date]:
        return sorted({d for o in self.outcomes for d in o.days})

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in ("failed", "partial")]

    @property
    def records(self) -> int:
        return sum(o.records for o in self.outcomes if o.status in ("ok", "partial"))


Progress = Callable[[Outcome], None]


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
) -> ImportSummary:
    """Import `files`; returns what happened to each and which days changed."""
    warehouse.ensure_schema()
    seen, originals = _known(warehouse)
    summary = ImportSummary()
    pending_rows: list[dict] = []
    jobs: list[tuple] = []
    latest = latest_day or date.today().replace(year=date.today().year + 1)

    def record(outcome: Outcome, row: dict | None) -> None:
        summary.outcomes.append(outcome)
        if row is not None:
            pending_rows.append(row)
        if len(pending_rows) >= LEDGER_CHUNK:
            _flush(warehouse, pending_rows)
        if progress:
            progress(outcome)

    for source in files:
        path = Path(source.path)
        refusal = _refusal(path)
        sha = sha256_of(path) if refusal is None else hashlib.sha256(str(path).encode()).hexdigest()
        key = (sha, str(path))
        if key in seen:
            record(Outcome(str(path), source.athlete_id, "skipped", "already imported"), None)
            continue
        seen.add(key)
        original = originals.setdefault(sha, str(path))
        if refusal is not None:
            record(*_failed(lake, path, sha, source.athlete_id, refusal, quarantine=False))
            continue
        if original != str(path):
            reason = f"same content as {original}"
            record(Outcome(str(path), source.athlete_id, "duplicate", reason), _ledger_row(sha, path, source.athlete_id, status="duplicate", reason=reason))
            continue
        jobs.append((str(path), sha, source.athlete_id, (zones or {}).get(source.athlete_id), str(lake.home), latest))

    for outcome, row in _run(jobs, workers):
        record(outcome, row)
    _flush(warehouse, pending_rows)
    return summary


def decode_into_lake(path: str, sha: str, athlete_id: str, zone: str | None, home: str, latest: date) -> tuple[Outcome, dict]:
    """Decode one file, keep its raw copy and frames in the lake; never raises for bad input."""
    lake, source, started = Lake(Path(home)), Path(path), time.perf_counter()
    try:
        fmt, decode = decoder_for(source)
        decoded = decode(source)
        frames = warehouse_frames(decoded, sha, athlete_id, zone)
    except DecodeError as error:
        return _failed(lake, source, sha, athlete_id, str(error))
    except Exception as error:  # a bug must not stop the batch: explain and contain it
        return _failed(lake, source, sha, athlete_id, f"decoder crashed: {type(error).__name__}: {error}")
    inside = placeable(EARLIEST_DAY, latest)
    unplaced = frames["activities"].filter(~inside)
    days = sorted(set(frames["activities"].filter(inside)["start_day"].to_list()))
    lake.keep_raw(source, sha, fmt)
    lake.write_decoded(sha, frames)
    notes = "; ".join(n for n in (decoded.notes, _unplaced_note(unplaced) if len(unplaced) else None) if n) or None
    row = _ledger_row(
        sha, source, athlete_id, status=decoded.status, reason=decoded.reason, notes=notes, format=fmt,
        decoder=decoded.decoder, decoder_version=decoded.decoder_version, records=len(decoded.records),
        activities=len(frames["activities"]), body_measurements=len(frames["body_measurements"]),
        first_day=days[0] if days else None, last_day=days[-1] if days else None,
        decode_s=time.perf_counter() - started,
    )
    return Outcome(path, athlete_id, decoded.status, decoded.reason, len(decoded.records), tuple(days)), row


def _run(jobs: list[tuple], workers: int):
    """Decode jobs in order, in worker processes when there is enough work to pay for them."""
    if workers <= 1 or len(jobs) < 4:
        for job in jobs:
            yield decode_into_lake(*job)
        return
    # spawn, not fork: Polars' and DuckDB's thread pools do not survive a fork
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield from pool.map(decode_into_lake, *zip(*jobs), chunksize=4)


def _refusal(path: Path) -> str | None:
    if path.is_symlink():
        return "refused: symbolic link (only regular files are imported)"
    if not path.is_file():
        return "refused: not a regular file"
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        return f"refused: file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit"
    return None


def _failed(lake: Lake, path: Path, sha: str, athlete_id: str, reason: str, quarantine: bool = True) -> tuple[Outcome, dict]:
    if quarantine:
        lake.quarantine(path, sha, reason)
    return Outcome(str(path), athlete_id, "failed", reason), _ledger_row(sha, path, athlete_id, status="failed", reason=reason)


def _unplaced_note(unplaced: pl.DataFrame) -> str:
    starts = ", ".join(str(s) if s is not None else "no timestamps" for s in unplaced["start_ts"].to_list()[:3])
    return f"{len(unplaced)} activity(ies) kept in the lake but not placed on a day (start: {starts})"


def _ledger_row(sha: str, path: Path, athlete_id: str, **values) -> dict:
    row = {"sha256": sha, "path": str(path), "athlete_id": athlete_id, "imported_at": datetime.now(timezone.utc)}
    try:
        row["bytes"] = path.stat().st_size if not path.is_symlink() else None
    except OSError:
        row["bytes"] = None
    return {**row, **values}


def _known(warehouse: Warehouse) -> tuple[set[tuple[str, str]], dict[str, str]]:
    """Every (sha256, path) in the ledger, and the first path each content was imported from."""
    rows = warehouse.query("SELECT sha256, path, status FROM import_ledger ORDER BY imported_at").rows()
    originals: dict[str, str] = {}
    for sha, path, status in rows:
        if status != "duplicate":
            originals.setdefault(sha, path)
    return {(sha, path) for sha, path, _ in rows}, originals


def _flush(warehouse: Warehouse, rows: list[dict]) -> None:
    if not rows:
        return
    frame = pl.DataFrame([{c: r.get(c) for c in LEDGER} for r in rows], schema=LEDGER, strict=False)
    with warehouse.transaction() as connection:
        insert(connection, "import_ledger", frame)
    rows.clear()
