"""The marts over a generated export imported through Dagster: they agree with the tables they sum,
with the generator's truth, and with each other; readers get them from the published snapshot."""

import polars as pl
import pytest

from benchmarks.warehouse_docs import example_queries
from retrostride.warehouse.access import Reading, read_only_query


def test_marts_split_every_kilometre_and_kcal_of_the_scored_activities(imported_export):
    warehouse = imported_export.warehouse
    totals = warehouse.query("""
        SELECT (SELECT sum(distance_m) / 1000 FROM activities) AS activity_km,
               (SELECT sum(distance_km) FROM mileage_weekly) AS weekly_km,
               (SELECT sum(distance_km) FROM mileage_yearly) AS yearly_km,
               (SELECT sum(distance_m) / 1000 FROM segments WHERE direction = 'backward') AS segment_backward_km,
               (SELECT sum(distance_km) FROM mileage_monthly WHERE direction = 'backward') AS monthly_backward_km,
               (SELECT sum(kcal_net) FROM activity_energy) AS energy_kcal,
               (SELECT sum(kcal_net) FROM mileage_daily) AS daily_kcal,
               (SELECT count(*) FROM mileage_weekly WHERE kcal_net IS NULL) AS unscored_rows""").row(0, named=True)
    assert totals["weekly_km"] == pytest.approx(totals["activity_km"], rel=1e-3)
    assert totals["yearly_km"] == pytest.approx(totals["weekly_km"])
    assert (
        totals["monthly_backward_km"] == pytest.approx(totals["segment_backward_km"])
        and totals["segment_backward_km"] > 0
    )
    assert totals["daily_kcal"] == pytest.approx(totals["energy_kcal"], rel=1e-6) and totals["unscored_rows"] == 0


def test_streaks_are_made_of_the_days_with_backward_running_in_the_truth(imported_export):
    truth, warehouse = imported_export.truth, imported_export.warehouse
    true_days = set(
        truth.activities.filter(pl.col("has_backward"))
        .select("athlete_id", pl.col("local_start_ts").dt.date())
        .iter_rows()
    )
    found_days = set(
        warehouse.query("SELECT DISTINCT athlete_id, day FROM mileage_daily WHERE direction = 'backward'").iter_rows()
    )
    assert len(true_days & found_days) >= 0.9 * max(len(true_days), len(found_days))  # detection is not perfect
    streak_days = warehouse.query("SELECT CAST(sum(days) AS BIGINT) AS n FROM backward_streaks")["n"][0]
    assert streak_days == len(found_days)


def test_every_athlete_has_outcome_windows_with_weighings_or_reasons(imported_export):
    windows = imported_export.warehouse.query("SELECT * FROM outcomes_6wk")
    assert set(windows["athlete_id"]) == set(imported_export.truth.activities["athlete_id"])
    explained = windows.filter(pl.col("weight_start_kg").is_null())["weight_start_reason"]
    assert explained.null_count() == 0
    assert windows.filter(pl.col("weight_end_kg").is_null())["weight_end_reason"].null_count() == 0
    assert (windows["kcal_total"] >= windows["kcal_backward"]).all() and windows["backward_minutes"].sum() > 0


@pytest.mark.parametrize("title", list(example_queries()))
def test_the_docs_example_queries_answer_from_the_published_snapshot(imported_export, title):
    answer = read_only_query(Reading(imported_export.settings.catalog), example_queries()[title])
    assert len(answer) > 0
