"""Detection and energy through Dagster: segments, activity_energy and gait_baselines in the warehouse."""

from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from benchmarks.evaluation import backward_time_scores, missed_labelled
from retrostride.assets import detection
from retrostride.assets.settings import ConfigError, load_model_config
from retrostride.assets.transforms.detection_status import STATUSES
from retrostride.pipelines.definitions import build_definitions
from retrostride.pipelines.runs import QUIET, RANGE_END, RANGE_START
from retrostride.warehouse.store import Warehouse
from tests.conftest import copied_home

SEGMENTS_WITH_FILES = """
SELECT s.*, l.path
FROM segments s JOIN activities a USING (activity_id)
JOIN (SELECT DISTINCT sha256, path FROM import_ledger WHERE status IN ('ok', 'partial')) l ON l.sha256 = a.source_sha256
"""


def _with_files(imported) -> pl.DataFrame:
    """Segments with the export-relative file they came from (the truth's key)."""
    root = str((imported.root / "export").resolve()) + "/"
    return imported.warehouse.query(SEGMENTS_WITH_FILES).with_columns(
        pl.col("path").str.strip_prefix(root).alias("file")
    )


def test_every_activity_is_covered_by_segments_that_add_up_to_it(imported_export):
    warehouse = imported_export.warehouse
    totals = warehouse.query("""
        SELECT a.activity_id, a.distance_m, a.moving_time_s, a.elevation_gain_m,
               sum(s.distance_m) AS seg_distance, sum(s.moving_time_s) AS seg_moving,
               sum(s.elevation_gain_m) AS seg_climb, count(s.activity_id) AS segments,
               count(DISTINCT e.activity_id) AS energy_rows
        FROM activities a LEFT JOIN segments s USING (activity_id) LEFT JOIN activity_energy e USING (activity_id)
        GROUP BY ALL""")
    assert len(totals) == len(imported_export.truth.activities)
    assert (totals["segments"] > 0).all() and (totals["energy_rows"] == 1).all()
    assert ((totals["seg_moving"] - totals["moving_time_s"]).abs() < 1.0).all()
    assert ((totals["seg_climb"] - totals["elevation_gain_m"]).abs() < 0.5).all()
    assert ((totals["seg_distance"] - totals["distance_m"]).abs() <= 0.01 * totals["distance_m"] + 5).all()


def test_backward_running_is_found_where_the_generator_put_it(imported_export):
    segments = _with_files(imported_export)
    truth = imported_export.truth.backward_intervals
    scores = backward_time_scores(segments, truth).row(0, named=True)
    assert scores["precision"] >= 0.95 and scores["recall"] >= 0.90, scores
    assert missed_labelled(segments, truth).is_empty()


def test_energy_uses_the_weight_measured_before_each_activity(imported_export):
    energy = imported_export.warehouse.query(
        "SELECT e.activity_id, e.athlete_id, a.start_ts, e.mass_kg, e.mass_source"
        " FROM activity_energy e JOIN activities a USING (activity_id) ORDER BY a.start_ts"
    )
    weights = imported_export.truth.weights.select("athlete_id", "ts", "weight_kg").sort("ts")
    expected = energy.join_asof(
        weights, left_on="start_ts", right_on="ts", by="athlete_id", strategy="backward", check_sortedness=False
    )  # both sorted by time above
    measured = expected.filter(pl.col("weight_kg").is_not_null())
    assert len(measured) > 0
    assert (measured["mass_source"] == "measurement").all()
    assert ((measured["mass_kg"] - measured["weight_kg"]).abs() < 0.01).all()
    assert (expected.filter(pl.col("weight_kg").is_null())["mass_source"] != "measurement").all()


def test_backward_running_costs_more_per_kilometre_than_forward(imported_export):
    per_kg_km = imported_export.warehouse.query("""
        SELECT direction, sum(s.kcal_net) / sum(e.mass_kg * s.distance_m / 1000) AS cost
        FROM segments s JOIN activity_energy e USING (activity_id)
        WHERE s.gait = 'run' AND s.direction IN ('forward', 'backward') AND s.distance_m > 0
        GROUP BY direction""")
    cost = dict(per_kg_km.iter_rows())
    assert 0.8 < cost["forward"] < 1.2  # Minetti: 0.86 kcal/kg/km on the level, a little more with hills
    assert 1.25 < cost["backward"] / cost["forward"] < 1.45  # the 1.35 multiplier


def _rematerialise(settings, first: date, last: date) -> dg.ExecuteInProcessResult:
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        return defs.resolve_job_def("publish").execute_in_process(
            instance=instance, run_config=QUIET, tags={RANGE_START: first.isoformat(), RANGE_END: last.isoformat()}
        )


