"""Import files into the lake and the ledger: hash, skip what is known, decode, keep, explain.

No Dagster here: the `source_files` asset and the CLI both call `import_files`.  Every file ends as
exactly one outcome (ok, partial, failed, duplicate, or skipped as already imported); a bad file
never stops the batch.  Files are decoded in supervised worker processes: a decoder that takes longer
than the limit is killed, one whose process dies (a segfault, the OOM killer) is explained, and in
both cases the rest of the batch goes on.  Decoded frames go through one plausibility step
(`connectors.validate`) before the lake.

Crash safety: the ledger row is written after the file's frames are in the lake, together with the
days it touches in `pending_days`; publishing a range removes them in its own transaction.  A
process killed at any point leaves at worst a decoded file that the next run decodes again, or
days that the next run publishes.
"""

from __future__ import annotations

import hashlib
import importlib
import multiprocessing
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from multiprocessing.connection import wait
from pathlib import Path

import polars as pl

from connectors.archives import QUARANTINE_SAMPLE_BYTES, safe_name
from connectors.formats import decoder_for
from connectors.frames import placeable, warehouse_frames
from connectors.labels import PlatformLabels, label_activities, with_platform_labels
from connectors.limits import IntakeLimits
from connectors.schema import LEDGER, PENDING_DAYS, DecodeError
from connectors.sources import SourceFile
from connectors.validate import PLAUSIBLE, Range, validate
from warehouse.lake import Lake
from warehouse.store import Warehouse, insert

#: Activities must start inside this window to be placed on a day (FIT's epoch is 1989-12-31).
EARLIEST_DAY = date(1990, 1, 1)
#: Ledger rows written per transaction (~90 ms each); a killed import decodes at most these again.
LEDGER_CHUNK = 500
#: Failures caused by the machine rather than the file: the next run tries the file again
#: (an object the store would not hand over, e.g. access denied to one key, is one of them).
RETRIED = ("decoder timed out", "decoder process died", "refused: file is", "could not download")


@dataclass(frozen=True)
class ImportLimits:
    """What one file may cost, and what its values may be (`retrostride.toml`, `[import]` and `[plausible]`)."""

    max_file_bytes: int = IntakeLimits.max_file_bytes
    decode_timeout_s: float = 600.0  # fitparse reads ~5,000 records/s: a 12 MB file takes about a minute
    plausible: dict[str, Range] = field(default_factory=lambda: dict(PLAUSIBLE))
    archives: IntakeLimits = IntakeLimits()  # zip and gzip expansion (its max_file_bytes is the one above)

    @property
    def intake(self) -> IntakeLimits:
        """The limits archives are expanded under, with this file-size limit."""
        return replace(self.archives, max_file_bytes=self.max_file_bytes)


