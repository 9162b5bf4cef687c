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
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from multiprocessing.connection import wait
from pathlib import Path

import polars as pl

from connectors.archives import QUARANTINE_SAMPLE_BYTES, safe_name
from connectors.formats import decoder_for
from connectors.batches import FILE, DecodedBatch
from connectors.frames import FileOwner, batch_frames, placeable
from connectors.labels import PlatformLabels, label_activities, with_platform_labels
from connectors.limits import MIB, IntakeLimits
from connectors.schema import LEDGER, PENDING_DAYS, DecodedFile, DecodeError
from connectors.sources import SourceFile, file_refusal
from connectors.validate import PLAUSIBLE, Range, validate_batch
from warehouse.disk import DiskFull, disk_full_as
from warehouse.lake import Lake
from warehouse.packs import current_packs
from warehouse.processes import single_threaded_polars
from warehouse.store import Warehouse, insert

#: Activities must start inside this window to be placed on a day (FIT's epoch is 1989-12-31).
EARLIEST_DAY = date(1990, 1, 1)
#: Files a decoder process takes at a time, and their most bytes (a batch's frames are in memory
#: together): the Polars steps after decoding run once per batch (~35 calls of 0.1–0.3 ms each,
#: more than decoding a file takes).
DECODE_BATCH = 32
DECODE_BATCH_BYTES = 8 * 2**20
#: Ledger rows written per transaction (~90 ms each); a killed import decodes at most these again.
LEDGER_CHUNK = 500
#: Room a ledger write may need (DuckDB's write-ahead log and a new block), for a full disk's message.
LEDGER_WRITE_BYTES = 4 * MIB
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
    max_quarantine_bytes: int = 256 * MIB  # copies of failed files one import may put in quarantine/

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
    status: str  # ok | partial | failed | duplicate | ignored | skipped
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
    with disk_full_as(warehouse.path, LEDGER_WRITE_BYTES):
        warehouse.ensure_schema()
    lake.sweep()
    packs = current_packs(warehouse)
    lake.drop_unreferenced(set(packs.values()))
    seen, originals = _known(warehouse)
    summary = ImportSummary(pending=_pending_days(warehouse))
    pending_rows: list[dict] = []
    labelled: list[tuple[Outcome, dict, PlatformLabels]] = []
    latest = latest_day or date.today().replace(year=date.today().year + 1)
    allowance = _Allowance(limits.max_quarantine_bytes)

    def record(outcome: Outcome, row: dict | None) -> None:
        summary.outcomes.append(outcome)
        if row is not None and "_quarantine" in row:
            row = _quarantine_copy(lake, row, allowance)
        if row is not None:
            pending_rows.append({**row, "_days": outcome.days})
            if row.get("lake_pack"):
                packs[row["sha256"]] = row["lake_pack"]
        if len(pending_rows) >= LEDGER_CHUNK:
            _flush(warehouse, pending_rows)
        if progress:
            progress(outcome)

    def new_files() -> Iterator[_Job]:
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
                    refusal = file_refusal(path) or f"refused: cannot be read ({(error.strerror or str(error)).lower()})"
            sha = sha or hashlib.sha256(origin.encode()).hexdigest()
            key = (sha, origin)
            if key in seen:
                record(Outcome(origin, source.athlete_id, "skipped", "already imported"), None)
                continue
            seen.add(key)
            if source.ignored:
                record(Outcome(origin, source.athlete_id, "ignored", source.ignored),
                       _ledger_row(sha, path, source.athlete_id, origin, status="ignored", reason=source.ignored))
                continue
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
            outcome, detail = _failed_job(job, detail)
        record(outcome, detail)
    for outcome, row, labels in labelled:
        sha = row["sha256"]
        days, note, pack = attach_labels(lake, sha, packs.get(sha, sha), labels, latest)
        record(replace(outcome, days=days), {**row, "notes": note, "lake_pack": pack})
    _flush(warehouse, pending_rows)
    return summary


