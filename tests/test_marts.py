"""The marts on small hand-built warehouses, where every expected number can be worked out by hand."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from retrostride.assets.settings import ConfigError, load_mart_config
from retrostride.warehouse.mart_config import MartConfig
from retrostride.warehouse.marts import refresh_marts
from retrostride.warehouse.schema import ACTIVITIES, BODY_MEASUREMENTS, SEGMENT_TABLE, conform
from retrostride.warehouse.store import Warehouse, insert

UTC = UTC


class Builder:
    """Activities, segments and weighings for a warehouse in a temporary folder."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse
        self.activities: list[dict] = []
        self.segments: list[dict] = []
        self.weighings: list[dict] = []

    def activity(
        self,
        athlete: str,
        start: datetime,
        offset_h: float = 0.0,
        km: float = 5.0,
        minutes: float = 30.0,
        climb: float = 10.0,
        sport: str = "running",
        parts: list[tuple[str, str, float, float, float]] | None = None,
    ) -> str:
        """One activity starting at `start` (UTC) in a zone `offset_h` ahead of UTC; `parts` are
        its segments: (direction, gait, km, minutes, kcal_net)."""
        activity_id = f"{athlete}-{len(self.activities)}"
        local = start.replace(tzinfo=None) + timedelta(hours=offset_h)
        self.activities.append(
            {
                "activity_id": activity_id,
                "athlete_id": athlete,
                "sport": sport,
                "start_ts": start,
                "start_day": start.date(),
                "local_start_ts": local,
                "local_day": local.date(),
                "utc_offset_s": int(offset_h * 3600),
                "distance_m": km * 1000,
                "moving_time_s": minutes * 60,
                "duration_s": minutes * 60,
                "elevation_gain_m": climb,
            }
        )
        for index, (direction, gait, part_km, part_minutes, kcal) in enumerate(parts or []):
            self.segments.append(
                {
                    "activity_id": activity_id,
                    "athlete_id": athlete,
                    "segment_index": index,
                    "direction": direction,
                    "gait": gait,
                    "distance_m": part_km * 1000,
                    "moving_time_s": part_minutes * 60,
                    "duration_s": part_minutes * 60,
                    "elevation_gain_m": 1.0,
                    "kcal_net": kcal,
                    "kcal_gross": kcal + 10,
                }
            )
        return activity_id

    def backward_run(self, athlete: str, day: date, minutes: float = 20.0, kcal: float = 100.0) -> str:
        """A run at 07:00 UTC on `day`: `minutes` backward (3 m/s) and 10 forward."""
        return self.activity(
            athlete,
            datetime(day.year, day.month, day.day, 7, tzinfo=UTC),
            km=(minutes + 10) * 0.18,
            minutes=minutes + 10,
            parts=[("forward", "run", 1.8, 10, 60.0), ("backward", "run", minutes * 0.18, minutes, kcal)],
        )

    def weighing(self, athlete: str, at: datetime, weight: float, body_fat: float | None = None) -> None:
        self.weighings.append(
            {"athlete_id": athlete, "ts": at, "weight_kg": weight, "body_fat_pct": body_fat, "source": "fit"}
        )

    def build(self, config: MartConfig = MartConfig()) -> Warehouse:
        self.warehouse.ensure_schema()
        with self.warehouse.transaction() as connection:
            for table, rows, schema in (
                ("activities", self.activities, ACTIVITIES),
                ("segments", self.segments, SEGMENT_TABLE),
                ("body_measurements", self.weighings, BODY_MEASUREMENTS),
            ):
                connection.execute(f"DELETE FROM {table}")
                if rows:
                    insert(connection, table, conform(pl.DataFrame(rows), schema))
        refresh_marts(self.warehouse, config)
        return self.warehouse


@pytest.fixture
def build(tmp_path) -> Builder:
    return Builder(Warehouse.embedded(tmp_path))


def rows(warehouse: Warehouse, sql: str) -> list[dict]:
    return warehouse.query(sql).to_dicts()


