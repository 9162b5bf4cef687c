"""One decoder batch, in a worker process: decode each file, check the batch's values, keep frames and raw copies in the lake."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl

from retrostride.connectors.batches import FILE, DecodedBatch
from retrostride.connectors.formats import decoder_for
from retrostride.connectors.frames import FileOwner, batch_frames, placeable
from retrostride.connectors.ingest.ledger import (
    Outcome,
    failed_outcome,
    ledger_row,
    unplaced_note,
)
from retrostride.connectors.platform_labels import (
    PlatformLabels,
    label_activities,
    with_platform_labels,
)
from retrostride.connectors.validate import Range, validate_batch
from retrostride.warehouse.disk import disk_full_as
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.schema import DecodedFile, DecodeError

#: Activities must start inside this window to be placed on a day (FIT's epoch is 1989-12-31).
EARLIEST_DAY = date(1990, 1, 1)


@dataclass(frozen=True)
class Job:
    """One file for a worker process (picklable)."""

    path: str
    sha: str
    athlete_id: str
    zone: str | None
    home: str
    latest: date
    plausible: dict[str, Range]
    origin: str | None = None  # the ledger's path (`export.zip!member`); None: `path`
    kind: str | None = None  # the file's role in a platform export, when it chooses the decoder
    labels: PlatformLabels | None = None  # names etc. from the export's tables
    modified_at: datetime | None = None

    @property
    def ledger_path(self) -> str:
        return self.origin or self.path


def decode_into_lake(
    jobs: list[Job], starting: Callable[[int], None] = lambda index: None
) -> list[tuple[Outcome, dict]]:
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
        fmt = None
        try:
            fmt, decode = decoder_for(Path(job.path), job.kind, job.modified_at)
            decoded.append(
                _Decoded(
                    index, fmt, with_platform_labels(decode(Path(job.path)), job.labels), time.perf_counter() - started
                )
            )
        except DecodeError as error:
            results[index] = failed_job(job, str(error), fmt)
        except Exception as error:  # a bug must not stop the batch: explain and contain it
            results[index] = crashed(job, error, fmt)
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


def attach_labels(
    lake: Lake, sha: str, pack: str, labels: PlatformLabels, latest: date
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


def _checked(jobs: list[Job], decoded: list[_Decoded]) -> dict[int, _Checked | tuple[Outcome, dict]]:
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
        return {decoded[0].index: crashed(job, error, decoded[0].fmt)}


def _checked_batch(jobs: list[Job], decoded: list[_Decoded]) -> list[_Checked]:
    started = time.perf_counter()
    owned = [jobs[d.index] for d in decoded]
    batch = DecodedBatch.of([d.file for d in decoded])
    batch, notes = validate_batch(
        batch, owned[0].plausible, EARLIEST_DAY, owned[0].latest
    )  # one import: one set of limits
    stacked = batch_frames(batch, [FileOwner(job.sha, job.athlete_id, job.zone) for job in owned])
    starts = stacked["activities"].select(
        FILE, "start_day", "start_ts", placeable(EARLIEST_DAY, owned[0].latest).alias("_placed")
    )
    days: list[set[date]] = [set() for _ in decoded]
    unplaced: list[list[datetime]] = [[] for _ in decoded]
    for file, day, start, placed in starts.iter_rows():  # one row per activity; no start day: neither
        if placed:
            days[file].add(day)
        elif placed is not None:
            unplaced[file].append(start)
    share = (time.perf_counter() - started) / len(decoded)
    return [
        _Checked(d, frames, notes[i], tuple(sorted(days[i])), unplaced[i], d.seconds + share)
        for i, (d, frames) in enumerate(zip(decoded, batch.unstacked(stacked)))
    ]


def _keep(job: Job, checked: _Checked, pack: str | None, pack_s: float) -> tuple[Outcome, dict]:
    """Keep a checked file's raw copy (its frames are in `pack`, written in `pack_s` per file): its
    outcome and ledger row."""
    lake, source, decoded = Lake(Path(job.home)), Path(job.path), checked.decoded.file
    started = time.perf_counter()
    lake.keep_raw(source, job.sha, checked.decoded.fmt)
    has_rows = any(len(frame) for frame in checked.frames.values())
    notes = ([decoded.notes] if decoded.notes else []) + checked.notes
    if checked.unplaced:
        notes.append(unplaced_note(checked.unplaced))
    days = checked.days
    status, reason = decoded.status, decoded.reason
    if status == "ok" and decoded.format in ACTIVITY_FORMATS and not _holds_activity(checked.frames):
        status, reason = "no_activity", no_activity_reason(decoded, checked.frames)
    elif untimed := checked.frames["activities"]["start_ts"].null_count():
        notes.append(f"{untimed} route(s) without timestamps: not activities")
    row = ledger_row(
        job.sha,
        source,
        job.athlete_id,
        job.ledger_path,
        status=status,
        reason=reason,
        notes="; ".join(notes) or None,
        format=checked.decoded.fmt,
        decoder=decoded.decoder,
        decoder_version=decoded.decoder_version,
        records=len(decoded.records),
        activities=checked.frames["activities"]["start_ts"].is_not_null().sum(),
        body_measurements=len(checked.frames["body_measurements"]),
        first_day=days[0] if days else None,
        last_day=days[-1] if days else None,
        decode_s=checked.seconds + pack_s + time.perf_counter() - started,
        lake_pack=pack if has_rows else None,
    )
    return Outcome(job.ledger_path, job.athlete_id, status, reason, len(decoded.records), days), row


#: Formats whose files are expected to hold activities (a platform table or a body CSV may hold none).
ACTIVITY_FORMATS = ("fit", "gpx", "tcx")


def _holds_activity(frames: dict[str, pl.DataFrame]) -> bool:
    """Whether a file gave anything the warehouse keeps: a timed activity or sample, or a weighing."""
    timed = lambda name, column: frames[name].height and frames[name][column].is_not_null().any()  # noqa: E731
    return bool(
        timed("activities", "start_ts")
        or timed("records", "ts")
        or frames["body_measurements"].height
        or frames["privacy_zones"].height
    )


def no_activity_reason(decoded: DecodedFile, frames: dict[str, pl.DataFrame]) -> str:
    """Why a file that decoded cleanly holds no activity, in the ledger's words."""
    if frames["records"].height:
        return "route without timestamps: not an activity"
    if decoded.kind and decoded.kind != "activity":
        return f"{decoded.kind.split('_')[0]} file: no activity"
    return f"no samples, sessions or weighings: no activity in this {decoded.format.upper()} file"


def failed_job(job: Job, reason: str, fmt: str | None = None) -> tuple[Outcome, dict]:
    """A job's failed outcome; `fmt`: the format it was recognised as, when it was."""
    return failed_outcome(Path(job.path), job.sha, job.athlete_id, reason, job.ledger_path, fmt=fmt)


def crashed(job: Job, error: Exception, fmt: str | None = None) -> tuple[Outcome, dict]:
    """A bug of ours some file's bytes trigger: a readable reason, the exception in the row's notes."""
    outcome, row = failed_job(
        job, "decoder crashed: an internal error of retrostride on this file (details in notes)", fmt
    )
    return outcome, {**row, "notes": f"{type(error).__name__}: {error}"[:500]}
