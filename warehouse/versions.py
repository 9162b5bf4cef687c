"""Which months of the warehouse a model change has left stale: rows of another model version, or none."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from retrostride.warehouse.store import Warehouse, of_athletes

_MONTH = "CAST(date_trunc('month', a.start_day) AS DATE)"


def stale_months(
    warehouse: Warehouse,
    versions: Mapping[str, str],
    required: Sequence[str] = (),
    athletes: list[str] | None = None,
) -> list[date]:
    """First days of the months (of activities' UTC start day) that need re-deriving, for `athletes`
    (None: any).

    A month is stale when a row of a table in `versions` (keyed by `activity_id`, with a
    `model_version` column) belongs to one of its activities and carries another version than the
    table's current one; or when the month has activities but a table in `required` has no row for
    any of them (derived rows never made).
    """
    if not warehouse.exists():
        return []
    present = set(
        warehouse.query("SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()")[
            "table_name"
        ].to_list()
    )
    if "activities" not in present:
        return []
    activities = f"(SELECT * FROM activities WHERE {of_athletes(athletes)})"
    parts, parameters = [], []
    for table, version in versions.items():
        if table in present:
            parts.append(
                f"SELECT {_MONTH} AS month FROM {activities} a JOIN {table} t USING (activity_id) "
                "WHERE t.model_version IS DISTINCT FROM ?"
            )
            parameters.append(version)
    for table in required:
        if table in present:
            parts.append(
                f"SELECT {_MONTH} AS month FROM {activities} a GROUP BY 1 "
                f"HAVING count(*) FILTER (WHERE a.activity_id IN (SELECT activity_id FROM {table})) = 0"
            )
    if not parts:
        return []
    rows = warehouse.query(f"SELECT DISTINCT month FROM ({' UNION ALL '.join(parts)}) ORDER BY month", parameters)
    return rows["month"].to_list()


def occupied_months(warehouse: Warehouse, athletes: list[str] | None = None) -> list[date]:
    """First days of the months that hold activities (of `athletes`; None: any)."""
    if not warehouse.exists():
        return []
    return warehouse.query(
        f"SELECT DISTINCT {_MONTH} AS month FROM activities a WHERE {of_athletes(athletes, 'a.athlete_id')} ORDER BY 1"
    )["month"].to_list()


def version_counts(warehouse: Warehouse, tables: Sequence[str]) -> dict[str, dict[str, int]]:
    """Rows per model_version in each of `tables` that exists: what a user checks after a reprocess."""
    present = set(
        warehouse.query("SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()")[
            "table_name"
        ].to_list()
    )
    counts = {}
    for table in tables:
        if table in present:
            rows = warehouse.query(f"SELECT model_version, count(*) AS n FROM {table} GROUP BY 1 ORDER BY 1")
            counts[table] = dict(zip(rows["model_version"].to_list(), rows["n"].to_list()))
    return counts