def test_an_unscored_activity_counts_as_unknown_with_its_own_totals_and_no_kcal(build):
    build.activity("ann", datetime(2024, 5, 6, 7, tzinfo=UTC), km=8.0, minutes=45, climb=60)
    warehouse = build.build()
    [week] = rows(warehouse, "SELECT * FROM mileage_weekly")
    assert (week["direction"], week["gait"], week["sessions"]) == ("unknown", "unknown", 1)
    assert (
        week["distance_km"] == pytest.approx(8.0) and week["moving_time_s"] == 2700 and week["elevation_gain_m"] == 60
    )
    assert week["kcal_net"] is None and week["kcal_gross"] is None


def test_a_scored_activity_is_split_by_its_segments_direction_and_gait(build):
    build.activity(
        "ann",
        datetime(2024, 5, 6, 7, tzinfo=UTC),
        km=6.0,
        parts=[
            ("forward", "run", 3.0, 15, 200.0),
            ("backward", "run", 1.0, 6, 90.0),
            ("forward", "run", 1.5, 8, 100.0),
            ("backward", "walk", 0.5, 7, 30.0),
        ],
    )
    warehouse = build.build()
    got = {(r["direction"], r["gait"]): r for r in rows(warehouse, "SELECT * FROM mileage_daily")}
    assert set(got) == {("forward", "run"), ("backward", "run"), ("backward", "walk")}
    assert (
        got["forward", "run"]["distance_km"] == pytest.approx(4.5) and got["forward", "run"]["moving_time_s"] == 23 * 60
    )
    assert got["forward", "run"]["kcal_net"] == 300.0 and got["forward", "run"]["kcal_gross"] == 320.0
    assert got["backward", "walk"]["elevation_gain_m"] == 1.0 and got["backward", "run"]["kcal_net"] == 90.0
    assert all(r["sessions"] == 1 for r in got.values())
    for mart, period in (("mileage_monthly", "month_start"), ("mileage_yearly", "year")):
        total = rows(
            warehouse,
            f"SELECT {period} AS period, sum(distance_km) AS km, sum(kcal_net) AS kcal FROM {mart} GROUP BY 1",
        )
        assert total == [
            {"period": date(2024, 5, 1) if period == "month_start" else 2024, "km": pytest.approx(6.0), "kcal": 420.0}
        ]


def test_activities_count_on_their_local_day_and_iso_week_across_daylight_saving(build):
    # Berlin, the night clocks went forward (2024-03-31): 23:30 UTC on Saturday is 00:30 CET on
    # Sunday; 22:30 UTC on Sunday is 00:30 CEST on Monday, the next ISO week.
    build.activity("ann", datetime(2024, 3, 30, 23, 30, tzinfo=UTC), offset_h=1, km=5.0)
    build.activity("ann", datetime(2024, 3, 31, 22, 30, tzinfo=UTC), offset_h=2, km=7.0)
    # New Year's Eve 2024 is in ISO week 1 of 2025.
    build.activity("ann", datetime(2024, 12, 31, 8, tzinfo=UTC), offset_h=1, km=3.0)
    warehouse = build.build()
    days = rows(warehouse, "SELECT day, distance_km FROM mileage_daily ORDER BY day")
    assert [(d["day"], d["distance_km"]) for d in days] == [
        (date(2024, 3, 31), pytest.approx(5.0)),
        (date(2024, 4, 1), pytest.approx(7.0)),
        (date(2024, 12, 31), pytest.approx(3.0)),
    ]
    weeks = rows(
        warehouse, "SELECT week_start, iso_year, iso_week, distance_km FROM mileage_weekly ORDER BY week_start"
    )
    assert [(w["week_start"], w["iso_year"], w["iso_week"]) for w in weeks] == [
        (date(2024, 3, 25), 2024, 13),
        (date(2024, 4, 1), 2024, 14),
        (date(2024, 12, 30), 2025, 1),
    ]