@dataclass(frozen=True)
class _Job:
    """One file for a worker process (picklable)."""

    path: str
    sha: str
    athlete_id: str
    zone: str | None
    home: str
    latest: date
    plausible: dict[str, Range]
    decoders: dict[str, str] | None = None  # format → "module:function", to replace a decoder (tests)
    origin: str | None = None  # the ledger's path (`export.zip!member`); None: `path`
    kind: str | None = None  # the file's role in a platform export, when it chooses the decoder
    labels: PlatformLabels | None = None  # names etc. from the export's tables
    modified_at: datetime | None = None

    @property
    def ledger_path(self) -> str:
        return self.origin or self.path


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
    decoders: dict[str, str] | None = None,
) -> ImportSummary:
    """Import `files`; returns what happened to each and which days changed (or still wait to be published).

    A file's ledger `path` is its `origin` (`export.zip!member` for an archive member); a file
    refused while listing (symlink, zip bomb, path traversal, ...) is failed with that reason.
    """
    warehouse.ensure_schema()
    lake.sweep()
    seen, originals = _known(warehouse)
    summary = ImportSummary(pending=_pending_days(warehouse))
    pending_rows: list[dict] = []
    labelled: list[tuple[Outcome, dict, PlatformLabels]] = []
    latest = latest_day or date.today().replace(year=date.today().year + 1)

    def record(outcome: Outcome, row: dict | None) -> None:
        summary.outcomes.append(outcome)
        if row is not None:
            pending_rows.append({**row, "_days": outcome.days})
        if len(pending_rows) >= LEDGER_CHUNK:
            _flush(warehouse, pending_rows)
        if progress:
            progress(outcome)

    def new_files() -> Iterator[_Job]:
        """Hash each file, settle the known, refused and duplicate ones here, and hand on the rest.
        Lazily: the workers decode the first files while later ones are still being hashed."""
        for source in files:
            path, origin = Path(source.path), source.ledger_path
            refusal = source.refusal or _refusal(path, limits.max_file_bytes)
            sha = sha256_of(path) if refusal is None else hashlib.sha256(origin.encode()).hexdigest()
            key = (sha, origin)
            if key in seen:
                record(Outcome(origin, source.athlete_id, "skipped", "already imported"), None)
                continue
            seen.add(key)
            original = originals.setdefault(sha, origin)
            if refusal is not None:
                record(*_failed(lake, path, sha, source.athlete_id, refusal, origin, sample_only=True))
                continue
            if original != origin:
                reason = f"same content as {original}"
                outcome = Outcome(origin, source.athlete_id, "duplicate", reason)
                row = _ledger_row(sha, path, source.athlete_id, origin, status="duplicate", reason=reason)
                if source.labels is not None:  # an export's copy of a file imported before: its labels, once decoded
                    labelled.append((outcome, row, source.labels))
                else:
                    record(outcome, row)
                continue
            zone = (zones or {}).get(source.athlete_id)
            yield _Job(str(path), sha, source.athlete_id, zone, str(lake.home), latest, limits.plausible, decoders,
                       origin, source.kind, source.labels, source.modified_at)

    for job, (outcome, detail) in _supervised(new_files(), workers, limits.decode_timeout_s):
        if outcome is None:  # the worker died or hung: `detail` says how; explain it here
            outcome, detail = _failed(lake, Path(job.path), job.sha, job.athlete_id, detail, job.ledger_path)
        record(outcome, detail)
    for outcome, row, labels in labelled:
        days, note = attach_labels(lake, row["sha256"], labels, latest)
        record(replace(outcome, days=days), {**row, "notes": note})
    _flush(warehouse, pending_rows)
    return summary


def attach_labels(lake: Lake, sha: str, labels: PlatformLabels, latest: date) -> tuple[tuple[date, ...], str | None]:
    """Give the activities already decoded from `sha` the platform labels of a later copy of the same
    bytes (a FIT file imported loose, then inside a Strava export): the lake's activities frame is
    rewritten, nothing is decoded again, and the days of those activities are returned to be published
    again (names, label evidence for the detector).  Idempotent: attaching the same labels again
    changes nothing but still returns the days, so an import killed before its ledger row catches up."""
    try:
        activities = lake.read_decoded([sha], "activities")
        named = label_activities(activities, labels) if activities is not None else None
    except Exception as error:  # an unreadable labels table must not stop the batch
        return (), f"platform labels not attached: {type(error).__name__}: {error}"
    if named is None:
        return (), None
    if not named.equals(activities):
        lake.replace_frame(sha, "activities", named)
    days = sorted(set(named.filter(placeable(EARLIEST_DAY, latest))["start_day"].to_list()))
    platform = ", ".join(sorted(set(named["platform"].drop_nulls().to_list()))) or "platform"
    return tuple(days), f"{platform} labels attached to the activities of the first copy"


