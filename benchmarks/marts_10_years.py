"""Time typical mart queries on a synthetic 10-year warehouse, views against materialized tables.

    .venv/bin/python benchmarks/marts_10_years.py [--athletes 10] [--years 10] [--records 0]

The warehouse is made directly with SQL in the real schema (Warehouse.ensure_schema): each athlete
runs on ~5 days a week, each run split into forward and backward segments, with 3 weighings a
week.  `--records N` adds N noisy samples per activity, to see what publishing the snapshot costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repository's benchmarks package

from benchmarks.warehouse_docs import example_queries
from retrostride.warehouse.marts import MARTS
from retrostride.warehouse.store import Warehouse, view_sql


def synthesize(warehouse: Warehouse, athletes: int, years: int, records: int) -> dict[str, int]:
    """Fill `warehouse` with `years` of history for `athletes`; returns row counts."""
    warehouse.ensure_schema()
    days = 365 * years
    with warehouse.transaction() as c:
        c.execute(f"""
            CREATE TEMP TABLE runs AS
            SELECT 'athlete' || a AS athlete_id, a, d, format('{{}}-{{}}', a, d) AS activity_id,
                   DATE '2016-01-04' + d AS local_day,
                   TIMESTAMPTZ '2016-01-04 06:00:00+00' + to_days(d) + to_minutes(CAST(hash(a, d) % 600 AS INTEGER)) AS start_ts,
                   3000 + hash(a, d, 1) % 9000 AS distance_m,
                   hash(a, d, 2) % 10 < 4 AS with_backward
            FROM range({athletes}) AS t(a), (SELECT CAST(range AS INTEGER) AS d FROM range({days})) AS u
            WHERE hash(a, d) % 7 < 5""")
        c.execute("""
            INSERT INTO activities BY NAME
            SELECT activity_id, athlete_id, 'fit' AS source, 'running' AS sport, start_ts,
                   start_ts + to_seconds(distance_m / 2.8) AS end_ts, CAST(start_ts AS DATE) AS start_day,
                   timezone('UTC', start_ts) + INTERVAL 1 HOUR AS local_start_ts, local_day, 3600 AS utc_offset_s,
                   'device_activity' AS utc_offset_source, distance_m / 2.8 AS duration_s,
                   distance_m / 2.8 AS moving_time_s, distance_m, distance_m / 100 AS elevation_gain_m
            FROM runs""")
        c.execute("""
            INSERT INTO segments BY NAME
            SELECT activity_id, athlete_id, i AS segment_index,
                   CASE WHEN i = 1 THEN 'backward' ELSE 'forward' END AS direction, 'run' AS gait,
                   start_ts AS start_ts, start_ts AS end_ts,
                   share * distance_m / 2.8 AS duration_s, share * distance_m AS distance_m,
                   share * distance_m / 2.8 AS moving_time_s, share * distance_m / 100 AS elevation_gain_m,
                   share * distance_m * 0.065 * CASE WHEN i = 1 THEN 1.35 ELSE 1 END AS kcal_net,
                   share * distance_m * 0.075 AS kcal_gross, 'bench' AS model_version
            FROM (SELECT *, unnest(CASE WHEN with_backward THEN [0, 1, 2] ELSE [0] END) AS i FROM runs),
                 LATERAL (SELECT CASE WHEN with_backward THEN (CASE WHEN i = 1 THEN 0.2 ELSE 0.4 END) ELSE 1.0 END AS share)""")
        c.execute("""
            INSERT INTO activity_energy BY NAME
            SELECT activity_id, athlete_id, sum(kcal_net) AS kcal_net, sum(kcal_gross) AS kcal_gross,
                   70.0 AS mass_kg, 'profile' AS mass_source, 'bench' AS model_version
            FROM segments GROUP BY ALL""")
        c.execute(f"""
            INSERT INTO body_measurements BY NAME
            SELECT 'athlete' || a AS athlete_id, TIMESTAMPTZ '2016-01-04 07:00:00+00' + to_days(d) AS ts,
                   70 - d / 1000.0 AS weight_kg, 24 - d / 2000.0 AS body_fat_pct, 'fit' AS source
            FROM range({athletes}) AS t(a), (SELECT CAST(range AS INTEGER) AS d FROM range({days})) AS u
            WHERE d % 7 IN (0, 2, 4)""")
        if records:
            c.execute(f"""
                INSERT INTO records BY NAME
                SELECT activity_id, athlete_id, start_ts + to_seconds(s) AS ts,
                       52.0 + s * 1e-5 + random() * 1e-5 AS lat_deg, 13.0 + random() * 1e-2 AS lon_deg,
                       40.0 + random() * 20 AS altitude_m, s * 2.8 AS distance_m, 2.5 + random() AS speed_mps,
                       round(140 + random() * 40) AS heart_rate_bpm, round(160 + random() * 20) AS cadence_spm
                FROM runs, range({records}) AS r(s)""")
        return {
            t: c.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("activities", "segments", "body_measurements", "records")
        }


def timed(warehouse: Warehouse, sql: str, repeats: int = 5) -> float:
    """Median seconds of `repeats` runs, each opening the file read-only as a user's query does."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        warehouse.query(sql)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def materialize(warehouse: Warehouse) -> float:
    """Seconds to turn every mart into a table (what a materialized design pays per import)."""
    started = time.perf_counter()
    with warehouse.transaction() as c:
        for name in view_sql():
            c.execute(f"CREATE OR REPLACE TABLE {name}_table AS SELECT * FROM {name}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--athletes", type=int, default=10)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--records", type=int, default=0, help="samples per activity")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        warehouse = Warehouse.embedded(Path(folder))
        started = time.perf_counter()
        counts = synthesize(warehouse, args.athletes, args.years, args.records)
        print(f"synthesized {counts} in {time.perf_counter() - started:.1f} s")
        print("\nquery (median of 5, read-only open included)           view     table")
        print(f"materialize every mart                                      {materialize(warehouse):.3f} s")
        for name in MARTS:
            view, table = timed(warehouse, f"SELECT * FROM {name}"), timed(warehouse, f"SELECT * FROM {name}_table")
            print(f"SELECT * FROM {name:<40} {view:6.3f} s {table:6.3f} s")
        for title, sql in example_queries().items():
            print(f"docs example: {title[:44]:<44} {timed(warehouse, sql):6.3f} s")


if __name__ == "__main__":
    main()
