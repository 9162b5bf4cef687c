"""A generated export imports end to end and the warehouse agrees with the generator's truth."""

import polars as pl


def test_weekly_distance_matches_the_generator(imported_export):
    truth, warehouse = imported_export.truth, imported_export.warehouse
    got = warehouse.query(
        "SELECT athlete_id, week_start, sum(distance_km) AS km FROM mileage_weekly GROUP BY ALL"
    ).join(
        warehouse.query(  # sessions per week without counting an activity once per direction
            "SELECT athlete_id, CAST(date_trunc('week', day) AS DATE) AS week_start, CAST(sum(sessions) AS BIGINT) AS n"
            " FROM mileage_rolling GROUP BY ALL HAVING n > 0"
        ),
        on=["athlete_id", "week_start"],
        how="full",
        coalesce=True,
    )
    joined = truth.weekly_distance.join(got, on=["athlete_id", "week_start"], how="full", coalesce=True)
    assert joined["km"].null_count() == 0 and joined["distance_km"].null_count() == 0
    assert (joined["n"] == joined["sessions"]).all()
    assert ((joined["km"] - joined["distance_km"]).abs() <= 0.001 * joined["distance_km"] + 0.002).all()


def test_every_activity_lands_on_its_local_day_with_the_devices_offset(imported_export):
    truth, warehouse = imported_export.truth, imported_export.warehouse
    got = warehouse.query("SELECT athlete_id, start_ts, local_start_ts, utc_offset_s, source FROM activities")
    expected = truth.activities.select("athlete_id", "start_ts", pl.col("utc_offset_s").alias("true_offset"), "format")
    joined = expected.join(got, on=["athlete_id", "start_ts"], how="left")
    assert joined["utc_offset_s"].null_count() == 0
    fit = joined.filter(pl.col("format") == "fit")
    assert (fit["utc_offset_s"] == fit["true_offset"]).all()  # from activity.local_timestamp
    gpx = joined.filter(pl.col("format") == "gpx")
    assert (gpx["utc_offset_s"] == gpx["true_offset"]).all()  # from the athlete's configured zone


def test_weight_scale_files_give_the_true_weights(imported_export):
    truth, warehouse = imported_export.truth, imported_export.warehouse
    got = warehouse.query("SELECT athlete_id, ts, weight_kg FROM body_measurements ORDER BY ALL")
    expected = truth.weights.select("athlete_id", "ts", "weight_kg").sort(pl.all())
    assert len(got) == len(expected)
    assert (got["weight_kg"] - expected["weight_kg"]).abs().max() < 0.01


def test_labelled_backward_laps_keep_their_workout_step_names(imported_export):
    truth, warehouse = imported_export.truth, imported_export.warehouse
    labelled = truth.backward_intervals.filter(pl.col("labelled")).height
    laps = warehouse.query("SELECT count(*) AS n FROM laps WHERE name ILIKE 'backward%'")["n"][0]
    assert (
        labelled > 0
        and laps
        >= labelled - truth.backward_intervals.filter(pl.col("labelled") & pl.col("file").str.ends_with(".gpx")).height
    )