def decode_into_lake(job: _Job) -> tuple[Outcome, dict]:
    """Decode one file, check its values, keep its raw copy and frames in the lake; never raises for bad input."""
    lake, source, started = Lake(Path(job.home)), Path(job.path), time.perf_counter()
    sha, athlete_id, origin = job.sha, job.athlete_id, job.ledger_path
    try:
        fmt, decode = decoder_for(source, job.kind, job.modified_at)
        if job.decoders and fmt in job.decoders:
            module, name = job.decoders[fmt].split(":")
            decode = getattr(importlib.import_module(module), name)
        decoded = with_platform_labels(decode(source), job.labels)
        checked, notes = validate(decoded, job.plausible, EARLIEST_DAY, job.latest)
        frames = warehouse_frames(checked, sha, athlete_id, job.zone)
    except DecodeError as error:
        return _failed(lake, source, sha, athlete_id, str(error), origin)
    except Exception as error:  # a bug must not stop the batch: explain and contain it
        return _failed(lake, source, sha, athlete_id, f"decoder crashed: {type(error).__name__}: {error}", origin)
    inside = placeable(EARLIEST_DAY, job.latest)
    unplaced = frames["activities"].filter(~inside)
    days = sorted(set(frames["activities"].filter(inside)["start_day"].to_list()))
    lake.keep_raw(source, sha, fmt)
    lake.write_decoded(sha, frames)
    if decoded.notes:
        notes.insert(0, decoded.notes)
    if len(unplaced):
        notes.append(_unplaced_note(unplaced))
    row = _ledger_row(
        sha, source, athlete_id, origin, status=decoded.status, reason=decoded.reason, notes="; ".join(notes) or None, format=fmt,
        decoder=decoded.decoder, decoder_version=decoded.decoder_version, records=len(decoded.records),
        activities=len(frames["activities"]), body_measurements=len(frames["body_measurements"]),
        first_day=days[0] if days else None, last_day=days[-1] if days else None,
        decode_s=time.perf_counter() - started,
    )
    return Outcome(origin, athlete_id, decoded.status, decoded.reason, len(decoded.records), tuple(days)), row


def _serve(connection) -> None:
    """A worker process: decode the jobs the importer sends until it sends None or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the importer's to handle
    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        connection.send(decode_into_lake(job))


class _Worker:
    """One decoder process and the job it is working on."""

    def __init__(self, context) -> None:
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True, name="retrostride-decoder")
        self.process.start()
        child.close()
        self.job: _Job | None = None
        self.deadline = 0.0

    def give(self, job: _Job, timeout_s: float) -> None:
        self.job, self.deadline = job, time.monotonic() + timeout_s
        self.connection.send(job)

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        elif self.process.is_alive():
            try:
                self.connection.send(None)
            except OSError:
                pass
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
        self.process.join()
        self.connection.close()


def _supervised(jobs: Iterable[_Job], workers: int, timeout_s: float) -> Iterator[tuple[_Job, tuple]]:
    """(job, (outcome, ledger row)) for every job, decoded in at most `workers` watched processes.

    Jobs are taken from `jobs` only when a worker is free, and a worker is started only when a job
    has none free (so one new file starts one process, and it starts while the rest is being read).
    A worker that dies or passes the time limit is replaced; its job comes back as (None, reason).
    Results come in the order they finish.
    """
    # spawn, not fork: Polars' and DuckDB's thread pools do not survive a fork
    context = multiprocessing.get_context("spawn")
    jobs = iter(jobs)
    pool: list[_Worker] = []
    more = True
    try:
        while True:
            while more and (any(w.job is None for w in pool) or len(pool) < max(1, workers)):
                job = next(jobs, None)
                if job is None:
                    more = False
                    break
                idle = next((w for w in pool if w.job is None), None)
                if idle is None:
                    idle = _Worker(context)
                    pool.append(idle)
                idle.give(job, timeout_s)
            busy = [w for w in pool if w.job is not None]
            if not busy:
                return
            soonest = min(w.deadline for w in busy) - time.monotonic()
            wait([w.connection for w in busy] + [w.process.sentinel for w in busy], timeout=max(soonest, 0.0))
            for worker in busy:
                job = worker.job
                result = _collect(worker, timeout_s)
                if result is None:
                    continue
                if result[0] is None:  # the process is gone: a fresh one takes its place if jobs remain
                    worker.stop(kill=True)
                    pool.remove(worker)
                worker.job = None
                yield job, result
    finally:
        for worker in pool:
            worker.stop(kill=worker.job is not None)


def _collect(worker: _Worker, timeout_s: float) -> tuple | None:
    """The worker's result, (None, reason) if it died or hung, or None while it is still working."""
    try:
        if worker.connection.poll():
            return worker.connection.recv()
    except (EOFError, OSError):
        pass
    else:
        if worker.process.is_alive() and time.monotonic() < worker.deadline:
            return None
        if worker.process.is_alive():
            worker.process.kill()
            return None, f"decoder timed out after {timeout_s:g} s (killed; the next import tries again)"
    worker.process.join()
    return None, f"decoder process died ({_exit(worker.process.exitcode)}; the next import tries again)"


