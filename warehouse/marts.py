"""Refresh the marts: the views of warehouse/sql/views/ over the published tables, with the
parameters they read in `mart_settings`.

The marts are views, not tables: measured on a synthetic 10-year warehouse (benchmarks/
marts_10_years.py, figures in the README) every mart answers in well under a second as a view,
while materializing them all would add its cost to every import and could go stale.
"""

from __future__ import annotations

from retrostride.warehouse.mart_config import MartConfig, settings_row
from retrostride.warehouse.store import Warehouse, insert, view_sql

#: The marts users query (the other views are building blocks or bookkeeping).
MARTS = (
    "mileage_daily",
    "mileage_weekly",
    "mileage_monthly",
    "mileage_yearly",
    "mileage_rolling",
    "backward_streaks",
    "longest_backward_streak",
    "outcomes_6wk",
    "study_comparison",
    "study_comparison_summary",
)


def refresh_marts(warehouse: Warehouse, config: MartConfig) -> None:
    """(Re)create the views and store `config` as `mart_settings`. Their rows are not counted: that
    computed every mart, in the writer's turn, before the snapshot readers wait for (README, Performance)."""
    warehouse.ensure_schema()

    def store(connection) -> None:
        current = connection.execute("SELECT * FROM mart_settings").pl()
        if current.rows() != settings_row(config).select(current.columns).rows():  # unchanged: no new snapshot
            connection.execute("DELETE FROM mart_settings")
            insert(connection, "mart_settings", settings_row(config))

    warehouse.write(store)


def mart_description(name: str) -> str:
    """The leading comment of a view's SQL file, as one paragraph."""
    lines = []
    for line in view_sql()[name].splitlines():
        if not line.startswith("--"):
            break
        lines.append(line.removeprefix("--").strip())
    return " ".join(lines)
