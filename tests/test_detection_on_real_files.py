"""Backward detection on real files: the forward runs of the corpora and generated exports.

A detector that fires on real forward running is worse than none; on the generated exports (with
noise, stops, GPS jitter and cadence dropouts) backward time must reach precision ≥ 0.95 and
recall ≥ 0.90, and every labelled backward lap must be found.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

pytest.importorskip("retrostride.connectors.fit", reason="connectors.fit (decode_fit) is not there yet")

from benchmarks.evaluation import (
    backward_overlap,
    backward_time_scores,
    load_files,
)
from retrostride.assets.transforms.energy import activity_energy, as_of_mass, record_energy
from retrostride.assets.transforms.gait import fit_gait_baselines
from retrostride.assets.transforms.model_config import DetectionConfig
from retrostride.assets.transforms.segments import backward_seconds, detect_segments
from retrostride.warehouse.schema import BODY_MEASUREMENTS

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
FORWARD_RUNS = ["activity-small-fenix2-run.fit", "2013-02-06-12-11-14.fit", "garmin-fenix-5-run.fit"]
SEEDS = (7, 11, 23)
CONFIG = DetectionConfig()


def corpus_file(name: str) -> Path:
    found = sorted(CORPORA.rglob(name))
    if not found:
        pytest.skip(f"{name} is not in {CORPORA}")
    return found[0]


@pytest.fixture(scope="module")
def forward_runs():
    paths = [corpus_file(name) for name in FORWARD_RUNS]
    return load_files(paths, paths[0].parent)


def test_real_forward_runs_have_zero_seconds_backward(forward_runs):
    frames = forward_runs
    baselines = fit_gait_baselines(frames.records, frames.activities, frames.laps, CONFIG)
    segments = detect_segments(frames.records, frames.activities, frames.laps, baselines, CONFIG)
    assert set(segments["activity_id"]) == set(FORWARD_RUNS)
    assert backward_seconds(segments) == 0.0


def test_real_forward_runs_stay_forward_against_a_baseline_fitted_on_them(forward_runs):
    # One runner's 47 minutes are enough to fit a baseline when the minimum is lowered to one run;
    # scoring the run against it exercises the gait evidence on real cadence and speed noise.
    frames = forward_runs
    one_runner = pl.lit("corpus").alias("athlete_id")
    records, activities = frames.records.with_columns(one_runner), frames.activities.with_columns(one_runner)
    config = replace(CONFIG, baseline_min_runs=1)
    baselines = fit_gait_baselines(records, activities, frames.laps, config)
    assert baselines.height == 1
    segments = detect_segments(records, activities, frames.laps, baselines, config)
    assert backward_seconds(segments) == 0.0
    fenix2 = segments.filter(pl.col("activity_id") == "activity-small-fenix2-run.fit")
    forward_s = fenix2.filter(pl.col("direction") == "forward")["duration_s"].sum()
    assert forward_s > 0.7 * fenix2["duration_s"].sum()


def test_a_real_footpod_run_recorded_every_5_s_is_scored_alone_as_beside_runs_recorded_every_second():
    # The pipeline scores a month at a time: a month of only smart-recorded runs must get the same
    # widened gait windows as one that also holds 1-s recordings.
    footpod, fenix2 = corpus_file("compressed-speed-distance.fit"), corpus_file("activity-small-fenix2-run.fit")
    one_runner = pl.lit("corpus").alias("athlete_id")
    config = replace(CONFIG, baseline_min_runs=1)

    def segments_of(paths: list[Path], baselines: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
        frames = load_files(paths, footpod.parent)
        records, activities = frames.records.with_columns(one_runner), frames.activities.with_columns(one_runner)
        if baselines is None:
            baselines = fit_gait_baselines(records, activities, frames.laps, config)
        return detect_segments(records, activities, frames.laps, baselines, config), baselines

    alone, baselines = segments_of([footpod])
    beside, _ = segments_of([footpod, fenix2], baselines)
    assert_frame_equal(alone, beside.filter(pl.col("activity_id") == footpod.name))
    moving = alone.filter(pl.col("evidence") != "pause")
    assert backward_seconds(alone) == 0.0
    assert moving.filter(pl.col("direction") == "forward")["duration_s"].sum() > 0.8 * moving["duration_s"].sum()


def test_real_forward_run_energy_is_plausible(forward_runs):
    frames = forward_runs
    baselines = fit_gait_baselines(frames.records, frames.activities, frames.laps, CONFIG)
    segments = detect_segments(frames.records, frames.activities, frames.laps, baselines, CONFIG)
    body = as_of_mass(frames.activities, pl.DataFrame(schema=BODY_MEASUREMENTS))
    totals = activity_energy(record_energy(frames.records, segments, body), body)
    fenix2 = totals.filter(pl.col("activity_id") == "activity-small-fenix2-run.fit").row(0, named=True)
    assert fenix2["distance_m"] == pytest.approx(9007, rel=0.01)
    assert 0.5 <= fenix2["kcal_net_per_kg_km"] <= 2.5
    assert fenix2["kcal_backward"] == 0.0
    assert fenix2["mass_source"] == "default"


# -- generated exports ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    sample_export = pytest.importorskip(
        "retrostride.pipelines.sample_export", reason="pipelines.sample_export (generate_export) is not there yet"
    )
    results = {}
    for seed in SEEDS:
        out_dir = tmp_path_factory.mktemp(f"seed{seed}") / "export"
        sample_export.generate_export(out_dir, seed=seed, athletes=6, weeks=3)
        files = sorted(
            p for p in out_dir.rglob("*") if p.suffix in (".fit", ".gpx") and not p.name.startswith("weight-")
        )
        frames = load_files(files, out_dir)
        baselines = fit_gait_baselines(frames.records, frames.activities, frames.laps, CONFIG)
        segments = detect_segments(frames.records, frames.activities, frames.laps, baselines, CONFIG)
        truth = pl.read_parquet(out_dir.with_name("export.truth") / "backward_intervals.parquet")
        formats = pl.read_parquet(out_dir.with_name("export.truth") / "activities.parquet").select("file", "format")
        results[seed] = (segments.with_columns(pl.col("activity_id").alias("file")), truth.join(formats, on="file"))
    return results


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_backward_time_precision_and_recall_on_generated_exports(exports, seed):
    segments, truth = exports[seed]
    assert truth.height > 0
    scores = backward_time_scores(segments, truth).row(0, named=True)
    assert scores["precision"] >= 0.95, scores
    assert scores["recall"] >= 0.90, scores


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_every_labelled_backward_lap_is_found(exports, seed):
    segments, truth = exports[seed]
    labelled = backward_overlap(segments, truth.filter(pl.col("labelled")))
    assert labelled.height > 0
    # Labelled FIT intervals are laps named "Backward …": found whole.
    laps = labelled.filter(pl.col("format") == "fit")
    assert laps.filter(pl.col("found_s") < 0.95 * pl.col("truth_s")).is_empty()
    # GPX intervals are labelled by the track name only (gait says where): found, if not to the second.
    assert labelled.filter(pl.col("found_s") < 0.5 * pl.col("truth_s")).is_empty()


@pytest.mark.slow
def test_every_segment_row_is_well_formed_on_generated_exports(exports):
    segments, _ = exports[SEEDS[0]]
    assert set(segments["direction"]) <= {"forward", "backward", "unknown"}
    assert set(segments["gait"]) <= {"run", "walk", "unknown"}
    assert segments["confidence"].is_between(0, 1).all()
    ordered = segments.sort("activity_id", "segment_index")
    same = ordered["activity_id"].shift(-1) == ordered["activity_id"]
    assert (ordered["end_ts"] == ordered["start_ts"].shift(-1)).filter(same).all()
    assert set(segments["model_version"]) == {CONFIG.model_version}