def _exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _refusal(path: Path, max_bytes: int) -> str | None:
    if path.is_symlink():
        return "refused: symbolic link (only regular files are imported)"
    if not path.is_file():
        return "refused: not a regular file"
    size = path.stat().st_size
    if size > max_bytes:
        return f"refused: file is {size} bytes, over the {max_bytes}-byte limit (max_file_mb in retrostride.toml)"
    return None


def _failed(lake: Lake, path: Path, sha: str, athlete_id: str, reason: str, origin: str,
            sample_only: bool = False) -> tuple[Outcome, dict]:
    """A failed outcome and its ledger row, with a quarantine copy: a symbolic link as a link, and of
    a file refused before decoding (huge, a bomb's partial expansion) only its first bytes."""
    if path.is_file() or path.is_symlink():
        limit = QUARANTINE_SAMPLE_BYTES if sample_only else None
        lake.quarantine(path, sha, reason, name=safe_name(origin.rsplit("!", 1)[-1]), max_bytes=limit)
    row = _ledger_row(sha, path, athlete_id, origin, status="failed", reason=reason)
    return Outcome(origin, athlete_id, "failed", reason), row


def _unplaced_note(unplaced: pl.DataFrame) -> str:
    starts = ", ".join(str(s) if s is not None else "no timestamps" for s in unplaced["start_ts"].to_list()[:3])
    return f"{len(unplaced)} activity(ies) kept in the lake but not placed on a day (start: {starts})"


def _ledger_row(sha: str, path: Path, athlete_id: str, origin: str, **values) -> dict:
    row = {"sha256": sha, "path": origin, "athlete_id": athlete_id, "imported_at": datetime.now(timezone.utc)}
    try:
        row["bytes"] = path.stat().st_size if not path.is_symlink() else None
    except OSError:
        row["bytes"] = None
    return {**row, **values}


def _known(warehouse: Warehouse) -> tuple[set[tuple[str, str]], dict[str, str]]:
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


def _pending_days(warehouse: Warehouse) -> list[date]:
    return warehouse.query("SELECT DISTINCT day FROM pending_days ORDER BY day")["day"].to_list()


def _flush(warehouse: Warehouse, rows: list[dict]) -> None:
    """Write ledger rows and the days they touch in one transaction; a retried file's old row goes."""
    if not rows:
        return
    frame = pl.DataFrame([{c: r.get(c) for c in LEDGER} for r in rows], schema=LEDGER, strict=False)
    days = pl.DataFrame({"day": sorted({d for r in rows for d in r.get("_days", ())})}, schema=PENDING_DAYS)
    retried = " OR ".join("reason LIKE ?" for _ in RETRIED)
    with warehouse.transaction() as connection:
        connection.register("incoming_paths", frame.select("path"))
        connection.execute(
            f"DELETE FROM import_ledger WHERE status = 'failed' AND ({retried}) AND path IN (SELECT path FROM incoming_paths)",
            [f"{prefix}%" for prefix in RETRIED],
        )
        connection.unregister("incoming_paths")
        insert(connection, "import_ledger", frame)
        insert(connection, "pending_days", days)
    rows.clear()