def attach_labels(lake: Lake, sha: str, pack: str, labels: PlatformLabels, latest: date
                  ) -> tuple[tuple[date, ...], str | None, str | None]:
    """Give the activities already decoded from `sha` (in `pack`) the platform labels of a later copy
    of the same bytes (a FIT file imported loose, then inside a Strava export): the file's frames go to
    a new pack with the activities relabelled, nothing is decoded again, and the days of those
    activities are returned to be published again (names, label evidence for the detector), with a
    note and the new pack (None: nothing changed).  Idempotent: attaching the same labels again
    changes nothing but still returns the days, so an import killed before its ledger row catches up."""
    try:
        frames = lake.read_file(sha, pack)
        activities = frames.get("activities")
        named = label_activities(activities, labels) if activities is not None else None
    except Exception as error:  # an unreadable labels table must not stop the batch
        return (), f"platform labels not attached: {type(error).__name__}: {error}", None
    if named is None:
        return (), None, None
    relabelled = lake.write_pack({**frames, "activities": named}) if not named.equals(activities) else None
    days = sorted(set(named.filter(placeable(EARLIEST_DAY, latest))["start_day"].to_list()))
    platform = ", ".join(sorted(set(named["platform"].drop_nulls().to_list()))) or "platform"
    return tuple(days), f"{platform} labels attached to the activities of the first copy", relabelled


