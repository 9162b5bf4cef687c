"""Activities without cadence: speed alone calls forward only what no backward runner has sustained.

Fixtures are mutations of a real watch file without cadence (shared/corpora): as recorded (an easy
pace, 1.8 m/s on average: within recreational backward speeds, so it stays unknown) and with its
clock run 2.6 times faster (the same route at ~4.8 m/s, over the backward records' pace).
"""

from __future__ import annotations

import polars as pl
import pytest

from benchmarks.evaluation import load_files
from retrostride.assets.transforms.gait import fit_gait_baselines
from retrostride.assets.transforms.gait_prior import with_prior_baselines
from retrostride.assets.transforms.model_config import DetectionConfig
from retrostride.assets.transforms.segments import backward_seconds, detect_segments
from tests.conftest import CORPORA

CONFIG = DetectionConfig()
NO_CADENCE_RUN = CORPORA / "fit" / "python-fitparse" / "2013-02-06-12-11-14.fit"


def quicker(frames, factor: float):
    """The same samples with time between them shrunk by `factor` (speeds × factor)."""
    start = pl.col("ts").min().over("activity_id")
    records = frames.records.with_columns(
        (start + (pl.col("ts") - start) / factor).alias("ts"), pl.col("speed_mps") * factor
    )
    activities = frames.activities.with_columns(
        (pl.col("start_ts") + (pl.col("end_ts") - pl.col("start_ts")) / factor).alias("end_ts")
    )
    return type(frames)(records, activities, frames.laps)


def detect(frames) -> pl.DataFrame:
    baselines = fit_gait_baselines(frames.records, frames.activities, frames.laps, CONFIG)
    baselines = with_prior_baselines(baselines, frames.activities, None, CONFIG)
    return detect_segments(frames.records, frames.activities, frames.laps, baselines, CONFIG)


@pytest.fixture(scope="module")
def easy_run():
    if not NO_CADENCE_RUN.exists():
        pytest.skip(f"{NO_CADENCE_RUN} is not there")
    frames = load_files([NO_CADENCE_RUN])
    assert frames.records["cadence_spm"].drop_nulls().len() == 0
    return frames


def test_an_easy_run_without_cadence_stays_unknown(easy_run):
    segments = detect(easy_run)
    assert backward_seconds(segments) == 0.0
    assert segments.filter(pl.col("direction") == "forward").is_empty()


def test_a_run_faster_than_the_backward_records_is_forward_with_moderate_confidence(easy_run):
    segments = detect(quicker(easy_run, 2.6))
    moving = segments.filter(pl.col("evidence") != "pause")
    forward = moving.filter(pl.col("direction") == "forward")
    assert backward_seconds(segments) == 0.0
    assert forward["duration_s"].sum() > 0.5 * moving["duration_s"].sum()
    assert set(forward["evidence"]) == {"speed"}
    assert (forward["confidence"] == CONFIG.speed_only_confidence).all()
    assert CONFIG.speed_only_confidence < 0.95


def test_speed_never_says_backward_even_when_slow(easy_run):
    for factor in (0.5, 1.0, 1.5):
        assert backward_seconds(detect(quicker(easy_run, factor))) == 0.0
