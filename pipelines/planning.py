"""What runs to ask for, decided in plain code (no Dagster): which files a sensor imports, which
month ranges a run publishes (few runs, no long empty stretches), which months a reprocess redoes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta


def months_of(days: list[date]) -> list[date]:
    """The first day of each month that `days` fall in."""
    return sorted({d.replace(day=1) for d in days})


def plan_ranges(months: list[date], max_ranges: int = 2) -> list[tuple[date, date]]:
    """Cover `months` (first days of months) with at most `max_ranges` ranges, split at the widest gaps."""
    ordered = sorted(set(months))
    if not ordered:
        return []
    gaps = sorted(range(1, len(ordered)), key=lambda i: (ordered[i] - ordered[i - 1], i), reverse=True)
    cuts = sorted(i for i in gaps[: max_ranges - 1] if (ordered[i] - ordered[i - 1]).days > 31)
    bounds = [0, *cuts, len(ordered)]
    return [(ordered[a], ordered[b - 1]) for a, b in zip(bounds, bounds[1:])]


def month_ranges(stale: list[date], occupied: list[date]) -> list[tuple[date, date]]:
    """Cover the `stale` months exactly: one range per stretch, bridging only months with no activities.

    `occupied` are the months that hold activities; an up-to-date occupied month between two stale
    ones splits the range (re-publishing it would be wasted work), an empty month does not (it is free).
    """
    wanted = sorted(set(stale))
    keep = sorted(set(occupied) - set(wanted))
    ranges: list[tuple[date, date]] = []
    for month in wanted:
        if ranges and not any(ranges[-1][1] < m < month for m in keep):
            ranges[-1] = (ranges[-1][0], month)
        else:
            ranges.append((month, month))
    return ranges


# ── Sensors: which files to import, which months to publish (no Dagster, no bytes parsed) ──────────


@dataclass(frozen=True)
class FileStat:
    """A file in a watched folder as a sensor lists it (a stat, no bytes read)."""

    key: str  # the path relative to the source's root: the cursor's name for it
    path: str  # absolute
    athlete_id: str
    size: int
    mtime_ns: int
    content_tag: str | None = None  # an object's ETag: its content's name without downloading it


@dataclass
class SourceCursor:
    """What a source's sensor has seen: each present file's last (size, mtime) and, once imported or
    known, its content hash (16 hex digits); and the hashes of files that left the folder lately,
    so a file moved or renamed inside the source is recognised."""

    files: dict[str, tuple[int, int, str | None]] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, text: str | None) -> SourceCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls({k: (v[0], v[1], v[2]) for k, v in data.get("files", {}).items()}, list(data.get("gone", [])))

    def to_json(self) -> str:
        return json.dumps(
            {"v": 1, "files": {k: list(v) for k, v in sorted(self.files.items())}, "gone": self.gone},
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class ImportPlan:
    """One tick's decision for a source: the batch to import (if any) and why the rest waits."""

    files: dict[str, str]  # absolute path -> athlete, in listing order
    run_key: str | None  # hash of the batch's content hashes: the same files never import twice
    waiting: int  # new or still-changing files: looked at again next tick
    known: int  # stable files whose content was already seen (copies, renames)
    deferred: int  # stable new files over the batch limit: next tick


def plan_import(
    cursor: SourceCursor,
    listing: list[FileStat],
    content_hash: Callable[[FileStat], str],
    max_files: int = 5000,
    remember_gone: int = 5000,
) -> tuple[ImportPlan, SourceCursor]:
    """Decide what to import from a source's `listing`, given what its sensor saw last tick.

    A file is imported once its size and modification time are the same on two consecutive ticks
    (a file still being written waits); `content_hash` is called only for such stable new files.
    A content already seen in this source (a copy, or a file moved or renamed) is not imported again.
    At most `max_files` files form one batch; the rest stay stable and go in the next tick's batch.
    """
    previous = cursor.files
    present = {f.key for f in listing}
    left = [sha for key, (_, _, sha) in previous.items() if key not in present and sha]
    gone = [*[s for s in cursor.gone if s not in left], *left][-remember_gone:]
    seen_contents = {sha for _, _, sha in previous.values() if sha} | set(gone)
    files: dict[str, tuple[int, int, str | None]] = {}
    batch: dict[str, str] = {}
    batch_shas: list[str] = []
    waiting = known = deferred = 0
    for stat in listing:
        before = previous.get(stat.key)
        if before is None or before[:2] != (stat.size, stat.mtime_ns):
            files[stat.key] = (stat.size, stat.mtime_ns, None)
            waiting += 1
            continue
        if before[2] is not None:
            files[stat.key] = before
            continue
        if len(batch) >= max_files:
            files[stat.key] = before
            deferred += 1
            continue
        sha = content_hash(stat)
        short = sha[:16]
        files[stat.key] = (stat.size, stat.mtime_ns, short)
        if short in seen_contents:
            known += 1
            continue
        seen_contents.add(short)
        batch[stat.path] = stat.athlete_id
        batch_shas.append(sha)
    run_key = "import-" + hashlib.sha256("\n".join(sorted(batch_shas)).encode()).hexdigest()[:32] if batch else None
    return ImportPlan(batch, run_key, waiting, known, deferred), SourceCursor(files, gone)


def month_end(first: date) -> date:
    """The last day of `first`'s month."""
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def months_between(first: date, last: date) -> list[date]:
    """The first days of the months first..last (first days of months), both included."""
    months = []
    while first <= last:
        months.append(first)
        first = month_end(first) + timedelta(days=1)
    return months
