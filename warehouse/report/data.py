"""What the report shows, read from the published warehouse (read-only) as Polars frames.

Every figure is SQL over the marts and tables; the report only lays them out.  The scope (athletes,
first and last local day) is passed to each query as parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

from retrostride.warehouse.access import Reading, read_only_connection

RECENT_ACTIVITIES = 12  # rows of the activity timeline
DETAIL_BUCKET_S = 10  # the activity in detail: one point per this many seconds

_FIRST, _LAST = date(1900, 1, 1), date(9999, 12, 31)


@dataclass(frozen=True)
class ReportScope:
    """Which athletes and local days a report covers (None: all)."""

    athlete: str | None = None
    first_day: date | None = None
    last_day: date | None = None

    def describe(self) -> str:
        who = f"athlete {self.athlete}" if self.athlete else "all athletes"
        if self.first_day or self.last_day:
            return f"{who}, {self.first_day or '…'} to {self.last_day or '…'}"
        return f"{who}, whole history"


@dataclass
class ReportData:
    """The frames behind every section; per-athlete frames carry `athlete_id`."""

    scope: ReportScope
    athletes: list[str]
    headline: pl.DataFrame
    weekly_parts: pl.DataFrame
    weekly: pl.DataFrame
    rolling: pl.DataFrame
    streaks: pl.DataFrame
    body: pl.DataFrame
    outcomes: pl.DataFrame
    study_windows: pl.DataFrame
    study_summary: pl.DataFrame
    study_settings: pl.DataFrame
    timeline: pl.DataFrame
    detail_activity: pl.DataFrame
    detail_samples: pl.DataFrame
    detail_segments: pl.DataFrame
    import_summary: pl.DataFrame
    failed_files: pl.DataFrame
    duplicates: pl.DataFrame
    detection_status: pl.DataFrame | None = None  # None: the warehouse has no such column

    def of(self, frame: str, athlete: str) -> pl.DataFrame:
        """Rows of one per-athlete frame for `athlete`."""
        return getattr(self, frame).filter(pl.col("athlete_id") == athlete)


_IN_SCOPE = "athlete_id IN (SELECT unnest($athletes)) AND {day} BETWEEN $first AND $last"

QUERIES = {
    # Athletes with activities or weighings, filtered by --athlete.
    "athletes": """
        SELECT DISTINCT athlete_id FROM (
            SELECT athlete_id FROM activities UNION ALL SELECT athlete_id FROM body_measurements)
        WHERE $athlete IS NULL OR athlete_id = $athlete
        ORDER BY athlete_id""",
    # The numbers at the top of each athlete's section.
    "headline": f"""
        WITH athletes AS (SELECT unnest($athletes) AS athlete_id),
        mileage AS (
            SELECT athlete_id,
                   count(DISTINCT activity_id) AS activities,
                   sum(distance_m) / 1000.0 AS distance_km,
                   coalesce(sum(distance_m) FILTER (WHERE direction = 'backward'), 0) / 1000.0 AS backward_km,
                   coalesce(sum(moving_time_s) FILTER (WHERE direction = 'backward'), 0) / 60.0 AS backward_minutes,
                   count(DISTINCT activity_id) FILTER (WHERE direction = 'backward') AS backward_sessions,
                   sum(kcal_net) AS kcal_net
            FROM mileage_by_activity WHERE {_IN_SCOPE.format(day="day")} GROUP BY athlete_id),
        streaks AS (
            SELECT athlete_id, max(days) AS longest_streak_days, count(*) AS streaks
            FROM backward_streaks WHERE {_IN_SCOPE.format(day="streak_start")} GROUP BY athlete_id),
        weighings AS (
            SELECT athlete_id, count(*) AS weighings
            FROM body_measurements WHERE {_IN_SCOPE.format(day="CAST(ts AS DATE)")} GROUP BY athlete_id),
        windows AS (
            SELECT athlete_id, count(*) FILTER (WHERE weight_change_pct IS NOT NULL) AS windows_with_weight_change,
                   count(*) FILTER (WHERE matches_study_protocol) AS study_windows
            FROM outcomes_6wk WHERE {_IN_SCOPE.format(day="window_start")} GROUP BY athlete_id)
        SELECT athlete_id,
               coalesce(activities, 0) AS activities, coalesce(distance_km, 0) AS distance_km,
               coalesce(backward_km, 0) AS backward_km, coalesce(backward_minutes, 0) AS backward_minutes,
               coalesce(backward_sessions, 0) AS backward_sessions, kcal_net,
               coalesce(longest_streak_days, 0) AS longest_streak_days, coalesce(streaks, 0) AS streaks,
               coalesce(weighings, 0) AS weighings,
               coalesce(windows_with_weight_change, 0) AS windows_with_weight_change,
               coalesce(study_windows, 0) AS study_windows
        FROM athletes LEFT JOIN mileage USING (athlete_id) LEFT JOIN streaks USING (athlete_id)
        LEFT JOIN weighings USING (athlete_id) LEFT JOIN windows USING (athlete_id)
        ORDER BY athlete_id""",
    # Weekly distance and kcal by direction and gait (all sports).
    "weekly_parts": f"""
        SELECT athlete_id, week_start, direction, gait, direction || ' · ' || gait AS part,
               sum(distance_km) AS distance_km, sum(kcal_net) AS kcal_net
        FROM mileage_weekly WHERE {_IN_SCOPE.format(day="week_start")}
        GROUP BY ALL ORDER BY athlete_id, week_start, part""",
    # Weekly totals: distance, net kcal, sessions, backward minutes and sessions.
    "weekly": f"""
        SELECT athlete_id, CAST(date_trunc('week', day) AS DATE) AS week_start,
               sum(distance_m) / 1000.0 AS distance_km,
               sum(kcal_net) AS kcal_net,
               count(DISTINCT activity_id) AS sessions,
               count(DISTINCT activity_id) FILTER (WHERE direction = 'backward') AS backward_sessions,
               coalesce(sum(moving_time_s) FILTER (WHERE direction = 'backward'), 0) / 60.0 AS backward_minutes
        FROM mileage_by_activity WHERE {_IN_SCOPE.format(day="day")}
        GROUP BY ALL ORDER BY athlete_id, week_start""",
    # Rolling 28-day totals on every day, all sports together.
    "rolling": f"""
        SELECT athlete_id, day, sum(distance_km_28d) AS distance_km_28d, sum(backward_km_28d) AS backward_km_28d,
               sum(kcal_net_28d) AS kcal_net_28d
        FROM mileage_rolling WHERE {_IN_SCOPE.format(day="day")}
        GROUP BY ALL ORDER BY athlete_id, day""",
    "streaks": f"""
        SELECT athlete_id, streak_start, streak_end + 1 AS streak_after, days, backward_km,
               backward_moving_time_s / 60.0 AS backward_minutes
        FROM backward_streaks WHERE {_IN_SCOPE.format(day="streak_start")}
        ORDER BY athlete_id, streak_start""",
    "body": f"""
        SELECT athlete_id, ts AS measured_at, weight_kg, body_fat_pct, source
        FROM body_measurements WHERE {_IN_SCOPE.format(day="CAST(ts AS DATE)")}
        ORDER BY athlete_id, ts""",
    "outcomes": f"""
        SELECT athlete_id, window_start, window_end, complete, matches_study_protocol, protocol_weeks_met,
               sessions, backward_sessions, backward_minutes, kcal_total,
               weight_start_kg, weight_end_kg, weight_change_pct, predicted_weight_change_pct,
               dynamic_weight_change_pct, body_fat_start_pct, body_fat_end_pct, body_fat_change_pct,
               body_fat_change_points, coalesce(weight_start_reason, weight_end_reason) AS weight_reason
        FROM outcomes_6wk WHERE {_IN_SCOPE.format(day="window_start")}
        ORDER BY athlete_id, window_start""",
    "study_windows": f"""
        SELECT athlete_id, window_start, window_end, backward_sessions, backward_minutes,
               body_fat_start_pct, body_fat_end_pct, body_fat_change_pct, body_fat_change_points,
               study_body_fat_change_pct, weight_change_pct, predicted_weight_change_pct, body_fat_end_reason
        FROM study_comparison WHERE {_IN_SCOPE.format(day="window_start")}
        ORDER BY athlete_id, window_start""",
    # Over every athlete and window of the warehouse: the view is the study's unit of comparison.
    "study_summary": "SELECT * FROM study_comparison_summary ORDER BY measure",
    "study_settings": """
        SELECT study_weeks, study_sessions_per_week, study_session_min_minutes, study_session_max_minutes,
               study_body_fat_change_pct, study_participants, outcome_window_days, measurement_tolerance_days,
               kcal_per_kg
        FROM mart_settings""",
    # The latest activities of each athlete and their segments, in minutes from the start.
    "timeline": f"""
        WITH recent AS (
            SELECT athlete_id, activity_id, local_start_ts, start_ts, coalesce(name, sport, 'activity') AS name,
                   distance_m / 1000.0 AS distance_km
            FROM activities
            WHERE duplicate_of IS NULL AND {_IN_SCOPE.format(day="local_day")}
            QUALIFY row_number() OVER (PARTITION BY athlete_id ORDER BY start_ts DESC) <= {RECENT_ACTIVITIES})
        SELECT r.athlete_id, r.activity_id,
               strftime(r.local_start_ts, '%Y-%m-%d %H:%M') || '  ' || r.name AS activity,
               r.local_start_ts, r.distance_km, s.segment_index, coalesce(s.direction, 'unknown') AS direction,
               coalesce(s.gait, 'unknown') AS gait,
               epoch(s.start_ts - r.start_ts) / 60.0 AS start_min, epoch(s.end_ts - r.start_ts) / 60.0 AS end_min,
               s.distance_m / 1000.0 AS segment_km
        FROM recent AS r LEFT JOIN segments AS s USING (activity_id)
        ORDER BY r.athlete_id, r.local_start_ts DESC, s.segment_index""",
    # The activity in detail: each athlete's latest activity with backward segments (else the latest).
    "detail_activity": f"""
        SELECT a.athlete_id, a.activity_id, coalesce(a.name, a.sport, 'activity') AS name, a.local_start_ts,
               a.start_ts, a.distance_m / 1000.0 AS distance_km, a.moving_time_s / 60.0 AS moving_minutes,
               e.backward_s / 60.0 AS backward_minutes, e.kcal_net
        FROM activities AS a LEFT JOIN activity_energy AS e USING (activity_id, athlete_id)
        WHERE a.duplicate_of IS NULL AND a.records > 0 AND {_IN_SCOPE.format(day="a.local_day")}
        QUALIFY row_number() OVER (
            PARTITION BY a.athlete_id ORDER BY coalesce(e.backward_s, 0) > 0 DESC, a.start_ts DESC) = 1
        ORDER BY a.athlete_id""",
    # Its samples in buckets: speed, cadence and step length (60·v / cadence, as the detector
    # computes it) beside the athlete's forward baseline at that speed, ln L = a + b·ln v.
    "detail_samples": f"""
        WITH chosen AS (SELECT unnest($detail_ids) AS activity_id),
        buckets AS (
            SELECT r.athlete_id, r.activity_id,
                   floor(epoch(r.ts - a.start_ts) / {DETAIL_BUCKET_S}) * {DETAIL_BUCKET_S} / 60.0 AS minute,
                   avg(r.speed_mps) AS speed_mps, avg(r.cadence_spm) AS cadence_spm,
                   avg(60.0 * r.speed_mps / r.cadence_spm) FILTER (WHERE r.cadence_spm > 0) AS step_length_m
            FROM records AS r JOIN activities AS a USING (activity_id)
            WHERE r.activity_id IN (SELECT activity_id FROM chosen)
            GROUP BY ALL)
        SELECT b.*,
               CASE WHEN b.speed_mps BETWEEN g.speed_min_mps AND g.speed_max_mps
                    THEN exp(g.intercept + g.slope * ln(b.speed_mps)) END AS baseline_step_length_m
        FROM buckets AS b LEFT JOIN gait_baselines AS g USING (athlete_id)
        ORDER BY b.athlete_id, b.minute""",
    "detail_segments": """
        SELECT s.athlete_id, s.activity_id, s.segment_index, s.direction, s.gait, s.evidence, s.confidence,
               epoch(s.start_ts - a.start_ts) / 60.0 AS start_min, epoch(s.end_ts - a.start_ts) / 60.0 AS end_min,
               s.distance_m / 1000.0 AS distance_km, s.kcal_net
        FROM segments AS s JOIN activities AS a USING (activity_id)
        WHERE s.activity_id IN (SELECT unnest($detail_ids))
        ORDER BY s.athlete_id, s.segment_index""",
    "import_summary": """
        SELECT status, count(*) AS files, CAST(coalesce(sum(records), 0) AS BIGINT) AS records
        FROM import_ledger WHERE $athlete IS NULL OR athlete_id = $athlete
        GROUP BY status ORDER BY status""",
    "failed_files": """
        SELECT athlete_id, path, format, reason, imported_at
        FROM import_ledger WHERE status = 'failed' AND ($athlete IS NULL OR athlete_id = $athlete)
        ORDER BY imported_at DESC, path""",
    # Files seen twice, and activities repeating another source's.
    "duplicates": """
        SELECT 'same bytes again (import_ledger)' AS kind, count(*) AS count
        FROM import_ledger WHERE status = 'duplicate' AND ($athlete IS NULL OR athlete_id = $athlete)
        UNION ALL
        SELECT 'same run from another source (activities.duplicate_of)', count(*)
        FROM activities WHERE duplicate_of IS NOT NULL AND ($athlete IS NULL OR athlete_id = $athlete)""",
}

# Each activity's detection status, where the warehouse has one (issue 17 adds it).
_DETECTION_STATUS = """
    SELECT a.athlete_id, a.activity_id, strftime(a.local_start_ts, '%Y-%m-%d %H:%M') AS local_start,
           coalesce(a.name, a.sport) AS name, {status} AS detection_status
    FROM activities AS a {join}
    WHERE a.duplicate_of IS NULL AND a.{scope}
    ORDER BY a.athlete_id, a.local_start_ts DESC"""


def read_report_data(published: Reading, scope: ReportScope) -> ReportData:
    """Every frame of the report, from the warehouse's published snapshot, read-only."""
    connection = read_only_connection(published)
    try:

        def query(sql: str, params: dict) -> pl.DataFrame:
            used = {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}
            return connection.execute(sql, used).pl()

        athletes = query(QUERIES["athletes"], {"athlete": scope.athlete})["athlete_id"].to_list()
        params = {
            "athletes": athletes,
            "first": scope.first_day or _FIRST,
            "last": scope.last_day or _LAST,
            "athlete": scope.athlete,
        }
        detail = query(QUERIES["detail_activity"], params)
        params["detail_ids"] = detail["activity_id"].to_list()
        frames = {
            name: query(sql, params) for name, sql in QUERIES.items() if name not in ("athletes", "detail_activity")
        }
        table = _detection_status_table(connection)
        status = None
        if table:
            join = "" if table == "activities" else f'LEFT JOIN "{table}" AS d USING (activity_id)'
            column = "a.detection_status" if table == "activities" else "d.detection_status"
            status = query(
                _DETECTION_STATUS.format(status=column, join=join, scope=_IN_SCOPE.format(day="a.local_day")), params
            )
        return ReportData(scope=scope, athletes=athletes, detail_activity=detail, detection_status=status, **frames)
    finally:
        connection.close()


def _detection_status_table(connection: duckdb.DuckDBPyConnection) -> str | None:
    """`activities` if it has a `detection_status` column, else a table keyed by activity_id that has one."""
    rows = connection.execute("""
        SELECT DISTINCT c.table_name FROM information_schema.columns AS c
        JOIN information_schema.columns AS k USING (table_schema, table_name)
        WHERE c.column_name = 'detection_status' AND k.column_name = 'activity_id'
        ORDER BY c.table_name = 'activities' DESC, c.table_name""").fetchall()
    return rows[0][0] if rows else None
