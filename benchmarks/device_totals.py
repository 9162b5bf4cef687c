"""Activity totals against the recording device's own FIT `session` summary.

    python benchmarks/device_totals.py [--corpora PATH] [--extra PATH ...] [--home DIR] [--only NAME ...]

Every file under the corpora (and `--extra` files or folders) is imported into a fresh home through
the pipeline, as a user would.  Each FIT session that states device totals, read with fitparse (the
reference; values taken from `message.fields`, so a duplicated field name loses nothing), is matched
to the warehouse activity of the same file and session (sessions numbered in start order, as the
importer numbers them), and compared:

- distance within max(2 %, 20 m) of `total_distance`,
- elapsed time within max(2 %, 10 s) of `total_elapsed_time`,
- climb within max(25 %, 20 m) of `total_ascent`.

A session agrees when every total it states agrees.  The share of agreeing sessions is printed, then
every disagreement with its reason (the warehouse's value, or why there is none: the file's ledger
outcome).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import fitparse

from retrostride.assets.settings import Settings
from retrostride.pipelines.runs import import_paths
from retrostride.warehouse.store import Warehouse

DEFAULT_CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
#: The tolerances of issue 16: (share, floor) per total.
TOLERANCES = {"distance_m": (0.02, 20.0), "duration_s": (0.02, 10.0), "elevation_gain_m": (0.25, 20.0)}
#: FIT session field → warehouse `activities` column.
TOTALS = {"total_distance": "distance_m", "total_elapsed_time": "duration_s", "total_ascent": "elevation_gain_m"}


@dataclass
class Session:
    path: Path
    index: int  # position in start order: the warehouse's `session`
    start: datetime | None
    totals: dict[str, float]  # warehouse column → device value
    sport: str | None = None


@dataclass
class Verdict:
    session: Session
    problems: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return not self.problems


def fit_files(paths: list[Path]) -> list[Path]:
    """FIT files under `paths`, recognised by their header (`.FIT` at byte 8), not their names."""
    found = []
    for root in paths:
        for path in sorted([root] if root.is_file() else root.rglob("*")):
            if path.is_file() and path.stat().st_size >= 12 and path.read_bytes()[8:12] == b".FIT":
                found.append(path)
    return found


def device_sessions(path: Path) -> list[Session] | None:
    """The file's `session` messages that state totals; None when fitparse rejects the file (a CRC
    mismatch, a bad header, truncated): a damaged file's summary is no reference."""
    found: list[tuple[datetime | None, dict[str, float], str | None]] = []
    try:
        for message in fitparse.FitFile(str(path)).get_messages("session"):
            values: dict[str, object] = {}
            for f in message.fields:  # a name can appear twice (native + component): keep the first value
                if values.get(f.name) is None:
                    values[f.name] = f.value
            start = values.get("start_time")
            totals = {
                column: float(values[name])
                for name, column in TOTALS.items()
                if isinstance(values.get(name), (int, float))
            }
            sport = values.get("sport")
            found.append(
                (
                    start.replace(tzinfo=UTC) if isinstance(start, datetime) else None,
                    totals,
                    sport if isinstance(sport, str) else None,
                )
            )
    except Exception:
        return None
    ordered = sorted(
        found, key=lambda s: (s[0] is None, s[0] or datetime.min.replace(tzinfo=UTC))
    )  # stable, nulls last
    return [Session(path, i, start, totals, sport) for i, (start, totals, sport) in enumerate(ordered) if totals]


def import_all(home: Path, paths: list[Path], athlete: str = "benchmark") -> Warehouse:
    """Import `paths` through the pipeline into the home at `home` (made or added to) as `athlete`."""
    settings = Settings(
        home=home / "data", inbox=home / "inbox", athletes_file=home / "data" / "athletes.toml", workers=1
    )
    import_paths(settings, paths, athlete)
    return Warehouse(settings.catalog)


def compare(sessions: list[Session], warehouse: Warehouse) -> list[Verdict]:
    activities = {
        (sha, session): values
        for sha, session, *values in warehouse.query(
            "SELECT source_sha256, session, distance_m, duration_s, elevation_gain_m FROM activities"
        ).rows()
    }
    ledger = {
        sha: (status, reason, notes)
        for sha, status, reason, notes in warehouse.query(
            "SELECT sha256, status, reason, notes FROM import_ledger"
        ).rows()
    }
    verdicts = []
    for session in sessions:
        sha = hashlib.sha256(session.path.read_bytes()).hexdigest()
        verdict = Verdict(session)
        row = activities.get((sha, session.index))
        if row is None:
            status, reason, notes = ledger.get(sha, ("not in the ledger", None, None))
            verdict.problems.append(
                f"no activity (ledger: {status}{': ' + reason if reason else ''}{'; notes: ' + notes if notes else ''})"
            )
            verdicts.append(verdict)
            continue
        got = dict(zip(("distance_m", "duration_s", "elevation_gain_m"), row, strict=True))
        for column, expected in session.totals.items():
            share, floor = TOLERANCES[column]
            value = got[column]
            if value is None or math.isnan(value):
                verdict.problems.append(f"{column}: device {expected:.1f}, warehouse none")
            elif abs(value - expected) > max(share * abs(expected), floor):
                verdict.problems.append(f"{column}: device {expected:.1f}, warehouse {value:.1f}")
        verdicts.append(verdict)
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    parser.add_argument("--extra", type=Path, nargs="*", default=[], help="more real files or folders")
    parser.add_argument("--home", type=Path, help="where to import (default: a temporary folder, removed after)")
    parser.add_argument("--only", nargs="*", help="only files whose name contains one of these (a quick subset)")
    args = parser.parse_args()
    roots = [args.corpora, *args.extra]
    if args.only:
        roots = [p for p in fit_files(roots) if any(o in p.name for o in args.only)]
    home = args.home or Path(tempfile.mkdtemp(prefix="device-totals-"))
    try:
        read = {path: device_sessions(path) for path in fit_files(roots)}
        sessions = [s for found in read.values() if found for s in found]
        verdicts = compare(sessions, import_all(home, roots))
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    agreeing = sum(v.agrees for v in verdicts)
    print(
        f"{agreeing} of {len(verdicts)} FIT sessions agree with the device's totals "
        f"({100 * agreeing / max(len(verdicts), 1):.1f} %), from {len({v.session.path for v in verdicts})} files; "
        f"not compared: {sum(found is None for found in read.values())} files fitparse rejects"
    )
    for verdict in verdicts:
        if not verdict.agrees:
            s = verdict.session
            print(
                f"- {s.path.name} session {s.index} ({s.sport or 'no sport'}, {s.start or 'no start'}): "
                + "; ".join(verdict.problems)
            )


if __name__ == "__main__":
    main()