def _versions(warehouse: Warehouse, table: str) -> dict[str, set[str]]:
    rows = warehouse.query(
        f"SELECT strftime(a.start_day, '%Y-%m') AS month, t.model_version FROM {table} t"
        " JOIN activities a USING (activity_id) GROUP BY ALL"
    )
    return {m: set(rows.filter(pl.col("month") == m)["model_version"]) for m in rows["month"].unique()}


def test_changing_a_threshold_changes_the_version_of_the_rows_it_touches_only(imported_export, tmp_path: Path):
    settings = copied_home(imported_export, tmp_path)
    warehouse = Warehouse(settings.catalog)
    before = {t: _versions(warehouse, t) for t in ("segments", "activity_energy")}
    baseline_before = warehouse.query("SELECT * FROM gait_baselines ORDER BY athlete_id")
    kcal_before = warehouse.query("SELECT activity_id, kcal_net, kcal_backward FROM activity_energy ORDER BY 1")
    assert set(before["segments"]) == {"2024-01", "2024-02"}

    settings.model_path.write_text("[energy]\nbackward_multiplier = 1.5\n")
    result = _rematerialise(settings, date(2024, 2, 1), date(2024, 2, 1))

    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())
    after = {t: _versions(warehouse, t) for t in ("segments", "activity_energy")}
    for table in after:
        assert after[table]["2024-01"] == before[table]["2024-01"]  # not re-materialised: untouched
        [old], [new] = before[table]["2024-02"], after[table]["2024-02"]
        assert old != new and old.split("+")[0] == new.split("+")[0]  # energy moved, detection did not
    assert warehouse.query("SELECT * FROM gait_baselines ORDER BY athlete_id").equals(baseline_before)
    kcal_after = warehouse.query(
        "SELECT e.activity_id, e.kcal_net, e.kcal_backward, strftime(a.start_day, '%Y-%m') AS month"
        " FROM activity_energy e JOIN activities a USING (activity_id) ORDER BY 1"
    )
    joined = kcal_before.join(kcal_after, on="activity_id", suffix="_after")
    feb = joined.filter((pl.col("month") == "2024-02") & (pl.col("kcal_backward") > 0))
    assert len(feb) > 0
    assert ((feb["kcal_backward_after"] / feb["kcal_backward"] - 1.5 / 1.35).abs() < 1e-6).all()
    jan = joined.filter(pl.col("month") == "2024-01")
    assert (jan["kcal_net_after"] == jan["kcal_net"]).all()


def test_a_detection_change_moves_the_baselines_and_segments(imported_export, tmp_path: Path):
    settings = copied_home(imported_export, tmp_path)
    warehouse = Warehouse(settings.catalog)
    old = warehouse.query("SELECT DISTINCT model_version FROM segments")["model_version"].to_list()
    settings.model_path.write_text("[detection]\nenter_ratio = 0.8\n")
    assert _rematerialise(settings, date(2024, 1, 1), date(2024, 2, 1)).success
    [new] = warehouse.query("SELECT DISTINCT model_version FROM segments")["model_version"].to_list()
    [baseline] = warehouse.query("SELECT DISTINCT model_version FROM gait_baselines")["model_version"].to_list()
    assert [new] != old and new.startswith(baseline + "+")


def _refit(result: dg.ExecuteInProcessResult) -> list[str]:
    [materialization] = result.asset_materializations_for_node("athlete_gait_baselines")
    return materialization.metadata["refit"].value


def test_baselines_are_refit_only_for_athletes_whose_latest_runs_changed(imported_export, tmp_path: Path):
    settings = copied_home(imported_export, tmp_path)
    warehouse = Warehouse(settings.catalog)
    before = warehouse.query("SELECT * FROM gait_baselines ORDER BY athlete_id")
    assert len(before) >= 2 and before["inputs_sha256"].null_count() == 0

    unchanged = _rematerialise(settings, date(2024, 2, 1), date(2024, 2, 1))
    assert unchanged.success and _refit(unchanged) == []
    assert warehouse.query("SELECT * FROM gait_baselines ORDER BY athlete_id").equals(before)

    athlete = before["athlete_id"][0]
    with warehouse.transaction() as connection:  # a platform export names one of their runs later
        connection.execute(
            "UPDATE activities SET name = 'Backward intervals' WHERE activity_id ="
            " (SELECT activity_id FROM activities WHERE athlete_id = ? AND coalesce(sport, 'running') = 'running'"
            " ORDER BY start_ts DESC LIMIT 1)",
            [athlete],
        )
    renamed = _rematerialise(settings, date(2024, 1, 1), date(2024, 1, 1))  # publishing February would undo it
    assert renamed.success and _refit(renamed) == [athlete]
    after = warehouse.query("SELECT * FROM gait_baselines ORDER BY athlete_id")
    assert after.filter(pl.col("athlete_id") != athlete).equals(before.filter(pl.col("athlete_id") != athlete))
    assert (
        after.filter(pl.col("athlete_id") == athlete)["inputs_sha256"].to_list()
        != before.filter(pl.col("athlete_id") == athlete)["inputs_sha256"].to_list()
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[detection]\nenter_ratoi = 0.8\n", "unknown keys ['enter_ratoi']"),
        ("[energy]\nbackward_multiplier = 'high'\n", "backward_multiplier = 'high'"),
        ("[energy\n", "model.toml"),
        ("[physics]\ng = 9.81\n", "unknown tables ['physics']"),
    ],
)
def test_a_bad_model_file_says_what_is_wrong(tmp_path: Path, text: str, message: str):
    path = tmp_path / "model.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_model_config(path)