def test_rolling_totals_include_rest_days_and_stop_at_7_and_28_days(build):
    first = date(2024, 1, 1)
    for offset, km in ((0, 1.0), (6, 2.0), (7, 4.0), (27, 8.0), (28, 16.0)):
        build.activity(
            "ann",
            datetime.combine(first + timedelta(days=offset), datetime.min.time(), UTC) + timedelta(hours=7),
            km=km,
        )
    warehouse = build.build()
    got = {r["day"]: r for r in rows(warehouse, "SELECT * FROM mileage_rolling WHERE athlete_id = 'ann'")}
    assert len(got) == 29  # every day from the first to the last, rest days included
    assert got[first + timedelta(days=3)]["distance_km"] == 0 and got[first + timedelta(days=3)][
        "distance_km_7d"
    ] == pytest.approx(1.0)
    assert got[first + timedelta(days=6)]["distance_km_7d"] == pytest.approx(3.0)  # days 0..6
    assert got[first + timedelta(days=7)]["distance_km_7d"] == pytest.approx(6.0)  # day 0 has left
    assert got[first + timedelta(days=7)]["sessions_7d"] == 2
    assert got[first + timedelta(days=27)]["distance_km_28d"] == pytest.approx(15.0)  # days 0..27
    assert got[first + timedelta(days=28)]["distance_km_28d"] == pytest.approx(30.0)  # day 0 has left
    assert got[first + timedelta(days=28)]["sessions_28d"] == 4


def test_the_longest_backward_streak_is_the_latest_of_the_longest_runs_of_days(build):
    for day in (1, 2, 3, 5, 7, 8, 9):
        build.backward_run("ann", date(2024, 6, day))
    build.activity("bob", datetime(2024, 6, 1, 7, tzinfo=UTC), parts=[("forward", "run", 5.0, 30, 300.0)])
    warehouse = build.build()
    streaks = rows(warehouse, "SELECT streak_start, days FROM backward_streaks WHERE athlete_id = 'ann' ORDER BY 1")
    assert [(s["streak_start"].day, s["days"]) for s in streaks] == [(1, 3), (5, 1), (7, 3)]
    longest = {r["athlete_id"]: r for r in rows(warehouse, "SELECT * FROM longest_backward_streak")}
    assert (longest["ann"]["days"], longest["ann"]["streak_start"], longest["ann"]["streak_end"]) == (
        3,
        date(2024, 6, 7),
        date(2024, 6, 9),
    )
    assert (longest["ann"]["streaks"], longest["ann"]["backward_days"]) == (3, 7)
    assert (longest["bob"]["days"], longest["bob"]["streak_start"]) == (0, None)


def test_a_day_with_too_little_backward_time_breaks_a_streak_when_configured(build):
    build.backward_run("ann", date(2024, 6, 1), minutes=20)
    build.backward_run("ann", date(2024, 6, 2), minutes=5)
    build.backward_run("ann", date(2024, 6, 3), minutes=20)
    assert rows(build.build(), "SELECT days FROM longest_backward_streak") == [{"days": 3}]
    strict = build.build(MartConfig(streak_min_backward_minutes=10))
    assert rows(strict, "SELECT days, streak_start FROM longest_backward_streak") == [
        {"days": 1, "streak_start": date(2024, 6, 3)}
    ]


def first_window(warehouse: Warehouse, athlete: str = "ann", start: date | None = None) -> dict:
    """The athlete's first window, or the one starting on `start`."""
    where = f"athlete_id = '{athlete}'" + (f" AND window_start = DATE '{start}'" if start else "")
    return rows(warehouse, f"SELECT * FROM outcomes_6wk WHERE {where} ORDER BY window_start LIMIT 1")[0]


def test_outcome_windows_start_on_the_monday_of_the_first_data_and_step_weekly(build):
    build.backward_run("ann", date(2024, 1, 3))  # a Wednesday
    build.backward_run("ann", date(2024, 3, 1))
    windows = rows(build.build(), "SELECT window_start, window_end, complete FROM outcomes_6wk ORDER BY 1")
    assert windows[0] == {"window_start": date(2024, 1, 1), "window_end": date(2024, 2, 11), "complete": True}
    assert windows[1]["window_start"] == date(2024, 1, 8)
    assert windows[-1]["window_start"] == date(2024, 2, 26) and not windows[-1]["complete"]  # the last start ≤ Mar 1
    assert [w["window_start"] for w in windows if w["complete"]][-1] == date(2024, 1, 15)  # ends Feb 25 ≤ Mar 1


