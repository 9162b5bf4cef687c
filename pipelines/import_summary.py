"""What an import found, and what a forgotten file took with it: read from the warehouse, for the CLI."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the report's class is the CLI's too, which loads neither DuckDB nor Polars for a served import
    from retrostride.warehouse.store import Warehouse

#: Ledger statuses whose activities are new in this import (a byte-identical copy adds none).
DECODED = ("ok", "partial")


@dataclass
class ImportReport:
    """Files by outcome, the ones not imported whole, and the activities the imported files hold."""

    files: dict[str, int]  # status → files: ok, partial, no_activity, failed, duplicate, ignored, skipped
    problems: list[dict] = field(default_factory=list)  # {status, path, reason}
    activities_by_sport: dict[str, int] = field(default_factory=dict)  # canonical activities only
    first_day: date | None = None  # local days
    last_day: date | None = None
    athletes: list[str] = field(default_factory=list)
    backward_minutes: float = 0.0
    duplicates_folded: int = (
        0  # activities of this import that are the same run as another, from another file or source
    )

    @property
    def failed(self) -> int:
        return self.files.get("failed", 0)

    @classmethod
    def from_json(cls, values: dict) -> ImportReport:
        """The report `as_json` gave."""
        days = {key: values[key] and date.fromisoformat(values[key]) for key in ("first_day", "last_day")}
        return cls(**{**values, **days})

    def as_json(self) -> dict:
        values = asdict(self)
        values.update(
            first_day=self.first_day and self.first_day.isoformat(),
            last_day=self.last_day and self.last_day.isoformat(),
        )
        return values


def import_report(warehouse: Warehouse, outcomes: list) -> ImportReport:
    """The report of an import whose files came out as `outcomes` (warehouse.ingest Outcome)."""
    from retrostride.warehouse.publish import cross_source_duplicates

    counts = Counter(o.status for o in outcomes)
    report = ImportReport(
        files={
            s: counts.get(s, 0) for s in ("ok", "partial", "no_activity", "failed", "duplicate", "ignored", "skipped")
        },
        problems=[
            {"status": o.status, "path": o.path, "reason": o.reason}
            for o in outcomes
            if o.status in ("failed", "partial")
        ],
    )
    paths = [o.path for o in outcomes if o.status in DECODED]
    if not paths or not warehouse.exists():
        return report
    mine = f"""
        WITH run AS (SELECT DISTINCT sha256 FROM import_ledger
                     WHERE status IN {DECODED} AND path IN (SELECT unnest(?::VARCHAR[])))
        SELECT * FROM activities WHERE source_sha256 IN (SELECT sha256 FROM run)"""
    sports = warehouse.query(
        f"""
        SELECT coalesce(sport, 'unknown') AS sport, count(*) AS n FROM ({mine})
        WHERE duplicate_of IS NULL GROUP BY 1 ORDER BY 2 DESC, 1""",
        [paths],
    )
    report.activities_by_sport = dict(sports.iter_rows())
    [(first, last, athletes, backward_s)] = warehouse.query(
        f"""
        WITH mine AS ({mine})
        SELECT min(local_day), max(local_day), list(DISTINCT athlete_id ORDER BY athlete_id),
               (SELECT sum(duration_s) FROM segments WHERE direction = 'backward'
                  AND activity_id IN (SELECT activity_id FROM mine WHERE duplicate_of IS NULL))
        FROM mine""",
        [paths],
    ).iter_rows()
    report.first_day, report.last_day, report.athletes = first, last, list(athletes or [])
    report.backward_minutes = round((backward_s or 0.0) / 60, 1)
    report.duplicates_folded = cross_source_duplicates(warehouse, paths)
    return report