def test_model_file_values_override_the_defaults(tmp_path: Path):
    path = tmp_path / "model.toml"
    path.write_text("[detection]\nlabel_words = ['rueckwaerts']\n[energy]\nbackward_multiplier = 2\n")
    detection, energy = load_model_config(path)
    assert detection.label_words == ("rueckwaerts",) and energy.backward_multiplier == 2.0  # an integer is a float here


def test_real_forward_runs_imported_through_dagster_have_no_backward_second(imported_corpus):
    from tests.test_detection_on_real_files import FORWARD_RUNS

    backward = imported_corpus.warehouse.query("""
        SELECT l.path, coalesce(sum(s.duration_s) FILTER (WHERE s.direction = 'backward'), 0) AS backward_s,
               count(s.activity_id) AS segments
        FROM import_ledger l JOIN activities a ON a.source_sha256 = l.sha256
        LEFT JOIN segments s USING (activity_id) GROUP BY ALL""")
    runs = backward.filter(pl.col("path").str.split("/").list.last().is_in(FORWARD_RUNS))
    assert len(runs) == len(FORWARD_RUNS) and (runs["segments"] > 0).all()
    assert (runs["backward_s"] == 0).all()


@pytest.mark.parametrize("rows_per_write", [1, detection.SCORE_ROWS_PER_WRITE])  # a write per batch; one for all
def test_months_scored_in_two_processes_give_the_rows_of_one(
    imported_export, tmp_path: Path, monkeypatch, rows_per_write: int
):
    settings = replace(copied_home(imported_export, tmp_path), workers=2)
    warehouse = Warehouse(settings.catalog)
    tables = {
        t: f"SELECT * FROM {t} ORDER BY activity_id, {key}"
        for t, key in [("segments", "segment_index"), ("activity_energy", "model_version")]
    }
    before = {t: warehouse.query(sql) for t, sql in tables.items()}
    monkeypatch.setattr(detection, "SCORE_BATCH_RECORDS", 1)  # one batch per month: January and February at once
    monkeypatch.setattr(detection, "BATCHES_FOR_PROCESSES", 2)
    monkeypatch.setattr(detection, "SCORE_ROWS_PER_WRITE", rows_per_write)
    assert _rematerialise(settings, date(2024, 1, 1), date(2024, 2, 1)).success
    for table, sql in tables.items():
        assert_frame_equal(warehouse.query(sql), before[table], rel_tol=1e-9, abs_tol=1e-9)


def test_scoring_reads_only_record_columns_it_declares():
    """The warehouse read hands scoring `RECORD_COLUMNS` only: a transform using another record
    column would silently see nulls."""
    from retrostride.assets.transforms.scoring import RECORD_COLUMNS
    from retrostride.warehouse.schema import RECORDS

    root = Path(__file__).resolve().parents[1]
    used = [
        *(root / "assets" / "transforms").glob("*.py"),
        root / "connectors" / "frames.py",
    ]  # with_motion, in_time_order
    source = "\n".join(path.read_text(encoding="utf-8") for path in used)
    unread = [name for name in RECORDS.names() if name not in RECORD_COLUMNS]
    assert unread and all(f'"{name}"' not in source for name in unread)
    assert set(RECORD_COLUMNS) <= set(RECORDS.names())


def test_every_activity_has_a_detection_status(imported_export):
    warehouse = imported_export.warehouse
    rows = warehouse.query(
        "SELECT a.activity_id, d.detection_status, d.baseline_basis FROM activities a"
        " LEFT JOIN activity_detection d USING (activity_id)"
    )
    assert rows["detection_status"].null_count() == 0
    statuses = set(rows["detection_status"])
    assert statuses <= set(STATUSES) and "scored" in statuses
    scored = rows.filter(pl.col("detection_status").str.starts_with("scored"))
    assert scored["baseline_basis"].null_count() == 0