def test_weighings_are_matched_to_window_edges_within_the_tolerance_or_explained(build):
    build.backward_run("ann", date(2024, 1, 3), kcal=500.0)
    build.backward_run("ann", date(2024, 2, 20))  # the data go on past the first window
    build.weighing("ann", datetime(2023, 12, 29, 10, tzinfo=UTC), 71.0, 30.0)  # 62 h before the start
    build.weighing("ann", datetime(2024, 1, 2, 12, tzinfo=UTC), 70.0)  # 36 h after it: nearest; no body fat
    build.weighing("ann", datetime(2024, 2, 15, 1, tzinfo=UTC), 69.0, 29.0)  # 3 days 1 h after the end (Feb 12 00:00)
    window = first_window(build.build(), start=date(2024, 1, 1))  # the first starts Dec 25: a weighing is data too
    assert window["window_end"] == date(2024, 2, 11)
    assert window["weight_start_kg"] == 70.0 and window["weight_start_at"] == datetime(2024, 1, 2, 12)
    assert window["body_fat_start_pct"] == 30.0  # matched on its own: the nearest reading that has one
    assert window["weight_start_reason"] is None and window["body_fat_start_reason"] is None
    assert window["weight_end_kg"] is None and window["weight_change_pct"] is None
    assert window["weight_end_reason"] == "no weight measurement within 3 days of 2024-02-12"
    assert window["body_fat_end_reason"] == "no body fat measurement within 3 days of 2024-02-12"

    wider = first_window(build.build(MartConfig(measurement_tolerance_days=3.5)), start=date(2024, 1, 1))
    assert wider["weight_end_kg"] == 69.0 and wider["weight_end_reason"] is None
    assert wider["weight_change_pct"] == pytest.approx(100 * (69.0 - 70.0) / 70.0)
    assert wider["body_fat_change_pct"] == pytest.approx(100 * (29.0 - 30.0) / 30.0)
    assert wider["body_fat_change_points"] == pytest.approx(-1.0)


def test_missing_weighings_and_unfinished_windows_say_why(build):
    build.backward_run("ann", date(2024, 1, 3))
    build.backward_run("bob", date(2024, 1, 3))
    build.weighing("bob", datetime(2024, 1, 1, 6, tzinfo=UTC), 80.0)
    ann, bob = first_window(build.build(), "ann"), first_window(build.warehouse, "bob")
    assert ann["weight_start_reason"] == "no weight measurements for this athlete"
    assert bob["weight_start_kg"] == 80.0
    assert bob["body_fat_start_reason"] == "no body fat measurements for this athlete"
    assert not bob["complete"] and bob["days_observed"] == 3  # Jan 1..3
    assert bob["weight_end_reason"] == "window not over: data ends 2024-01-03"


def test_predicted_change_follows_the_energy_balance_static_and_dynamic(build):
    build.backward_run("ann", date(2024, 1, 3), kcal=3790.0)  # + 60 kcal forward: 3850 kcal, half a kg
    build.backward_run("ann", date(2024, 2, 20), kcal=0.0)
    build.weighing("ann", datetime(2024, 1, 1, 6, tzinfo=UTC), 70.0)
    window = first_window(build.build())
    assert window["kcal_total"] == pytest.approx(3850.0) and window["kcal_backward"] == pytest.approx(3790.0)
    assert window["prediction_mass_kg"] == 70.0 and window["predicted_is_upper_bound"] is True
    assert window["predicted_weight_change_pct"] == pytest.approx(-100 * 0.5 / 70)
    per_day = 3850.0 / 42
    dynamic = -100 * (per_day / 24.0) * (1 - math.exp(-42 / 365.0)) / 70
    assert window["dynamic_weight_change_pct"] == pytest.approx(dynamic)
    assert abs(window["dynamic_weight_change_pct"]) < abs(window["predicted_weight_change_pct"])


