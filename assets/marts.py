"""Marts: SQL views over the published tables, always as fresh as the tables they read."""

import dagster as dg

from pipelines.resources import Storage


@dg.asset(deps=["activities", "body_measurements", "segments", "activity_energy"], group_name="marts", pool="warehouse", kinds={"duckdb", "sql"})
def mileage_weekly(storage: Storage) -> dg.MaterializeResult:
    """Weekly distance per athlete, sport, direction and gait, by ISO week of the local start date."""
    warehouse = storage.warehouse
    warehouse.ensure_schema()
    summary = warehouse.query("SELECT count(*) AS rows, count(DISTINCT athlete_id) AS athletes, sum(distance_km) AS km FROM mileage_weekly").row(0, named=True)
    return dg.MaterializeResult(metadata={k: v if v is not None else 0 for k, v in summary.items()})
