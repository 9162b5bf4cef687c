"""Segment confidence means what it says on held-out data: the probability that the direction is right.

The calibration (`benchmarks/calibrate_confidence.py`) was fitted on other seeds; here a small
`--ambiguous` export of the independent generator (backward step ratios up to the forward/backward
boundary, noisy and sparse cadence, GPS noise, hills, short stretches) is detected as the pipeline
does it, whole history and cold start, and each decile bin of stated confidence with ≥ 20 segments
must hold a share right within ±0.10 of its mean stated confidence.
"""

from __future__ import annotations

import polars as pl
import pytest

from benchmarks.calibrate_confidence import isotonic_knots
from benchmarks.detection_accuracy import ambiguous_judged
from benchmarks.evaluation import calibration_table
from retrostride.assets.transforms.confidence import calibrated
from retrostride.assets.transforms.model_config import DetectionConfig

CONFIG = DetectionConfig()
HELD_OUT_SEEDS = [53, 59]  # the calibration used 101–139


@pytest.fixture(scope="module")
def judged(tmp_path_factory) -> pl.DataFrame:
    return ambiguous_judged(tmp_path_factory.mktemp("ambiguous"), HELD_OUT_SEEDS, 12, 8, CONFIG)


def test_confidence_is_calibrated_on_held_out_ambiguous_runs(judged):
    table = calibration_table(judged)
    populated = table.filter(pl.col("segments") >= 20)
    assert populated.height >= 2, f"confidence does not spread over the bins:\n{table}"
    assert (populated["gap"].abs() <= 0.10).all(), f"miscalibrated bins:\n{table}"


def test_hard_cases_get_lower_confidence_than_clear_ones(judged):
    right = judged.group_by("correct").agg(pl.col("confidence").mean()).sort("correct")
    assert right["confidence"][0] < right["confidence"][1] - 0.1
    assert judged["confidence"].min() < 0.9 < judged["confidence"].max()


def test_the_step_map_gives_each_score_its_blocks_share_right():
    scores = pl.Series("s", [-1.0, 0.5, 1.0, 2.0, 3.5, 9.0])
    mapped = pl.select(calibrated(pl.lit(scores), (0.5, 2.0), (0.2, 0.7, 0.95))).to_series()
    assert mapped.to_list() == [0.2, 0.2, 0.7, 0.7, 0.95, 0.95]


def test_isotonic_knots_pool_violators_and_small_blocks():
    import numpy as np

    score = np.arange(12, dtype=float)
    right = np.array([0, 1, 0, 0, 1, 0, 1, 1, 1, 0, 1, 1], dtype=float)
    edges, shares = isotonic_knots(score, right, min_block=4)
    assert len(shares) == len(edges) + 1
    assert shares == sorted(shares)
    assert sum(shares) > 0 and shares[-1] <= 1.0