def protocol_weeks(
    build: Builder, athlete: str, monday: date, sessions_per_week: list[int], minutes: float = 20.0
) -> None:
    for week, sessions in enumerate(sessions_per_week):
        for session in range(sessions):
            build.backward_run(athlete, monday + timedelta(days=7 * week + 2 * session), minutes=minutes)


def test_windows_of_the_studys_protocol_are_compared_with_its_result(build):
    monday = date(2024, 1, 1)
    protocol_weeks(build, "ann", monday, [3] * 6)  # the protocol
    protocol_weeks(build, "bob", monday, [3, 3, 2, 3, 3, 3])  # one week short
    protocol_weeks(build, "cid", monday, [3] * 6, minutes=50)  # sessions too long
    for athlete in ("ann", "bob", "cid"):
        build.weighing(athlete, datetime(2024, 1, 1, 6, tzinfo=UTC), 60.0, 25.0)
        build.weighing(athlete, datetime(2024, 2, 11, 20, tzinfo=UTC), 59.0, 24.0)
        build.backward_run(athlete, date(2024, 2, 12), minutes=5)  # data go on: the window is complete
    warehouse = build.build()
    firsts = {a: first_window(warehouse, a) for a in ("ann", "bob", "cid")}
    assert (firsts["ann"]["protocol_weeks_met"], firsts["ann"]["matches_study_protocol"]) == (6, True)
    assert (firsts["bob"]["protocol_weeks_met"], firsts["bob"]["matches_study_protocol"]) == (5, False)
    assert (firsts["cid"]["protocol_weeks_met"], firsts["cid"]["matches_study_protocol"]) == (0, False)
    assert firsts["ann"]["backward_sessions"] == 18 and firsts["ann"]["backward_minutes"] == pytest.approx(360)
    [match] = rows(warehouse, "SELECT * FROM study_comparison")
    assert (match["athlete_id"], match["window_start"]) == ("ann", monday)
    assert match["body_fat_change_pct"] == pytest.approx(-4.0) and match["study_body_fat_change_pct"] == -2.4
    assert match["body_fat_change_vs_study"] == pytest.approx(-1.6)
    summary = {r["measure"]: r for r in rows(warehouse, "SELECT * FROM study_comparison_summary")}
    fat = summary["body_fat_change_pct"]
    assert (fat["windows"], fat["athletes"], fat["athletes_measured"]) == (1, 1, 1)
    assert fat["mean_change"] == pytest.approx(-4.0) and fat["sd_change"] is None and fat["study_change"] == -2.4
    assert summary["body_fat_change_points"]["mean_change"] == pytest.approx(-1.0)
    assert summary["weight_change_pct"]["study_change"] is None


def test_mart_parameters_come_from_the_marts_table_of_the_model_file(tmp_path):
    model = tmp_path / "model.toml"
    assert load_mart_config(model) == MartConfig()
    model.write_text(
        "[energy]\nbackward_multiplier = 1.3\n[marts]\noutcome_window_days = 56\nmeasurement_tolerance_days = 2\n"
    )
    config = load_mart_config(model)
    assert (config.outcome_window_days, config.measurement_tolerance_days, config.outcome_step_days) == (56, 2.0, 7)
    model.write_text("[marts]\noutcome_windw_days = 56\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        load_mart_config(model)
    model.write_text("[marts]\noutcome_window_days = 6.5\n")
    with pytest.raises(ConfigError, match="should be like 42"):
        load_mart_config(model)


def test_configured_windows_are_what_the_views_use_and_show(build):
    build.backward_run("ann", date(2024, 1, 3))
    build.backward_run("ann", date(2024, 4, 1))
    warehouse = build.build(MartConfig(outcome_window_days=56, outcome_step_days=14))
    assert rows(warehouse, "SELECT outcome_window_days, outcome_step_days FROM mart_settings") == [
        {"outcome_window_days": 56, "outcome_step_days": 14}
    ]
    windows = rows(warehouse, "SELECT window_start, window_end FROM outcomes_6wk ORDER BY 1 LIMIT 2")
    assert windows == [
        {"window_start": date(2024, 1, 1), "window_end": date(2024, 2, 25)},
        {"window_start": date(2024, 1, 15), "window_end": date(2024, 3, 10)},
    ]