def decode_into_lake(jobs: list[_Job], starting: Callable[[int], None] = lambda index: None) -> list[tuple[Outcome, dict]]:
    """Decode a batch of files, check their values, keep each one's raw copy and frames in the lake;
    (outcome, ledger row) per job, in order; never raises for bad input.

    Each file is decoded on its own; the Polars steps after decoding run once for the batch
    (`connectors.batches`).  `starting(i)` is called before file i is decoded, and with -1 before
    the steps the batch shares, so the supervisor knows which file a hang or a crash belongs to."""
    results: dict[int, tuple[Outcome, dict]] = {}
    decoded: list[_Decoded] = []
    for index, job in enumerate(jobs):
        starting(index)
        started = time.perf_counter()
        try:
            fmt, decode = decoder_for(Path(job.path), job.kind, job.modified_at)
            if job.decoders and fmt in job.decoders:
                module, name = job.decoders[fmt].split(":")
                decode = getattr(importlib.import_module(module), name)
            decoded.append(_Decoded(index, fmt, with_platform_labels(decode(Path(job.path)), job.labels),
                                    time.perf_counter() - started))
        except DecodeError as error:
            results[index] = _failed_job(job, str(error))
        except Exception as error:  # a bug must not stop the batch: explain and contain it
            results[index] = _failed_job(job, f"decoder crashed: {type(error).__name__}: {error}")
    starting(-1)
    checked = _checked(jobs, decoded)
    kept = {index: c for index, c in checked.items() if isinstance(c, _Checked)}
    results.update({index: c for index, c in checked.items() if index not in kept})
    if kept:
        started = time.perf_counter()
        home = Path(jobs[0].home)
        with disk_full_as(home, sum(_size(jobs[index].path) for index in kept) * 2):  # raw copies and Parquet
            pack = Lake(home).write_pack(_stacked([c.frames for c in kept.values()]))
            share = (time.perf_counter() - started) / len(kept)
            for index, one in kept.items():
                results[index] = _keep(jobs[index], one, pack, share)
    return [results[index] for index in range(len(jobs))]


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _stacked(frames: list[dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    """The frames of several files, one under the other (frames without rows left out)."""
    names = {name for one in frames for name, frame in one.items() if len(frame)}
    return {name: pl.concat([one[name] for one in frames if len(one[name])], how="diagonal_relaxed") for name in names}


@dataclass(frozen=True)
class _Decoded:
    """One decoded file of a batch: its position, format, frames and decoding time."""

    index: int
    fmt: str
    file: DecodedFile
    seconds: float


@dataclass(frozen=True)
class _Checked:
    """A decoded file's warehouse frames, its validation notes, the days it touches and its unplaced starts."""

    decoded: _Decoded
    frames: dict[str, pl.DataFrame]
    notes: list[str]
    days: tuple[date, ...]
    unplaced: list[datetime]
    seconds: float


def _checked(jobs: list[_Job], decoded: list[_Decoded]) -> dict[int, _Checked | tuple[Outcome, dict]]:
    """Validate the decoded files and make their warehouse frames, as one batch.  Should that raise
    (a bug some file's values trigger), each file goes again on its own, so only that file fails."""
    if not decoded:
        return {}
    try:
        return {checked.decoded.index: checked for checked in _checked_batch(jobs, decoded)}
    except Exception as error:
        if len(decoded) > 1:
            return {index: checked for one in decoded for index, checked in _checked(jobs, [one]).items()}
        job = jobs[decoded[0].index]
        return {decoded[0].index: _failed_job(job, f"decoder crashed: {type(error).__name__}: {error}")}


def _checked_batch(jobs: list[_Job], decoded: list[_Decoded]) -> list[_Checked]:
    started = time.perf_counter()
    owned = [jobs[d.index] for d in decoded]
    batch = DecodedBatch.of([d.file for d in decoded])
    batch, notes = validate_batch(batch, owned[0].plausible, EARLIEST_DAY, owned[0].latest)  # one import: one set of limits
    stacked = batch_frames(batch, [FileOwner(job.sha, job.athlete_id, job.zone) for job in owned])
    starts = stacked["activities"].select(FILE, "start_day", "start_ts", placeable(EARLIEST_DAY, owned[0].latest).alias("_placed"))
    days: list[set[date]] = [set() for _ in decoded]
    unplaced: list[list[datetime]] = [[] for _ in decoded]
    for file, day, start, placed in starts.iter_rows():  # one row per activity; no start day: neither
        if placed:
            days[file].add(day)
        elif placed is not None:
            unplaced[file].append(start)
    share = (time.perf_counter() - started) / len(decoded)
    return [_Checked(d, frames, notes[i], tuple(sorted(days[i])), unplaced[i], d.seconds + share)
            for i, (d, frames) in enumerate(zip(decoded, batch.unstacked(stacked)))]


def _keep(job: _Job, checked: _Checked, pack: str | None, pack_s: float) -> tuple[Outcome, dict]:
    """Keep a checked file's raw copy (its frames are in `pack`, written in `pack_s` per file): its
    outcome and ledger row."""
    lake, source, decoded = Lake(Path(job.home)), Path(job.path), checked.decoded.file
    started = time.perf_counter()
    lake.keep_raw(source, job.sha, checked.decoded.fmt)
    has_rows = any(len(frame) for frame in checked.frames.values())
    notes = ([decoded.notes] if decoded.notes else []) + checked.notes
    if checked.unplaced:
        notes.append(_unplaced_note(checked.unplaced))
    days = checked.days
    row = _ledger_row(
        job.sha, source, job.athlete_id, job.ledger_path, status=decoded.status, reason=decoded.reason,
        notes="; ".join(notes) or None, format=checked.decoded.fmt, decoder=decoded.decoder,
        decoder_version=decoded.decoder_version, records=len(decoded.records),
        activities=len(checked.frames["activities"]), body_measurements=len(checked.frames["body_measurements"]),
        first_day=days[0] if days else None, last_day=days[-1] if days else None,
        decode_s=checked.seconds + pack_s + time.perf_counter() - started, lake_pack=pack if has_rows else None,
    )
    return Outcome(job.ledger_path, job.athlete_id, decoded.status, decoded.reason, len(decoded.records), days), row


def _serve(connection) -> None:
    """A worker process: decode the batches the importer sends until it sends None or goes away.
    Before each file it sends the file's position in the batch (-1: the shared steps), then the results."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the importer's to handle
    while True:
        try:
            jobs = connection.recv()
        except (EOFError, OSError):
            return
        if jobs is None:
            return
        try:
            results = decode_into_lake(jobs, connection.send)
        except DiskFull as full:  # the import ends: the importer raises it
            results = full
        connection.send(results)


class _Worker:
    """One decoder process, the batch it is working on, and the file of it it is at."""

    def __init__(self, context, shares_cores: bool) -> None:
        self.connection, child = context.Pipe()
        with single_threaded_polars() if shares_cores else nullcontext():  # several workers already use every core
            self.process = context.Process(target=_serve, args=(child,), daemon=True, name="retrostride-decoder")
            self.process.start()
        child.close()
        self.batch: list[_Job] | None = None
        self.at = -1
        self.deadline = 0.0

    def give(self, batch: list[_Job], timeout_s: float) -> None:
        self.batch, self.at, self.deadline = batch, -1, time.monotonic() + timeout_s
        self.connection.send(batch)

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


@dataclass(frozen=True)
class _Lost:
    """A worker that died or passed the time limit, and why."""

    reason: str
    hung: bool


def _supervised(jobs: Iterable[_Job], workers: int, timeout_s: float) -> Iterator[tuple[_Job, tuple]]:
    """(job, (outcome, ledger row)) for every job, decoded in batches of up to `DECODE_BATCH` in at
    most `workers` watched processes.

    Jobs are taken from `jobs` only when a worker is free, and a worker is started only when a batch
    has none free (so one new file starts one process, and it starts while the rest is being read).
    A worker that dies or passes the time limit (per file) is replaced.  The file it hung on comes
    back as (None, reason); when it died, each file of its batch is decoded again on its own, so
    only a file that kills a worker by itself comes back as (None, reason).  Results come in the
    order their batches finish.
    """
    # spawn, not fork: Polars' and DuckDB's thread pools do not survive a fork
    context = multiprocessing.get_context("spawn")
    batches = _batches(jobs)
    alone: deque[_Job] = deque()  # files of a batch whose worker died: one per batch, to find the culprit
    pool: list[_Worker] = []
    more = True
    try:
        while True:
            while (alone or more) and (any(w.batch is None for w in pool) or len(pool) < max(1, workers)):
                batch = [alone.popleft()] if alone else next(batches, None)
                if batch is None:
                    more = False
                    break
                idle = next((w for w in pool if w.batch is None), None)
                if idle is None:
                    idle = _Worker(context, shares_cores=workers > 1)
                    pool.append(idle)
                idle.give(batch, timeout_s)
            busy = [w for w in pool if w.batch is not None]
            if not busy:
                return
            soonest = min(w.deadline for w in busy) - time.monotonic()
            wait([w.connection for w in busy] + [w.process.sentinel for w in busy], timeout=max(soonest, 0.0))
            for worker in busy:
                batch, at = worker.batch, worker.at
                result = _collect(worker, timeout_s)
                if result is None:
                    continue
                worker.batch = None
                if isinstance(result, DiskFull):
                    raise result
                if not isinstance(result, _Lost):
                    yield from zip(batch, result)
                    continue
                worker.stop(kill=True)  # a fresh process takes its place if jobs remain
                pool.remove(worker)
                if len(batch) == 1 or (result.hung and at >= 0):
                    yield batch[max(at, 0)], (None, result.reason)
                    alone.extend(job for i, job in enumerate(batch) if i != max(at, 0))
                else:
                    alone.extend(batch)
    finally:
        for worker in pool:
            worker.stop(kill=worker.batch is not None)


def _batches(jobs: Iterable[_Job]) -> Iterator[list[_Job]]:
    """`jobs` in batches of up to `DECODE_BATCH` files and `DECODE_BATCH_BYTES` (at least one file),
    each taken as late as possible: when a worker asks for it."""
    batch: list[_Job] = []
    size = 0
    for job in jobs:
        batch.append(job)
        try:
            size += os.path.getsize(job.path)
        except OSError:  # gone since it was hashed: its decoder says so
            pass
        if len(batch) == DECODE_BATCH or size >= DECODE_BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _collect(worker: _Worker, timeout_s: float) -> list | _Lost | None:
    """The batch's results, `_Lost` if the worker died or hung, or None while it is still working
    (each file it starts gives it `timeout_s` more)."""
    try:
        while worker.connection.poll():
            message = worker.connection.recv()
            if not isinstance(message, int):
                return message
            worker.at, worker.deadline = message, time.monotonic() + timeout_s
    except (EOFError, OSError):
        pass
    else:
        if worker.process.is_alive() and time.monotonic() < worker.deadline:
            return None
        if worker.process.is_alive():
            worker.process.kill()
            return _Lost(f"decoder timed out after {timeout_s:g} s (killed; the next import tries again)", hung=True)
    worker.process.join()
    return _Lost(f"decoder process died ({_exit(worker.process.exitcode)}; the next import tries again)", hung=False)


def _exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _refusal(path: Path, max_bytes: int) -> str | None:
    refusal = file_refusal(path)
    if refusal is not None:
        return refusal
    size = path.stat().st_size
    if size > max_bytes:
        return f"refused: file is {size} bytes, over the {max_bytes}-byte limit (max_file_mb in retrostride.toml)"
    return None


def _failed(lake: Lake, path: Path, sha: str, athlete_id: str, reason: str, origin: str,
            sample_only: bool = False) -> tuple[Outcome, dict]:
    """A failed outcome and its ledger row, which asks for a quarantine copy (made by the importer,
    `_quarantine_copy`): of a file refused before decoding (huge, a bomb's partial expansion) only
    its first bytes."""
    row = _ledger_row(sha, path, athlete_id, origin, status="failed", reason=reason, _quarantine=(str(path), sample_only))
    return Outcome(origin, athlete_id, "failed", reason), row


def _failed_job(job: _Job, reason: str) -> tuple[Outcome, dict]:
    return _failed(Lake(Path(job.home)), Path(job.path), job.sha, job.athlete_id, reason, job.ledger_path)


@dataclass
class _Allowance:
    """Bytes of quarantine copies one import may still write."""

    remaining: int


def _quarantine_copy(lake: Lake, row: dict, allowance: _Allowance) -> dict:
    """Copy a failed file aside as its row asks (a symbolic link as a link), within the import's
    quarantine allowance; the row without the request, and with a note when no copy was made."""
    row = dict(row)
    path, sample_only = row.pop("_quarantine")
    path = Path(path)
    if not (path.is_file() or path.is_symlink()):
        return row
    size = 0 if path.is_symlink() else path.stat().st_size
    kept = min(size, QUARANTINE_SAMPLE_BYTES) if sample_only else size
    if kept > allowance.remaining:
        note = f"no quarantine copy: this import's quarantine allowance ({allowance.remaining} of its bytes left) is used up"
        return {**row, "notes": "; ".join(filter(None, [row.get("notes"), note]))}
    name = safe_name(row["path"].rsplit("!", 1)[-1])
    try:
        with disk_full_as(lake.quarantine_dir(), kept):
            lake.quarantine(path, row["sha256"], row["reason"], name=name, max_bytes=QUARANTINE_SAMPLE_BYTES if sample_only else None)
    except PermissionError:
        return {**row, "notes": "; ".join(filter(None, [row.get("notes"), "no quarantine copy: the file cannot be read"]))}
    allowance.remaining -= kept
    return row


def _unplaced_note(unplaced: list[datetime]) -> str:
    starts = ", ".join(str(s) for s in unplaced[:3])
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
    with disk_full_as(warehouse.path, LEDGER_WRITE_BYTES), warehouse.transaction() as connection:
        connection.register("incoming_paths", frame.select("path"))
        connection.execute(
            f"DELETE FROM import_ledger WHERE status = 'failed' AND ({retried}) AND path IN (SELECT path FROM incoming_paths)",
            [f"{prefix}%" for prefix in RETRIED],
        )
        connection.unregister("incoming_paths")
        insert(connection, "import_ledger", frame)
        insert(connection, "pending_days", days)
    rows.clear()
